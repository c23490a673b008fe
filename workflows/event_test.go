package workflows

import (
	"context"
	"errors"
	"fmt"
	sdkpb "go.temporal.io/api/sdk/v1"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
)

const (
	testEventID   = "11111111-2222-3333-4444-555555555555"
	testEventCode = "test-event"
	// testRunID is the run ID the SDK's test environment gives a workflow.
	testRunID = "default-test-run-id"
	// safetyHorizon cancels a workflow that a test forgot to end (or that
	// got stuck) so the test fails on its assertions instead of panicking
	// on the test environment's wall-clock timeout.
	safetyHorizon = 30 * 24 * time.Hour
)

// Activity names as recorded by fakeActivities.
const (
	actClaim    = "ClaimBatch"
	actScore    = "ScoreBatch"
	actInsights = "WriteInsights"
	actCommit   = "CommitBatch"
	actRelease  = "ReleaseBatch"
	actShard    = "ScoreShard"
)

// tok is the batch token of the run's n-th loop iteration.
func tok(n int) string { return fmt.Sprintf("%s/%d", testRunID, n) }

// testSettings are settings with explicit, test-friendly durations: a long
// idle poll so a test sees idling unless it asks for polls.
func testSettings() Settings {
	return Settings{
		BatchSize:        25,
		MaxRuntime:       time.Minute,
		IdlePoll:         time.Hour,
		MaxBatchesPerRun: 100,
		FailureBackoff:   10 * time.Minute,
	}
}

type call struct {
	Activity string
	EventID  string
	Token    string
	Limit    int
	Reason   string
	// Shard and Shards: ScoreShard's shard; ScoreBatch's shards to merge.
	Shard, Shards int
}

// fakeActivities records every activity call and answers it. By default a
// claim takes the next of claimSizes (0 once they are used up), scoring and
// insights succeed, and a commit commits every claimed user. The on* hooks
// override that; n is the 1-based number of the call to that activity.
type fakeActivities struct {
	mu         sync.Mutex
	calls      []call
	claimSizes []int
	claimed    map[string]int

	onClaim    func(n int, in activities.ClaimInput) (activities.ClaimResult, error)
	onScore    func(n int, ref activities.BatchRef) error
	onInsights func(n int, ref activities.BatchRef) error
	onCommit   func(n int, ref activities.BatchRef) (activities.CommitResult, error)
	onRelease  func(n int, in activities.ReleaseInput) error

	// delays make an activity take that long on the workflow clock.
	delays map[string]time.Duration

	// event answers DescribeEvent, which is not recorded in calls.
	event    activities.EventInfo
	eventErr error
}

func newFakeActivities(claimSizes ...int) *fakeActivities {
	return &fakeActivities{
		claimSizes: claimSizes,
		claimed:    map[string]int{},
		delays:     map[string]time.Duration{},
		event:      activities.EventInfo{Code: testEventCode, Name: "Test event", Enabled: true},
	}
}

// record adds c and returns its number among the calls to its activity.
func (f *fakeActivities) record(c call) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	n := 0
	for _, x := range f.calls {
		if x.Activity == c.Activity {
			n++
		}
	}
	return n
}

func (f *fakeActivities) count(activity string) int { return len(f.callsTo(activity)) }

func (f *fakeActivities) callsTo(activity string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Activity == activity {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeActivities) tokens(activity string) []string {
	var out []string
	for _, c := range f.callsTo(activity) {
		out = append(out, c.Token)
	}
	return out
}

// sequence lists every call as "Activity token", in call order.
func (f *fakeActivities) sequence() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Activity + " " + c.Token
	}
	return out
}

// defaultCommit commits every user the batch claimed.
func (f *fakeActivities) defaultCommit(ref activities.BatchRef) activities.CommitResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return activities.CommitResult{UsersCommitted: f.claimed[ref.Token]}
}

func (f *fakeActivities) claim(_ context.Context, in activities.ClaimInput) (activities.ClaimResult, error) {
	n := f.record(call{Activity: actClaim, EventID: in.EventID, Token: in.Token, Limit: in.Limit})
	var res activities.ClaimResult
	var err error
	if f.onClaim != nil {
		res, err = f.onClaim(n, in)
	} else {
		f.mu.Lock()
		if len(f.claimSizes) > 0 {
			res.Claimed, f.claimSizes = f.claimSizes[0], f.claimSizes[1:]
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	f.claimed[in.Token] = res.Claimed
	f.mu.Unlock()
	return res, err
}

func (f *fakeActivities) score(_ context.Context, ref activities.BatchRef) (activities.ScoreResult, error) {
	n := f.record(call{Activity: actScore, EventID: ref.EventID, Token: ref.Token, Shards: ref.Shards})
	if f.onScore != nil {
		if err := f.onScore(n, ref); err != nil {
			return activities.ScoreResult{}, err
		}
	}
	return activities.ScoreResult{Members: 50, Scored: 5, ListsChanged: 7, Rows: 70}, nil
}

func (f *fakeActivities) shard(_ context.Context, in activities.ShardRef) (activities.ShardResult, error) {
	f.record(call{Activity: actShard, EventID: in.EventID, Token: in.Token, Shard: in.Shard, Shards: in.Shards})
	return activities.ShardResult{Scored: 1000, Offers: 3000}, nil
}

func (f *fakeActivities) insights(_ context.Context, ref activities.BatchRef) (activities.InsightResult, error) {
	n := f.record(call{Activity: actInsights, EventID: ref.EventID, Token: ref.Token})
	if f.onInsights != nil {
		if err := f.onInsights(n, ref); err != nil {
			return activities.InsightResult{}, err
		}
	}
	return activities.InsightResult{AI: 60, Fallback: 10}, nil
}

func (f *fakeActivities) commit(_ context.Context, ref activities.BatchRef) (activities.CommitResult, error) {
	n := f.record(call{Activity: actCommit, EventID: ref.EventID, Token: ref.Token})
	if f.onCommit != nil {
		return f.onCommit(n, ref)
	}
	return f.defaultCommit(ref), nil
}

func (f *fakeActivities) release(_ context.Context, in activities.ReleaseInput) (int, error) {
	n := f.record(call{Activity: actRelease, Token: in.Token, Reason: in.Reason})
	if f.onRelease != nil {
		if err := f.onRelease(n, in); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.claimed[in.Token], nil
}

// harness runs EventMatchmaking in the SDK's test environment against
// fakeActivities. Configure f, schedule callbacks with at, then run.
type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	f   *fakeActivities
	in  Input
}

func newHarness(t *testing.T, s Settings, f *fakeActivities) *harness {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := ts.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	env.RegisterWorkflow(EventMatchmaking)
	env.RegisterActivity(&activities.Activities{})
	return &harness{t: t, env: env, f: f, in: Input{EventID: testEventID, Settings: s}}
}

// at runs fn when the workflow clock has advanced by d since the start.
func (h *harness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

func (h *harness) signal(name string) { h.env.SignalWorkflow(name, nil) }

// signalWithNextTask delivers a signal without running workflow code: the
// workflow sees it in the same workflow task as the next event, as when a
// signal and an activity's result reach the worker together.
func (h *harness) signalWithNextTask(name string) {
	h.env.SignalWorkflowSkippingWorkflowTask(name, nil)
}

func (h *harness) status() Status {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryStatus)
	if !assert.NoError(h.t, err, "status query") {
		return Status{}
	}
	var st Status
	assert.NoError(h.t, v.Get(&st), "decode status")
	return st
}

// run registers the activity mocks and runs the workflow until it ends.
func (h *harness) run() {
	a := &activities.Activities{}
	f := h.f
	mocks := []struct {
		name string
		call *testsuite.MockCallWrapper
	}{
		{actClaim, h.env.OnActivity(a.ClaimBatch, mock.Anything, mock.Anything).Return(f.claim)},
		{actScore, h.env.OnActivity(a.ScoreBatch, mock.Anything, mock.Anything).Return(f.score)},
		{actInsights, h.env.OnActivity(a.WriteInsights, mock.Anything, mock.Anything).Return(f.insights)},
		{actCommit, h.env.OnActivity(a.CommitBatch, mock.Anything, mock.Anything).Return(f.commit)},
		{actRelease, h.env.OnActivity(a.ReleaseBatch, mock.Anything, mock.Anything).Return(f.release)},
		{actShard, h.env.OnActivity(a.ScoreShard, mock.Anything, mock.Anything).Return(f.shard)},
	}
	h.env.OnActivity(a.DescribeEvent, mock.Anything, mock.Anything).Return(
		func(context.Context, string) (activities.EventInfo, error) { return f.event, f.eventErr })
	for _, m := range mocks {
		if d := f.delays[m.name]; d > 0 {
			m.call.After(d)
		}
	}
	h.at(safetyHorizon, h.env.CancelWorkflow)
	h.env.ExecuteWorkflow(EventMatchmaking, h.in)
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
}

// requireCanceled checks the run ended by the test's cancel, not by an
// error or a continue-as-new.
func (h *harness) requireCanceled() {
	h.t.Helper()
	err := h.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	require.Truef(h.t, errors.As(err, &canceled), "want the workflow canceled by the test, got %v", err)
}

// continuedAs checks the run continued as new and returns the new input.
func (h *harness) continuedAs() Input {
	h.t.Helper()
	err := h.env.GetWorkflowError()
	require.Truef(h.t, workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var can *workflow.ContinueAsNewError
	require.True(h.t, errors.As(err, &can))
	require.Equal(h.t, "EventMatchmaking", can.WorkflowType.Name)
	var in Input
	require.NoError(h.t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	return in
}

func TestDrainsQueueThenIdlesUntilWoken(t *testing.T) {
	f := newFakeActivities(3, 2, 4)
	f.onCommit = func(_ int, ref activities.BatchRef) (activities.CommitResult, error) {
		res := f.defaultCommit(ref)
		res.UsersRequeued = 1
		return res, nil
	}
	h := newHarness(t, testSettings(), f)

	wantDrain := []string{
		actClaim + " " + tok(1), actScore + " " + tok(1), actInsights + " " + tok(1), actCommit + " " + tok(1),
		actClaim + " " + tok(2), actScore + " " + tok(2), actInsights + " " + tok(2), actCommit + " " + tok(2),
		actClaim + " " + tok(3), actScore + " " + tok(3), actInsights + " " + tok(3), actCommit + " " + tok(3),
		actClaim + " " + tok(4), // empty: the queue is drained
	}
	h.at(10*time.Minute, func() {
		assert.Equal(t, wantDrain, f.sequence())
		st := h.status()
		assert.Equal(t, PhaseIdle, st.Phase)
		assert.Equal(t, testEventID, st.EventID)
		assert.False(t, st.Paused)
		assert.Equal(t, 3, st.Batches)
		assert.Equal(t, 9, st.UsersMatched)
		assert.Equal(t, 3, st.Requeued)
		assert.Equal(t, 1, st.Runs)
		assert.Zero(t, st.Errors)
		assert.Zero(t, st.StaleRetries)
		assert.False(t, st.LastBatchAt.IsZero(), "LastBatchAt not set")
	})
	h.at(50*time.Minute, func() {
		assert.Equal(t, 4, f.count(actClaim), "claimed while idle without a wake signal")
		h.signal(SignalWake)
	})
	h.at(51*time.Minute, func() {
		assert.Equal(t, []string{tok(1), tok(2), tok(3), tok(4), tok(5)}, f.tokens(actClaim))
		assert.Len(t, f.sequence(), len(wantDrain)+1, "an empty claim must not score")
		h.env.CancelWorkflow()
	})
	h.run()
	h.requireCanceled()

	for _, c := range f.callsTo(actClaim) {
		assert.Equal(t, testEventID, c.EventID)
		assert.Equal(t, testSettings().BatchSize, c.Limit)
	}
	for _, act := range []string{actScore, actInsights, actCommit} {
		for _, c := range f.callsTo(act) {
			assert.Equal(t, testEventID, c.EventID, act)
		}
	}
	assert.Zero(t, f.count(actRelease))
}

func TestPauseAndResume(t *testing.T) {
	// Every case pauses early, wakes the workflow while it is paused, lets
	// more than an idle poll pass, then resumes.
	const (
		pauseAt  = 30 * time.Second
		queryAt  = 45 * time.Second
		wakeAt   = 3 * time.Minute
		checkAt  = 2 * time.Hour // past testSettings' IdlePoll
		resumeAt = checkAt + time.Minute
		endAt    = resumeAt + time.Minute
	)
	tests := []struct {
		name       string
		claimSizes []int
		scoreTakes time.Duration
		// pauseWithCommit sends the pause together with the first commit's
		// result instead of at pauseAt.
		pauseWithCommit bool
		wantBatches     int // committed before the pause took hold
		wantClaims      int // by endAt, after the resume
	}{
		{name: "while idle", wantBatches: 0, wantClaims: 2},
		{name: "mid-batch", claimSizes: []int{5}, scoreTakes: time.Minute, wantBatches: 1, wantClaims: 2},
		{name: "with a commit result", claimSizes: []int{5, 5}, pauseWithCommit: true, wantBatches: 1, wantClaims: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeActivities(tt.claimSizes...)
			f.delays[actScore] = tt.scoreTakes
			h := newHarness(t, testSettings(), f)
			if tt.pauseWithCommit {
				f.onCommit = func(n int, ref activities.BatchRef) (activities.CommitResult, error) {
					if n == 1 {
						h.signalWithNextTask(SignalPause)
					}
					return f.defaultCommit(ref), nil
				}
			} else {
				h.at(pauseAt, func() {
					if tt.scoreTakes > 0 {
						assert.Equal(t, PhaseScoring, h.status().Phase)
					}
					h.signal(SignalPause)
				})
			}
			h.at(queryAt, func() {
				st := h.status()
				assert.True(t, st.Paused)
				assert.Equal(t, PhasePaused, st.Phase)
			})
			h.at(wakeAt, func() { h.signal(SignalWake) })
			h.at(checkAt, func() {
				assert.Equal(t, 1, f.count(actClaim), "claimed while paused")
				st := h.status()
				assert.True(t, st.Paused)
				assert.Equal(t, PhasePaused, st.Phase)
				assert.Equal(t, tt.wantBatches, st.Batches, "a batch in flight when paused is finished")
				h.signal(SignalResume)
			})
			h.at(endAt, func() {
				claims := f.tokens(actClaim)
				if assert.Len(t, claims, tt.wantClaims, "claims after resume") {
					assert.Equal(t, tok(2), claims[1])
				}
				st := h.status()
				assert.False(t, st.Paused)
				assert.NotEqual(t, PhasePaused, st.Phase)
				h.env.CancelWorkflow()
			})
			h.run()
			h.requireCanceled()
		})
	}
}

func TestContinueAsNew(t *testing.T) {
	s := testSettings()
	s.MaxBatchesPerRun = 2
	carried := State{Runs: 3, Batches: 10, UsersMatched: 100, Requeued: 4, StaleRetries: 2, Errors: 1, LastError: "old"}

	// Each batch claims 3 users; the second batch's scoring runs from 1m to
	// 2m on the workflow clock.
	tests := []struct {
		name    string
		signals map[time.Duration]string // sent at that time
		// withLastCommit is sent together with the second commit's result.
		withLastCommit  string
		wantPaused      bool
		wantWakePending bool
	}{
		{name: "after MaxBatchesPerRun batches"},
		{name: "pause during the last batch", signals: map[time.Duration]string{90 * time.Second: SignalPause}, wantPaused: true},
		{name: "pause with the last commit result", withLastCommit: SignalPause, wantPaused: true},
		{name: "pause then resume during the last batch", signals: map[time.Duration]string{
			70 * time.Second: SignalPause, 80 * time.Second: SignalResume,
		}},
		{name: "wake during the last batch", signals: map[time.Duration]string{90 * time.Second: SignalWake}, wantWakePending: true},
		{name: "wake with the last commit result", withLastCommit: SignalWake, wantWakePending: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeActivities(3, 3, 3, 3)
			f.delays[actScore] = time.Minute
			h := newHarness(t, s, f)
			h.in.State = carried
			f.onCommit = func(n int, ref activities.BatchRef) (activities.CommitResult, error) {
				if n == 2 && tt.withLastCommit != "" {
					h.signalWithNextTask(tt.withLastCommit)
				}
				return f.defaultCommit(ref), nil
			}
			for d, name := range tt.signals {
				h.at(d, func() { h.signal(name) })
			}
			h.run()
			next := h.continuedAs()

			assert.Equal(t, []string{tok(1), tok(2)}, f.tokens(actClaim))
			assert.Equal(t, []string{tok(1), tok(2)}, f.tokens(actCommit))
			assert.Equal(t, testEventID, next.EventID)
			assert.Equal(t, s, next.Settings)
			want := carried
			want.Runs = 4
			want.Batches = 12
			want.UsersMatched = 106
			want.Paused = tt.wantPaused
			want.WakePending = tt.wantWakePending
			want.Insights = InsightTotals{AI: 2 * 60, Fallback: 2 * 10}
			assert.False(t, next.State.LastBatchAt.IsZero())
			next.State.LastBatchAt = time.Time{}
			assert.Equal(t, want, next.State)
		})
	}
}

func TestContinueAsNewCarriesDefaultSettings(t *testing.T) {
	// Idle polls count toward MaxBatchesPerRun too, so an idle event
	// continues as new after the default number of polls.
	f := newFakeActivities()
	h := newHarness(t, Settings{}, f)
	h.run()
	next := h.continuedAs()
	def := next.Settings
	assert.Equal(t, withDefaults(Settings{}), def)
	assert.Positive(t, def.BatchSize)
	assert.Positive(t, def.MaxRuntime)
	assert.Positive(t, def.IdlePoll)
	assert.Positive(t, def.FailureBackoff)
	require.Positive(t, def.MaxBatchesPerRun)
	claims := f.callsTo(actClaim)
	require.Len(t, claims, def.MaxBatchesPerRun)
	assert.Equal(t, tok(def.MaxBatchesPerRun), claims[len(claims)-1].Token)
	assert.Equal(t, def.BatchSize, claims[0].Limit)
	assert.Equal(t, State{Runs: 1}, next.State)
}

func TestContinuedRunStartsFromCarriedState(t *testing.T) {
	f := newFakeActivities(2)
	h := newHarness(t, testSettings(), f)
	h.in.State = State{Paused: true, WakePending: true, Runs: 4, Batches: 7, UsersMatched: 70}
	h.at(time.Minute, func() {
		assert.Zero(t, f.count(actClaim), "a run continued paused must not claim")
		st := h.status()
		assert.Equal(t, PhasePaused, st.Phase)
		assert.True(t, st.Paused)
		assert.False(t, st.WakePending, "a carried wake is consumed by the new run")
		assert.Equal(t, 5, st.Runs)
		assert.Equal(t, 7, st.Batches)
		h.signal(SignalResume)
	})
	h.at(2*time.Minute, func() {
		assert.Equal(t, []string{tok(1), tok(2)}, f.tokens(actClaim))
		st := h.status()
		assert.Equal(t, 8, st.Batches)
		assert.Equal(t, 72, st.UsersMatched)
		h.env.CancelWorkflow()
	})
	h.run()
	h.requireCanceled()
}

func TestActivityFailures(t *testing.T) {
	retryable := func(msg string) error { return errors.New(msg) }
	final := func(msg, typ string) error { return temporal.NewNonRetryableApplicationError(msg, typ, nil) }

	// One batch of 5 is claimed; FailureBackoff is 10m. Counts are checked
	// during the backoff (or idle wait) at 5m and after it at 15m.
	tests := []struct {
		name  string
		setup func(f *fakeActivities)

		wantCounts map[string]int // calls per activity by 5m
		wantErr    string         // in LastError; empty means the batch succeeds
		// wantReleased is in the reason ReleaseBatch got; empty means the
		// batch must not be released.
		wantReleased string
	}{
		{
			name: "retryable score error is retried",
			setup: func(f *fakeActivities) {
				f.onScore = func(n int, _ activities.BatchRef) error {
					if n <= 2 {
						return retryable("database is restarting")
					}
					return nil
				}
			},
			wantCounts: map[string]int{actClaim: 2, actScore: 3, actInsights: 1, actCommit: 1},
		},
		{
			name: "retryable score error exhausts the attempts",
			setup: func(f *fakeActivities) {
				f.onScore = func(int, activities.BatchRef) error { return retryable("database is down") }
			},
			wantCounts:   map[string]int{actClaim: 1, actScore: 8, actRelease: 1},
			wantErr:      "database is down",
			wantReleased: "database is down",
		},
		{
			name: "lease lost on commit",
			setup: func(f *fakeActivities) {
				f.onCommit = func(int, activities.BatchRef) (activities.CommitResult, error) {
					return activities.CommitResult{}, final("lease moved to another batch", activities.ErrTypeLeaseLost)
				}
			},
			wantCounts: map[string]int{actClaim: 1, actScore: 1, actInsights: 1, actCommit: 1},
			wantErr:    "lease moved to another batch",
		},
		{
			name: "lease lost is final even when marked retryable",
			setup: func(f *fakeActivities) {
				f.onCommit = func(int, activities.BatchRef) (activities.CommitResult, error) {
					return activities.CommitResult{}, temporal.NewApplicationError("lease gone", activities.ErrTypeLeaseLost)
				}
			},
			wantCounts: map[string]int{actClaim: 1, actScore: 1, actInsights: 1, actCommit: 1},
			wantErr:    "lease gone",
		},
		{
			name: "bad input from scoring is permanent",
			setup: func(f *fakeActivities) {
				f.onScore = func(int, activities.BatchRef) error { return final("snapshot is corrupt", "BadInput") }
			},
			wantCounts:   map[string]int{actClaim: 1, actScore: 1, actRelease: 1},
			wantErr:      "snapshot is corrupt",
			wantReleased: "snapshot is corrupt",
		},
		{
			name: "batch not found from scoring",
			setup: func(f *fakeActivities) {
				f.onScore = func(int, activities.BatchRef) error {
					return temporal.NewApplicationError("no such batch", activities.ErrTypeBatchNotFound)
				}
			},
			wantCounts:   map[string]int{actClaim: 1, actScore: 1, actRelease: 1},
			wantErr:      "no such batch",
			wantReleased: "no such batch",
		},
		{
			name: "insights failure",
			setup: func(f *fakeActivities) {
				f.onInsights = func(int, activities.BatchRef) error { return final("insight writer misconfigured", "BadInput") }
			},
			wantCounts:   map[string]int{actClaim: 1, actScore: 1, actInsights: 1, actRelease: 1},
			wantErr:      "insight writer misconfigured",
			wantReleased: "insight writer misconfigured",
		},
		{
			name: "release fails too",
			setup: func(f *fakeActivities) {
				f.onScore = func(int, activities.BatchRef) error { return final("snapshot is corrupt", "BadInput") }
				f.onRelease = func(int, activities.ReleaseInput) error {
					return final("rows are gone", activities.ErrTypeBatchNotFound)
				}
			},
			wantCounts:   map[string]int{actClaim: 1, actScore: 1, actRelease: 1},
			wantErr:      "releasing it failed",
			wantReleased: "snapshot is corrupt",
		},
		{
			name: "claim failure",
			setup: func(f *fakeActivities) {
				f.onClaim = func(n int, _ activities.ClaimInput) (activities.ClaimResult, error) {
					if n == 1 {
						return activities.ClaimResult{}, final("batch limit must be positive", "BadInput")
					}
					return activities.ClaimResult{}, nil
				}
			},
			wantCounts: map[string]int{actClaim: 1},
			wantErr:    "batch limit must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeActivities(5)
			tt.setup(f)
			h := newHarness(t, testSettings(), f)
			failed := tt.wantErr != ""

			h.at(5*time.Minute, func() {
				for _, act := range []string{actClaim, actScore, actInsights, actCommit, actRelease} {
					assert.Equal(t, tt.wantCounts[act], f.count(act), "%s calls", act)
				}
				for _, act := range []string{actScore, actInsights, actCommit} {
					for _, tk := range f.tokens(act) {
						assert.Equal(t, tok(1), tk, act)
					}
				}
				st := h.status()
				if !failed {
					assert.Equal(t, PhaseIdle, st.Phase)
					assert.Equal(t, 1, st.Batches)
					assert.Equal(t, 5, st.UsersMatched)
					assert.Zero(t, st.Errors)
					assert.Empty(t, st.LastError)
					return
				}
				assert.Equal(t, PhaseBackingOff, st.Phase)
				assert.Zero(t, st.Batches)
				assert.Zero(t, st.UsersMatched)
				assert.Equal(t, 1, st.Errors)
				assert.Contains(t, st.LastError, tt.wantErr)
			})
			h.at(15*time.Minute, func() {
				// The loop goes on after the backoff: the next claim ran and
				// found the queue empty.
				assert.Equal(t, []string{tok(1), tok(2)}, f.tokens(actClaim))
				assert.Equal(t, PhaseIdle, h.status().Phase)
				h.env.CancelWorkflow()
			})
			h.run()
			h.requireCanceled()

			releases := f.callsTo(actRelease)
			if tt.wantReleased == "" {
				assert.Empty(t, releases)
				return
			}
			require.Len(t, releases, 1)
			assert.Equal(t, tok(1), releases[0].Token)
			assert.Contains(t, releases[0].Reason, tt.wantReleased)
		})
	}
}

func TestStaleCommits(t *testing.T) {
	tests := []struct {
		name      string
		staleRuns int // commits that come back stale before one succeeds
		wantRuns  int // score/insights/commit rounds
		wantOK    bool
	}{
		{name: "stale once", staleRuns: 1, wantRuns: 2, wantOK: true},
		{name: "stale until the last allowed round", staleRuns: maxStaleRetries - 1, wantRuns: maxStaleRetries, wantOK: true},
		{name: "always stale", staleRuns: 1000, wantRuns: maxStaleRetries, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeActivities(5)
			f.onCommit = func(n int, ref activities.BatchRef) (activities.CommitResult, error) {
				if n <= tt.staleRuns {
					return activities.CommitResult{Stale: true}, nil
				}
				return f.defaultCommit(ref), nil
			}
			h := newHarness(t, testSettings(), f)
			h.at(5*time.Minute, func() {
				st := h.status()
				assert.Equal(t, min(tt.staleRuns, maxStaleRetries), st.StaleRetries)
				if tt.wantOK {
					assert.Equal(t, 1, st.Batches)
					assert.Equal(t, 5, st.UsersMatched)
					assert.Zero(t, st.Errors)
				} else {
					assert.Zero(t, st.Batches)
					assert.Equal(t, 1, st.Errors)
					assert.Contains(t, st.LastError, "kept being rewritten")
				}
				h.env.CancelWorkflow()
			})
			h.run()
			h.requireCanceled()

			want := make([]string, tt.wantRuns)
			for i := range want {
				want[i] = tok(1)
			}
			for _, act := range []string{actScore, actInsights, actCommit} {
				assert.Equal(t, want, f.tokens(act), act)
			}
			if tt.wantOK {
				assert.Empty(t, f.callsTo(actRelease))
			} else {
				assert.Equal(t, []string{tok(1)}, f.tokens(actRelease))
			}
		})
	}
}

func TestRejectsEmptyEventID(t *testing.T) {
	f := newFakeActivities(5)
	h := newHarness(t, testSettings(), f)
	h.in.EventID = ""
	h.run()

	err := h.env.GetWorkflowError()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.Truef(t, errors.As(err, &appErr), "want an application error, got %v", err)
	assert.True(t, appErr.NonRetryable())
	assert.Equal(t, "BadInput", appErr.Type())
	assert.Empty(t, f.sequence())
}

func TestIdlePoll(t *testing.T) {
	s := testSettings()
	s.IdlePoll = 5 * time.Minute
	f := newFakeActivities()
	h := newHarness(t, s, f)
	for i, check := range []struct {
		at   time.Duration
		want int
	}{
		{4 * time.Minute, 1},
		{6 * time.Minute, 2},
		{11 * time.Minute, 3},
	} {
		h.at(check.at, func() {
			assert.Equal(t, check.want, f.count(actClaim), "claims at check %d (%v)", i, check.at)
			assert.Equal(t, PhaseIdle, h.status().Phase)
		})
	}
	h.at(12*time.Minute, h.env.CancelWorkflow)
	h.run()
	h.requireCanceled()
	assert.Equal(t, []string{tok(1), tok(2), tok(3)}, f.tokens(actClaim))
}

func TestWakeDuringEmptyClaimIsNotLost(t *testing.T) {
	// The claim takes a minute and finds nothing, but a wake came in
	// meanwhile: the rows it announced may have missed that claim, so the
	// workflow claims again at once instead of idling for IdlePoll.
	f := newFakeActivities()
	f.delays[actClaim] = time.Minute
	h := newHarness(t, testSettings(), f)
	h.at(30*time.Second, func() { h.signal(SignalWake) })
	h.at(10*time.Minute, func() {
		assert.Equal(t, []string{tok(1), tok(2)}, f.tokens(actClaim))
		h.env.CancelWorkflow()
	})
	h.run()
	h.requireCanceled()
}

// currentDetails reads what the Web UI shows as the workflow's current details.
func (h *harness) currentDetails() string {
	h.t.Helper()
	v, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(h.t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(h.t, v.Get(&md))
	return md.GetCurrentDetails()
}

// update sends an update and returns the status it completed with.
func (h *harness) update(name string, got *Status) {
	h.env.UpdateWorkflow(name, name+"-1", &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { h.t.Errorf("update %s rejected: %v", name, err) },
		OnComplete: func(v interface{}, err error) {
			if err != nil {
				h.t.Errorf("update %s failed: %v", name, err)
				return
			}
			*got = v.(Status)
		},
	})
}

func TestPauseAndResumeUpdatesReturnTheNewState(t *testing.T) {
	f := newFakeActivities()
	h := newHarness(t, testSettings(), f)
	var paused, resumed Status
	h.at(time.Minute, func() { h.update(UpdatePause, &paused) })
	h.at(2*time.Minute, func() {
		assert.Contains(t, h.currentDetails(), "Paused")
		assert.Contains(t, h.currentDetails(), testEventCode)
	})
	h.at(3*time.Minute, func() { h.update(UpdateResume, &resumed) })
	h.at(4*time.Minute, h.env.CancelWorkflow)
	h.run()
	assert.True(t, paused.Paused)
	assert.Equal(t, PhasePaused, paused.Phase)
	assert.Equal(t, testEventCode, paused.EventCode)
	assert.False(t, resumed.Paused)
	assert.NotEqual(t, PhasePaused, resumed.Phase)
}

func TestDisableFinishesAfterTheCurrentBatch(t *testing.T) {
	f := newFakeActivities(5, 5, 5)
	f.delays[actScore] = time.Minute
	h := newHarness(t, testSettings(), f)
	var got Status
	h.at(30*time.Second, func() { h.update(UpdateDisable, &got) })
	h.run()
	require.NoError(t, h.env.GetWorkflowError(), "a disabled event's workflow completes cleanly")
	assert.Equal(t, PhaseDisabled, got.Phase)
	assert.Equal(t, 1, f.count(actCommit), "the batch in flight is committed, no further one is claimed")
	assert.Equal(t, 1, f.count(actClaim))
}

// TestPauseIsRefusedOnceDisabled: a run that is finishing after a disable
// refuses pause and resume in the validator, with a typed error the
// starter can show, and still finishes.
func TestPauseIsRefusedOnceDisabled(t *testing.T) {
	f := newFakeActivities(5, 5, 5)
	f.delays[actScore] = time.Minute
	h := newHarness(t, testSettings(), f)
	var disabled Status
	var refusal error
	h.at(30*time.Second, func() { h.update(UpdateDisable, &disabled) })
	h.at(40*time.Second, func() {
		h.env.UpdateWorkflow(UpdatePause, "pause-after-disable", &testsuite.TestUpdateCallback{
			OnAccept:   func() { t.Error("pause accepted after disable") },
			OnReject:   func(err error) { refusal = err },
			OnComplete: func(any, error) {},
		})
	})
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, refusal, &appErr)
	assert.Equal(t, ErrTypeDisabled, appErr.Type())
}

func TestDisabledOrDeletedEventFinishesAtStart(t *testing.T) {
	for name, setup := range map[string]func(f *fakeActivities){
		"disabled": func(f *fakeActivities) { f.event.Enabled = false },
		"deleted": func(f *fakeActivities) {
			f.eventErr = temporal.NewNonRetryableApplicationError("gone", activities.ErrTypeEventNotFound, nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeActivities(5)
			setup(f)
			h := newHarness(t, testSettings(), f)
			h.run()
			require.NoError(t, h.env.GetWorkflowError())
			assert.Equal(t, 0, f.count(actClaim))
		})
	}
}

func TestCurrentDetailsAndSearchAttributesFollowProgress(t *testing.T) {
	f := newFakeActivities(4, 4)
	h := newHarness(t, testSettings(), f)
	var upserted struct {
		code   string
		users  int64
		paused bool
	}
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if code, ok := sa.GetKeyword(AttrEventCode); ok {
			upserted.code = code
		}
		if users, ok := sa.GetInt64(AttrUsersMatched); ok {
			upserted.users = users
		}
		if paused, ok := sa.GetBool(AttrPaused); ok {
			upserted.paused = paused
		}
	}).Return(nil)
	h.at(time.Hour, func() {
		st := h.status()
		details := h.currentDetails()
		assert.Contains(t, details, "## Event test-event")
		assert.Contains(t, details, "**State:** Idle")
		assert.Contains(t, details, fmt.Sprintf("%d users matched", st.UsersMatched))
		assert.Equal(t, testEventCode, upserted.code)
		assert.Equal(t, int64(st.UsersMatched), upserted.users)
		assert.False(t, upserted.paused)
		h.env.CancelWorkflow()
	})
	h.run()
}

// A batch of at least fanOutMinBatch members, claimed while several workers
// poll the shard queue, is scored in shards, each its own activity, and
// merged by ScoreBatch; with one worker, or a small batch, it is scored
// whole.
func TestLargeBatchFansOutToShards(t *testing.T) {
	f := newFakeActivities()
	claims := []int{3500, 3500, 10}
	f.onClaim = func(n int, in activities.ClaimInput) (activities.ClaimResult, error) {
		if n > len(claims) {
			return activities.ClaimResult{}, nil
		}
		assert.Equal(t, fanOutMinBatch, in.FanOutMin)
		// The second large batch finds a single worker on the shard queue.
		return activities.ClaimResult{Claimed: claims[n-1], ShardWorkers: map[int]int{1: 3, 2: 1}[n]}, nil
	}
	s := testSettings()
	s.BatchSize = 5000
	h := newHarness(t, s, f)
	h.at(time.Hour, h.env.CancelWorkflow)
	h.run()
	h.requireCanceled()

	shards := f.callsTo(actShard)
	require.Len(t, shards, 4, "3,500 members in shards of 1,000")
	slices.SortFunc(shards, func(a, b call) int { return a.Shard - b.Shard }) // they run in parallel
	for k, c := range shards {
		assert.Equal(t, tok(1), c.Token)
		assert.Equal(t, k, c.Shard)
		assert.Equal(t, 4, c.Shards)
	}
	scores := f.callsTo(actScore)
	require.Len(t, scores, 3)
	assert.Equal(t, 4, scores[0].Shards, "the large batch merges its shards")
	assert.Equal(t, 0, scores[1].Shards, "with one worker a large batch is scored whole")
	assert.Equal(t, 0, scores[2].Shards, "the small batch is scored whole")
}

// A claim whose batch an earlier attempt of the run already committed (its
// worker died before the history kept the local activities) is skipped: no
// scoring, no commit, and the run goes straight on to its next batch.
func TestFinishedBatchIsSkipped(t *testing.T) {
	f := newFakeActivities()
	f.onClaim = func(n int, in activities.ClaimInput) (activities.ClaimResult, error) {
		switch n {
		case 1:
			return activities.ClaimResult{Claimed: 20, Finished: true}, nil
		case 2:
			return activities.ClaimResult{Claimed: 5}, nil
		}
		return activities.ClaimResult{}, nil
	}
	h := newHarness(t, testSettings(), f)
	h.at(time.Hour, h.env.CancelWorkflow)
	h.run()
	h.requireCanceled()
	assert.Equal(t, []string{tok(2)}, f.tokens(actScore), "only the unfinished batch is scored")
	assert.Equal(t, []string{tok(2)}, f.tokens(actCommit))
	assert.Equal(t, 0, f.count(actRelease), "a finished batch is not released again")
}

// TestReleasedBatchIsNeitherCountedNorAnError: a batch a stopping worker
// gave back commits nothing; the run neither counts it nor records an
// error, and goes straight on to its next claim.
func TestReleasedBatchIsNeitherCountedNorAnError(t *testing.T) {
	f := newFakeActivities(3, 3)
	f.onCommit = func(n int, ref activities.BatchRef) (activities.CommitResult, error) {
		if n == 1 {
			return activities.CommitResult{Released: true, QueueDepth: 3}, nil
		}
		return f.defaultCommit(ref), nil
	}
	h := newHarness(t, testSettings(), f)
	h.at(10*time.Minute, func() {
		st := h.status()
		assert.Equal(t, 1, st.Batches, "only the committed batch counts")
		assert.Equal(t, 0, st.Errors)
		assert.Empty(t, st.LastError)
	})
	h.at(11*time.Minute, h.env.CancelWorkflow)
	h.run()
	assert.Equal(t, []string{tok(1), tok(2)}, f.tokens(actCommit))
}
