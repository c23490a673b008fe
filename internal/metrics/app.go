package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// Label values of matchmaking_ai_tokens_total{kind}.
const (
	TokensPrompt     = "prompt"
	TokensCompletion = "completion"
)

// StepBuckets are the buckets, in seconds, of
// matchmaking_batch_duration_seconds: steps take milliseconds without AI
// and up to MAX_RUNTIME_MS with it.
var StepBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 45, 90, 180}

// App records the matchmaking engine's own metrics. A nil *App records
// nothing, so code holding an optional one calls it unconditionally.
type App struct {
	batches      *prometheus.CounterVec
	usersMatched *prometheus.CounterVec
	queueDepth   *prometheus.GaugeVec
	stepDuration *prometheus.HistogramVec
	aiCalls      *prometheus.CounterVec
	aiCacheHits  *prometheus.CounterVec
	fallbacks    *prometheus.CounterVec
	aiTokens     *prometheus.CounterVec
	quarantined  *prometheus.GaugeVec
	deferred     *prometheus.CounterVec
	receiving    prometheus.Gauge
	aiShare      *prometheus.GaugeVec
	aiBacklog    *prometheus.GaugeVec
	aiSpend      *prometheus.GaugeVec
	upgraded     *prometheus.CounterVec
	fenced       *prometheus.CounterVec

	// events are the event IDs that have series, so RetainEvents can drop
	// those of events no longer matched.
	mu     sync.Mutex
	events map[string]bool
}

// forEvent records eventID's series with record, noting that the event has
// series; under the lock, so RetainEvents never deletes an event's series
// halfway through an update.
func (a *App) forEvent(eventID string, record func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.events == nil {
		a.events = map[string]bool{}
	}
	a.events[eventID] = true
	record()
}

// RetainEvents deletes the series of every event not in keep (the enabled
// events), so an event that was disabled or deleted stops being exported
// instead of showing its last values for the life of the process. It
// returns how many events' series it deleted.
func (a *App) RetainEvents(keep map[string]bool) int {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	dropped := 0
	for id := range a.events {
		if keep[id] {
			continue
		}
		for _, vec := range []interface{ DeleteLabelValues(...string) bool }{
			a.batches, a.usersMatched, a.queueDepth, a.aiCalls, a.aiCacheHits, a.quarantined, a.deferred,
			a.aiShare, a.aiBacklog, a.aiSpend, a.upgraded, a.fenced,
		} {
			vec.DeleteLabelValues(id)
		}
		delete(a.events, id)
		dropped++
	}
	return dropped
}

// NewApp creates the engine's metrics and registers them with reg.
func NewApp(reg prometheus.Registerer) (*App, error) {
	a := &App{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_batches_total",
			Help: "Batches committed, by event.",
		}, []string{"event_id"}),
		usersMatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_users_matched_total",
			Help: "Queued members whose lists a committed batch wrote, by event.",
		}, []string{"event_id"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "matchmaking_queue_depth",
			Help: "Members in the event's queue (claimed or not), as of the event's last commit on this worker.",
		}, []string{"event_id"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "matchmaking_batch_duration_seconds",
			Help: "Duration of one attempt of a batch step (claim, score, insights, commit, release); " +
				"a batch's claim-to-commit time is the sum of its steps.",
			Buckets: StepBuckets,
		}, []string{"step"}),
		aiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_ai_calls_total",
			Help: "Model calls made for insights (retries included), by event.",
		}, []string{"event_id"}),
		aiCacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_ai_cache_hits_total",
			Help: "Pairs whose insights came from the insight cache instead of a model call, by event.",
		}, []string{"event_id"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_insight_fallbacks_total",
			Help: "Insights written as the deterministic fallback, by reason.",
		}, []string{"reason"}),
		aiTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_ai_tokens_total",
			Help: "Tokens the model reported for insight calls, by kind (prompt or completion).",
		}, []string{"kind"}),
		quarantined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "matchmaking_quarantined_members",
			Help: "Members of the event in quarantine (their rows were refused; see starter status), " +
				"as of the event's last quarantine on this worker.",
		}, []string{"event_id"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_lists_deferred_total",
			Help: "Lists a commit set aside because they named a member who left the event while the batch ran; " +
				"their owners go round again.",
		}, []string{"event_id"}),
		receiving: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "matchmaking_listener_receiving",
			Help: "1 once the queue listener's connection has received a notification (it sends itself one after every " +
				"connect), 0 until then: wake-ups then come from a poll every few seconds. A 0 that stays means LISTEN " +
				"goes through a transaction-mode pooler; point DATABASE_LISTEN_URL at a direct or session-mode connection.",
		}),
		aiShare: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "matchmaking_ai_insight_share",
			Help: "Share (0 to 1) of the event's current matches whose insight is AI text, as of the AI backfill's last round on this worker.",
		}, []string{"event_id"}),
		aiBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "matchmaking_ai_backlog",
			Help: "The event's fallback insights the AI backfill still means to upgrade, as of its last round on this worker.",
		}, []string{"event_id"}),
		aiSpend: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "matchmaking_ai_spend_usd",
			Help: "What the event's AI calls cost, all runs together, in USD at this worker's price of OPENAI_MODEL " +
				"(0 when the model has no price), as of the AI backfill's last round on this worker.",
		}, []string{"event_id"}),
		upgraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_ai_backfill_upgrades_total",
			Help: "Fallback insights the AI backfill replaced with AI text.",
		}, []string{"event_id"}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchmaking_ai_backfill_fenced_total",
			Help: "AI answers the backfill did not write because the pair's list was rewritten, or a profile edited, after it read them.",
		}, []string{"event_id"}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{a.batches, a.usersMatched, a.queueDepth, a.stepDuration,
		a.aiCalls, a.aiCacheHits, a.fallbacks, a.aiTokens, a.quarantined, a.deferred, a.receiving,
		a.aiShare, a.aiBacklog, a.aiSpend, a.upgraded, a.fenced} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// BatchCommitted counts a committed batch and the members it matched.
func (a *App) BatchCommitted(eventID string, users int) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() {
		a.batches.WithLabelValues(eventID).Inc()
		addInt(a.usersMatched.WithLabelValues(eventID), users)
	})
}

// SetQueueDepth records how many members the event has queued.
func (a *App) SetQueueDepth(eventID string, depth int) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() { a.queueDepth.WithLabelValues(eventID).Set(float64(depth)) })
}

// SetQuarantined records how many of the event's members are quarantined.
func (a *App) SetQuarantined(eventID string, n int) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() { a.quarantined.WithLabelValues(eventID).Set(float64(n)) })
}

// ListsDeferred counts lists a commit set aside because of departures.
func (a *App) ListsDeferred(eventID string, n int) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() { addInt(a.deferred.WithLabelValues(eventID), n) })
}

// SetListenerReceiving records whether the queue listener's connection has
// shown that notifications reach it.
func (a *App) SetListenerReceiving(ok bool) {
	if a == nil {
		return
	}
	if ok {
		a.receiving.Set(1)
	} else {
		a.receiving.Set(0)
	}
}

// ObserveStep records how long one attempt of a batch step took.
func (a *App) ObserveStep(step string, d time.Duration) {
	if a == nil {
		return
	}
	a.stepDuration.WithLabelValues(step).Observe(d.Seconds())
}

// AIUsage counts what one insight step asked of the model.
func (a *App) AIUsage(eventID string, calls, cacheHits, promptTokens, completionTokens int) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() {
		addInt(a.aiCalls.WithLabelValues(eventID), calls)
		addInt(a.aiCacheHits.WithLabelValues(eventID), cacheHits)
	})
	addInt(a.aiTokens.WithLabelValues(TokensPrompt), promptTokens)
	addInt(a.aiTokens.WithLabelValues(TokensCompletion), completionTokens)
}

// InsightFallbacks counts n fallback insights written for reason.
func (a *App) InsightFallbacks(reason string, n int) {
	if a == nil {
		return
	}
	addInt(a.fallbacks.WithLabelValues(reason), n)
}

// SetAIProgress records the share of the event's current matches that have
// an AI insight, and how many fallbacks the backfill still means to upgrade.
func (a *App) SetAIProgress(eventID string, ai, matches, backlog int) {
	if a == nil {
		return
	}
	share := 0.0
	if matches > 0 {
		share = float64(ai) / float64(matches)
	}
	a.forEvent(eventID, func() {
		a.aiShare.WithLabelValues(eventID).Set(share)
		a.aiBacklog.WithLabelValues(eventID).Set(float64(backlog))
	})
}

// SetAISpend shows what the event's AI calls cost, in USD.
func (a *App) SetAISpend(eventID string, usd float64) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() { a.aiSpend.WithLabelValues(eventID).Set(usd) })
}

// BackfillRound counts a backfill round's AI insights written, and the
// answers fenced out because their pair was no longer listed as read.
func (a *App) BackfillRound(eventID string, upgraded, fenced int) {
	if a == nil {
		return
	}
	a.forEvent(eventID, func() {
		addInt(a.upgraded.WithLabelValues(eventID), upgraded)
		addInt(a.fenced.WithLabelValues(eventID), fenced)
	})
}

// addInt adds n when positive. It does create the series at 0 otherwise,
// so that a rate over it exists before the first occurrence.
func addInt(c prometheus.Counter, n int) {
	if n > 0 {
		c.Add(float64(n))
	}
}

// ActivityInterceptor times every activity attempt whose type is a key of
// steps into matchmaking_batch_duration_seconds{step=steps[type]}. It
// belongs in worker.Options.Interceptors. On a nil *App it records nothing.
func (a *App) ActivityInterceptor(steps map[string]string) interceptor.WorkerInterceptor {
	return &workerInterceptor{app: a, steps: steps}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	app   *App
	steps map[string]string
}

func (w *workerInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInterceptor{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, w: w}
}

type activityInterceptor struct {
	interceptor.ActivityInboundInterceptorBase
	w *workerInterceptor
}

func (i *activityInterceptor) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	step, ok := i.w.steps[activity.GetInfo(ctx).ActivityType.Name]
	if !ok || i.w.app == nil {
		return i.Next.ExecuteActivity(ctx, in)
	}
	start := time.Now()
	defer func() { i.w.app.ObserveStep(step, time.Since(start)) }()
	return i.Next.ExecuteActivity(ctx, in)
}
