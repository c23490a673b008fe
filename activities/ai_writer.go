package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// Fallback reasons of the AI writer, besides insight.Classify's labels.
const (
	// FallbackAwaitingBackfill: the batch committed the fallback because
	// the pair's answer was not in the cache; the event's backfill asks
	// the model and upgrades it (see Activities.BackfillRound).
	FallbackAwaitingBackfill = "awaiting_backfill"
	// FallbackStopped: an earlier call of the backfill round failed the
	// way a dead or refusing endpoint does, so the rest of the round did
	// not try.
	FallbackStopped = "stopped_after_failure"
)

// AIWriter writes insights with a model. Both directions of a pair come
// from one call; answers are cached by profile content, model and prompt
// version, across events. A batch's insight step only reads the cache
// (WriteInsights), so a commit never waits for the model; the event's
// backfill asks the model for the rest (Backfill).
type AIWriter struct {
	Client      *insight.Client
	Store       *store.Store
	Model       string
	Concurrency int
	Logger      *slog.Logger

	// lastAnswer is when the endpoint last answered a call (any answer, in
	// Unix nanoseconds), or 0 once a call failed the way a dead endpoint
	// does: a round right after answers skips the solo first call.
	lastAnswer atomic.Int64
}

// answeredWithin is how recent the endpoint's last answer must be for a
// round to start all its calls at once. A round's solo first call costs
// one model latency, and a backfill runs many short rounds; an endpoint
// that died since costs at most one round of calls in flight
// (AI_CONCURRENCY), after which rounds probe alone again.
const answeredWithin = time.Minute

// budgetReserve (at most a tenth of the time left) is kept from the activity's deadline for writing fallbacks
// and saving, so a slow model never makes the activity itself time out.
const budgetReserve = 3 * time.Second

// pairJob is one unordered pair of members that needs at least one insight.
type pairJob struct {
	first, second         insight.Profile
	firstHash, secondHash string
	facts                 insight.Facts
	// forFirst and forSecond are the pending matches this pair answers:
	// the one whose viewer is first, the one whose viewer is second, or
	// both (nil where that direction is not pending).
	forFirst, forSecond *store.PendingInsight

	answer   insight.Result
	fromAI   bool
	reason   string // fallback reason when !fromAI
	cacheHit bool
	called   bool
	latency  time.Duration
}

// side is one direction of a pair: the pending match and its answer.
type side struct {
	p    *store.PendingInsight
	text string
}

func (j *pairJob) sides() []side {
	var out []side
	for _, s := range []side{{j.forFirst, j.answer.ForFirst}, {j.forSecond, j.answer.ForSecond}} {
		if s.p != nil {
			out = append(out, s)
		}
	}
	return out
}

// WriteInsights implements InsightWriter: the batch's insights from the
// cache, the fallback for every other pair. It never calls the model.
func (w *AIWriter) WriteInsights(ctx context.Context, pending []store.PendingInsight) ([]store.Insight, InsightResult, error) {
	jobs, err := pairJobs(pending)
	if err != nil {
		return nil, InsightResult{}, err
	}
	var res InsightResult
	if err := w.useCache(ctx, jobs); err != nil {
		return nil, res, err
	}
	insights := make([]store.Insight, 0, len(pending))
	for _, j := range jobs {
		if j.cacheHit {
			res.CacheHits++
		}
		for _, s := range j.sides() {
			if j.fromAI {
				insights = append(insights, store.Insight{UserID: s.p.UserID, Rank: s.p.Rank, Text: s.text, Source: SourceAI})
				res.AI++
				continue
			}
			in, err := fallbackFor(*s.p)
			if err != nil {
				return nil, res, err
			}
			insights = append(insights, in)
			res.Fallback++
			res.addFallbacks(FallbackAwaitingBackfill, 1)
		}
	}
	return insights, res, nil
}

// BackfillAnswers is what the model answered for a backfill round.
type BackfillAnswers struct {
	// AI maps pending matches (by their index in the input) to AI text:
	// from the cache or from a call made now.
	AI map[int]string
	// Refused maps pending matches whose answer the model refused, or
	// validation rejected, to the reason: asking again would cost the
	// same and likely fail the same way.
	Refused map[int]string
	Result  InsightResult
	// Failed counts calls that failed for reasons asking again later may
	// fix (timeouts, 5xx, 429, a refused key); FailureReason is the first
	// one's label (insight.Classify).
	Failed        int
	FailureReason string
	// Stopped: a call failed that way, so the round asked nothing more.
	Stopped bool
	// Answered counts the pairs a call answered (not the cache).
	Answered int
	// Rejections counts the answers (one per pair asked) that validation
	// rejected or the model refused, by rule, sorted by rule.
	Rejections []store.RuleCount
}

// Backfill implements InsightWriter: it answers the pending matches from
// the cache and asks the model for the others, at most maxCalls pairs of
// them (0: no limit), and stops at the first failure that is not about the
// answer itself, so a dead endpoint costs one call a round rather than one
// per pair.
func (w *AIWriter) Backfill(ctx context.Context, pending []store.PendingInsight, maxCalls int) (BackfillAnswers, error) {
	out := BackfillAnswers{AI: map[int]string{}, Refused: map[int]string{}}
	jobs, err := pairJobs(pending)
	if err != nil {
		return out, err
	}
	if err := w.useCache(ctx, jobs); err != nil {
		return out, err
	}
	var todo []*pairJob
	for _, j := range jobs {
		if !j.cacheHit && (maxCalls <= 0 || len(todo) < maxCalls) {
			todo = append(todo, j)
		}
	}
	out.Stopped = w.callModel(ctx, todo)

	index := make(map[*store.PendingInsight]int, len(pending))
	for i := range pending {
		index[&pending[i]] = i
	}
	var fresh []store.CachedPair
	res := &out.Result
	for _, j := range jobs {
		if j.cacheHit {
			res.CacheHits++
		}
		if j.called {
			res.AICalls += max(j.answer.Attempts, 1)
			res.PromptTokens += j.answer.PromptTokens
			res.CompletionTokens += j.answer.CompletionTokens
			res.AILatencyMS += j.latency.Milliseconds()
		}
		switch {
		case j.fromAI:
			if !j.cacheHit {
				out.Answered++
				fresh = append(fresh, store.CachedPair{FirstHash: j.firstHash, SecondHash: j.secondHash,
					ForFirst: j.answer.ForFirst, ForSecond: j.answer.ForSecond})
			}
			for _, s := range j.sides() {
				out.AI[index[s.p]] = s.text
				res.AI++
			}
		case strings.HasPrefix(j.reason, "invalid_"):
			rule := strings.TrimPrefix(j.reason, "invalid_")
			if out.Rejections = addRuleCount(out.Rejections, rule); ruleCount(out.Rejections, rule) == 1 {
				// One sample per rule and round, with the pair's IDs only:
				// the answer and the profiles stay out of the logs.
				s := j.sides()[0]
				w.log().Debug("AI answer rejected", "rule", rule, "user_id", s.p.UserID, "matched_user_id", s.p.MatchedUserID)
			}
			for _, s := range j.sides() {
				out.Refused[index[s.p]] = j.reason
				res.Fallback++
				res.addFallbacks(j.reason, 1)
			}
		case j.called:
			out.Failed++
			if out.FailureReason == "" {
				out.FailureReason = j.reason
			}
		}
	}
	// Cached before the fenced write: an answer whose list changed
	// meanwhile still serves the pair wherever it is listed next.
	if err := w.Store.CacheInsights(ctx, w.Model, insight.PromptVersion, fresh); err != nil {
		w.log().Warn("could not cache AI insights", "error", err)
	}
	return out, nil
}

// addRuleCount counts one more answer rejected for rule, keeping counts
// sorted by rule.
func addRuleCount(counts []store.RuleCount, rule string) []store.RuleCount {
	i, found := slices.BinarySearchFunc(counts, rule, func(c store.RuleCount, rule string) int { return strings.Compare(c.Rule, rule) })
	if !found {
		counts = slices.Insert(counts, i, store.RuleCount{Rule: rule})
	}
	counts[i].Answers++
	return counts
}

func ruleCount(counts []store.RuleCount, rule string) int {
	for _, c := range counts {
		if c.Rule == rule {
			return c.Answers
		}
	}
	return 0
}

// pairJobs groups pending matches by unordered pair, ordered by profile
// hash so the same pair always has the same cache key.
func pairJobs(pending []store.PendingInsight) ([]*pairJob, error) {
	byKey := map[[2]string]*pairJob{}
	var jobs []*pairJob
	for i := range pending {
		p := &pending[i]
		viewer, other := promptProfile(p.Viewer), promptProfile(p.Matched)
		vh, oh := profileHash(viewer), profileHash(other)
		var reasons matching.Reasons
		if err := json.Unmarshal(p.Reasons, &reasons); err != nil {
			return nil, fmt.Errorf("decode reasons of %s → %s: %w", p.UserID, p.MatchedUserID, err)
		}
		viewerFirst := vh < oh || (vh == oh && p.UserID < p.MatchedUserID)
		key := [2]string{p.UserID, p.MatchedUserID}
		if !viewerFirst {
			key = [2]string{p.MatchedUserID, p.UserID}
		}
		j, ok := byKey[key]
		if !ok {
			j = &pairJob{}
			if viewerFirst {
				j.first, j.second, j.firstHash, j.secondHash = viewer, other, vh, oh
				j.facts = insight.Facts{SharedInterests: reasons.SharedInterests, FirstOffersSecond: reasons.YouOffer,
					SecondOffersFirst: reasons.TheyOffer, SameIndustry: reasons.SameIndustry}
			} else {
				j.first, j.second, j.firstHash, j.secondHash = other, viewer, oh, vh
				j.facts = insight.Facts{SharedInterests: reasons.SharedInterests, FirstOffersSecond: reasons.TheyOffer,
					SecondOffersFirst: reasons.YouOffer, SameIndustry: reasons.SameIndustry}
			}
			byKey[key] = j
			jobs = append(jobs, j)
		}
		if viewerFirst {
			j.forFirst = p
		} else {
			j.forSecond = p
		}
	}
	return jobs, nil
}

func promptProfile(m attendee.Profile) insight.Profile {
	return insight.Profile{Name: m.DisplayName, JobTitle: m.JobTitle, Company: m.Company, Industry: m.Industry,
		Interests: m.Interests, LookingFor: m.LookingFor, Offering: m.Offering, Bio: m.Bio}
}

// ProfileCacheKey is the insight cache's key for a member's profile, read
// as the store reads it for the backfill: a pair's cached answer is keyed
// by the two members' keys (with the model and prompt version).
func ProfileCacheKey(m attendee.Profile) string { return profileHash(promptProfile(m)) }

// profileHash identifies a profile's content as the prompt sees it.
func profileHash(p insight.Profile) string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (w *AIWriter) useCache(ctx context.Context, jobs []*pairJob) error {
	if len(jobs) == 0 {
		return nil
	}
	firsts := make([]string, len(jobs))
	seconds := make([]string, len(jobs))
	for i, j := range jobs {
		firsts[i], seconds[i] = j.firstHash, j.secondHash
	}
	cached, err := w.Store.CachedInsights(ctx, w.Model, insight.PromptVersion, firsts, seconds)
	if err != nil {
		return err
	}
	hits := make(map[[2]string]store.CachedPair, len(cached))
	for _, c := range cached {
		hits[[2]string{c.FirstHash, c.SecondHash}] = c
	}
	for _, j := range jobs {
		if c, ok := hits[[2]string{j.firstHash, j.secondHash}]; ok {
			j.cacheHit, j.fromAI = true, true
			j.answer = insight.Result{ForFirst: c.ForFirst, ForSecond: c.ForSecond}
		}
	}
	return nil
}

// callModel asks the model for the given pairs, Concurrency at a time,
// until the activity's time runs out or a call fails for a reason that is
// not about its answer (see endpointFailure), and reports whether such a
// failure stopped it.
func (w *AIWriter) callModel(ctx context.Context, todo []*pairJob) bool {
	budget := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		reserve := min(budgetReserve, time.Until(deadline)/10)
		budget, cancel = context.WithDeadline(ctx, deadline.Add(-reserve))
		defer cancel()
	}
	if len(todo) == 0 {
		return false
	}
	// The first call goes alone, unless the endpoint answered moments ago:
	// a bad key, an unknown model or a dead endpoint then costs one
	// request, not one per worker in flight.
	var calls callState
	if last := w.lastAnswer.Load(); last == 0 || time.Since(time.Unix(0, last)) > answeredWithin {
		w.callOne(budget, todo[0], &calls)
		todo = todo[1:]
	}

	queue := make(chan *pairJob)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range max(w.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				w.callOne(budget, j, &calls)
				if n := done.Add(1); n%20 == 0 && activity.IsActivity(ctx) {
					activity.RecordHeartbeat(ctx, n)
				}
			}
		}()
	}
	for _, j := range todo {
		queue <- j
	}
	close(queue)
	wg.Wait()
	return calls.stopped.Load()
}

// callState is what a round's calls share.
type callState struct {
	// stopped: a call failed the way a dead or refusing endpoint does.
	stopped atomic.Bool
	// slowest is the longest a call has taken so far, in nanoseconds: a
	// call that would likely outlast the round's time is not started, so
	// the budget pays for no call the deadline cuts off.
	slowest atomic.Int64
}

func (c *callState) took(d time.Duration) {
	for {
		old := c.slowest.Load()
		if int64(d) <= old || c.slowest.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// endpointFailure reports whether a call's failure says the endpoint, not
// the pair, is the problem: asking for more pairs now would fail the same
// way and spend the budget on errors.
func endpointFailure(reason string) bool {
	switch reason {
	case "rate_limited", "timeout", "server_error", "permanent", "other":
		return true
	}
	return false
}

func (w *AIWriter) callOne(ctx context.Context, j *pairJob, calls *callState) {
	if calls.stopped.Load() {
		j.reason = FallbackStopped
		return
	}
	if err := ctx.Err(); err != nil {
		j.reason = insight.Classify(err)
		return
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < time.Duration(calls.slowest.Load()) {
		j.reason = insight.Classify(context.DeadlineExceeded)
		return
	}
	j.called = true
	start := time.Now()
	answer, err := w.Client.WritePair(ctx, insight.Pair{First: j.first, Second: j.second, Shared: j.facts})
	j.latency = time.Since(start)
	j.answer = answer
	if err == nil {
		j.fromAI = true
		calls.took(j.latency)
		w.lastAnswer.Store(time.Now().UnixNano())
		return
	}
	j.answer.ForFirst, j.answer.ForSecond = "", ""
	j.reason = insight.Classify(err)
	if endpointFailure(j.reason) {
		w.lastAnswer.Store(0)
	} else {
		w.lastAnswer.Store(time.Now().UnixNano()) // it answered; the answer was the problem
	}
	if endpointFailure(j.reason) && !calls.stopped.Swap(true) {
		w.log().Warn("a model call failed; this backfill round asks nothing more", "error", err)
	}
}

func (w *AIWriter) log() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}
