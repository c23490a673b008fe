package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
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
	// FallbackStopped: an earlier call in the batch failed for good (bad
	// key, unknown model), so the rest of the batch did not try.
	FallbackStopped = "stopped_after_permanent_error"
	// FallbackDeferred: every member who needs this pair's insight is still
	// queued for a later batch, which rewrites their list and asks then.
	// While an event is first matched this saves the calls for pairs that
	// later batches would displace.
	FallbackDeferred = "deferred_to_own_batch"
)

// AIWriter writes insights with a model. Both directions of a pair come
// from one call; answers are cached by profile content, model and prompt
// version; whatever the model cannot answer within the activity's budget
// gets the deterministic fallback.
type AIWriter struct {
	Client      *insight.Client
	Store       *store.Store
	Model       string
	Concurrency int
	Logger      *slog.Logger
}

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

// deferred reports whether every direction this pair answers belongs to a
// viewer whose own batch is still to come.
func (j *pairJob) deferred() bool {
	for _, p := range []*store.PendingInsight{j.forFirst, j.forSecond} {
		if p != nil && !p.ViewerQueued {
			return false
		}
	}
	return true
}

// WriteInsights implements InsightWriter.
func (w *AIWriter) WriteInsights(ctx context.Context, pending []store.PendingInsight) ([]store.Insight, InsightResult, error) {
	jobs, err := pairJobs(pending)
	if err != nil {
		return nil, InsightResult{}, err
	}
	var res InsightResult
	if err := w.useCache(ctx, jobs); err != nil {
		return nil, res, err
	}
	w.callModel(ctx, jobs)

	insights := make([]store.Insight, 0, len(pending))
	var fresh []store.CachedPair
	for _, j := range jobs {
		if j.cacheHit {
			res.CacheHits++
		}
		if j.fromAI && !j.cacheHit {
			fresh = append(fresh, store.CachedPair{FirstHash: j.firstHash, SecondHash: j.secondHash,
				ForFirst: j.answer.ForFirst, ForSecond: j.answer.ForSecond})
		}
		if j.called {
			res.AICalls += max(j.answer.Attempts, 1)
			res.PromptTokens += j.answer.PromptTokens
			res.CompletionTokens += j.answer.CompletionTokens
			res.AILatencyMS += j.latency.Milliseconds()
		}
		for _, side := range []struct {
			p    *store.PendingInsight
			text string
		}{{j.forFirst, j.answer.ForFirst}, {j.forSecond, j.answer.ForSecond}} {
			if side.p == nil {
				continue
			}
			if j.fromAI {
				insights = append(insights, store.Insight{UserID: side.p.UserID, Rank: side.p.Rank, Text: side.text, Source: SourceAI})
				res.AI++
				continue
			}
			in, err := fallbackFor(*side.p)
			if err != nil {
				return nil, res, err
			}
			insights = append(insights, in)
			res.Fallback++
			res.addFallbacks(j.reason, 1)
		}
	}
	if err := w.Store.CacheInsights(ctx, w.Model, insight.PromptVersion, fresh); err != nil {
		// The insights are still good; only a later re-match pays again.
		w.log().Warn("could not cache AI insights", "error", err)
	}
	return insights, res, nil
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

// callModel asks the model for every uncached pair, Concurrency at a time,
// until the budget runs out or a permanent error stops the batch.
func (w *AIWriter) callModel(ctx context.Context, jobs []*pairJob) {
	budget := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		reserve := min(budgetReserve, time.Until(deadline)/10)
		budget, cancel = context.WithDeadline(ctx, deadline.Add(-reserve))
		defer cancel()
	}
	var todo []*pairJob
	for _, j := range jobs {
		switch {
		case j.cacheHit:
		case j.deferred():
			j.reason = FallbackDeferred
		default:
			todo = append(todo, j)
		}
	}
	if len(todo) == 0 {
		return
	}
	// The first call goes alone: a bad key or unknown model then costs one
	// request, not one per worker in flight.
	var stopped atomic.Bool
	w.callOne(budget, todo[0], &stopped)
	todo = todo[1:]

	queue := make(chan *pairJob)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range max(w.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				w.callOne(budget, j, &stopped)
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
}

func (w *AIWriter) callOne(ctx context.Context, j *pairJob, stopped *atomic.Bool) {
	if stopped.Load() {
		j.reason = FallbackStopped
		return
	}
	if err := ctx.Err(); err != nil {
		j.reason = insight.Classify(err)
		return
	}
	j.called = true
	start := time.Now()
	answer, err := w.Client.WritePair(ctx, insight.Pair{First: j.first, Second: j.second, Shared: j.facts})
	j.latency = time.Since(start)
	j.answer = answer
	if err == nil {
		j.fromAI = true
		return
	}
	j.answer.ForFirst, j.answer.ForSecond = "", ""
	j.reason = insight.Classify(err)
	if j.reason == "permanent" && !stopped.Swap(true) {
		w.log().Error("AI insights stopped for this batch", "error", err)
	}
}

func (w *AIWriter) log() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}
