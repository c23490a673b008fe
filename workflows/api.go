package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/activities"
)

// Signal names. Operators use the signals from the CLI:
//
//	temporal workflow signal --workflow-id matchmaking-<event uuid> --name pause
const (
	SignalPause  = "pause"
	SignalResume = "resume"
	// SignalWake tells an idle workflow that its queue has new rows.
	SignalWake = "wake"
	// SignalDisable ends the workflow after its current batch.
	SignalDisable = "disable"
)

// Update names: what the starter sends, so that it can print the state the
// workflow took. They do what the signals of the same name do, and answer
// with the Status; a validator refuses them once the run is disabled.
// Their values must not change: running workflows know them by these.
const (
	UpdatePause   = "pause"
	UpdateResume  = "resume"
	UpdateDisable = "disable"
)

// QueryStatus answers the current Status.
const QueryStatus = "status"

// Search attributes the workflow keeps current, so operators can filter in
// the Web UI and `temporal workflow list --query "MatchmakingEventCode='x'"`.
var (
	AttrEventCode    = temporal.NewSearchAttributeKeyKeyword("MatchmakingEventCode")
	AttrPaused       = temporal.NewSearchAttributeKeyBool("MatchmakingPaused")
	AttrUsersMatched = temporal.NewSearchAttributeKeyInt64("MatchmakingUsersMatched")
	AttrQueueDepth   = temporal.NewSearchAttributeKeyInt64("MatchmakingQueueDepth")
)

// SearchAttributes lists the custom search attributes, for registration.
var SearchAttributes = []temporal.SearchAttributeKey{AttrEventCode, AttrPaused, AttrUsersMatched, AttrQueueDepth}

// WorkflowIDPrefix + event UUID is the one workflow ID of an event.
const WorkflowIDPrefix = "matchmaking-"

// WorkflowID returns the workflow ID of an event.
func WorkflowID(eventID string) string { return WorkflowIDPrefix + eventID }

// Settings shape the loop. They travel in the input so a run and its
// continuations behave the same and the history shows what was used.
type Settings struct {
	BatchSize  int
	MaxRuntime time.Duration
	// IdlePoll bounds how long an idle workflow sleeps without a wake
	// signal before it looks at its queue again.
	IdlePoll time.Duration
	// MaxBatchesPerRun bounds a run's history; the workflow continues as
	// new after that many batches even if Temporal does not suggest it.
	MaxBatchesPerRun int
	// FailureBackoff is the pause after a batch that failed for good.
	FailureBackoff time.Duration
}

// State is what survives continue-as-new.
type State struct {
	Paused bool
	// WakePending carries a wake signal across continue-as-new.
	WakePending  bool
	Batches      int
	UsersMatched int
	Requeued     int
	StaleRetries int
	Errors       int
	LastError    string
	// ListsDeferred counts lists set aside at commit because they named a
	// member who left meanwhile (their owners went round again).
	ListsDeferred int
	// Quarantined is how many of the event's members are in quarantine,
	// as of the last commit.
	Quarantined int
	LastBatchAt time.Time
	Runs        int
	Insights    InsightTotals
	// QueueDepth is the queue size after the last commit.
	QueueDepth int
}

// InsightTotals sums the insight step over the workflow's life.
type InsightTotals struct {
	AI               int
	Fallback         int
	FallbackReasons  []activities.ReasonCount
	AICalls          int
	CacheHits        int
	PromptTokens     int
	CompletionTokens int
	AILatencyMS      int64
}

func (t *InsightTotals) add(r activities.InsightResult) {
	t.AI += r.AI
	t.Fallback += r.Fallback
	for _, rc := range r.FallbackReasons {
		t.FallbackReasons = activities.AddReasonCount(t.FallbackReasons, rc.Reason, rc.Count)
	}
	t.AICalls += r.AICalls
	t.CacheHits += r.CacheHits
	t.PromptTokens += r.PromptTokens
	t.CompletionTokens += r.CompletionTokens
	t.AILatencyMS += r.AILatencyMS
}

// Input starts or continues an event's workflow.
type Input struct {
	EventID  string
	Settings Settings
	State    State
}

// Status answers the status query and the pause, resume and disable updates.
type Status struct {
	EventID   string
	EventCode string
	EventName string
	State
	Phase Phase
}

// Phase is what a run is doing, as the status and the Web UI show it.
type Phase string

const (
	PhaseStarting   Phase = "starting"
	PhaseIdle       Phase = "idle"
	PhasePaused     Phase = "paused"
	PhaseClaiming   Phase = "claiming"
	PhaseScoring    Phase = "scoring"
	PhaseInsights   Phase = "insights"
	PhaseCommitting Phase = "committing"
	PhaseBackingOff Phase = "backing off"
	PhaseDisabled   Phase = "disabled"
)

// defaultSettings fill what an input leaves unset: runs started before a
// setting existed, and tests. The worker's own values come from config
// (NewSettings, DescribeEvent), whose defaults are the same.
var defaultSettings = Settings{
	BatchSize:        50000,
	MaxRuntime:       45 * time.Second,
	IdlePoll:         5 * time.Minute,
	MaxBatchesPerRun: 200,
	FailureBackoff:   10 * time.Second,
}

func withDefaults(s Settings) Settings {
	if s.BatchSize <= 0 {
		s.BatchSize = defaultSettings.BatchSize
	}
	if s.MaxRuntime <= 0 {
		s.MaxRuntime = defaultSettings.MaxRuntime
	}
	if s.IdlePoll <= 0 {
		s.IdlePoll = defaultSettings.IdlePoll
	}
	if s.MaxBatchesPerRun <= 0 {
		s.MaxBatchesPerRun = defaultSettings.MaxBatchesPerRun
	}
	if s.FailureBackoff <= 0 {
		s.FailureBackoff = defaultSettings.FailureBackoff
	}
	return s
}
