package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventmatch/matchmaker/store"
)

// BackfillProgress is where an event's AI insights stand (see the store's).
type BackfillProgress = store.BackfillProgress

// BackfillCounts is what backfill rounds did: one round's, or summed over
// rounds in the backfill workflow's state.
type BackfillCounts struct {
	Upgraded int // AI insights written
	// Fenced are AI answers not written because the match's list was
	// rewritten, or a profile of the pair edited, after the round read it.
	Fenced int
	// Refused are matches left with the fallback because the model's
	// answer was refused.
	Refused          int
	CacheHits        int
	AICalls          int
	PromptTokens     int
	CompletionTokens int
}

// Add adds o's counts.
func (c *BackfillCounts) Add(o BackfillCounts) {
	c.Upgraded += o.Upgraded
	c.Fenced += o.Fenced
	c.Refused += o.Refused
	c.CacheHits += o.CacheHits
	c.AICalls += o.AICalls
	c.PromptTokens += o.PromptTokens
	c.CompletionTokens += o.CompletionTokens
}

// BackfillRoundInput names the event whose fallback insights a round
// upgrades.
type BackfillRoundInput struct {
	EventID string
	// ListsWrittenAfter, when set, limits the round to lists written after
	// it: while the event's backlog is at the Batch API, the lists the
	// batch does not hold (a newcomer's, say) are served live.
	ListsWrittenAfter time.Time
}

// BackfillRoundResult is what one round did and where the event stands
// after it. Counts only: no insight or profile text.
type BackfillRoundResult struct {
	// Finished: the event is gone, matchmaking is off for it, or this
	// worker writes no AI insights; the backfill ends.
	Finished bool
	// Paused: the event's workflow is paused; the round did nothing.
	Paused bool
	// BudgetSpent: the event has spent AI_MAX_CALLS_PER_EVENT; the round
	// did nothing and the fallbacks stay.
	BudgetSpent bool
	// Budget is the worker's AI_MAX_CALLS_PER_EVENT (0: unlimited).
	Budget int
	// SpendLimitReached: the event has spent what AI_MAX_SPEND_USD_PER_EVENT
	// allows, or one more call at the average cost so far would pass it;
	// BudgetSpent is set with it, so the backfill stops the same way.
	SpendLimitReached bool
	// SpendLimitUSD is the worker's AI_MAX_SPEND_USD_PER_EVENT (0:
	// unlimited); SpentUSD is what the event's calls cost at the model's
	// price, all runs together (0 when the model has no price).
	SpendLimitUSD float64
	SpentUSD      float64

	Selected int // fallback insights read, newest lists first
	BackfillCounts
	// EndpointDown: calls failed for reasons that are not about their
	// answers (timeouts, 5xx, 429, a refused key) and none was answered;
	// the backfill backs off before the next round. FailureReason is the
	// first failure's label (insight.Classify).
	EndpointDown  bool
	FailureReason string
	// BatchAdvised: the Batch API is on and the backlog is at least
	// AI_BATCH_MIN_BACKLOG; the backfill may send it in a batch
	// (SubmitAIBatch).
	BatchAdvised bool

	Progress BackfillProgress
}

// BackfillRound upgrades up to one round of the event's fallback insights
// to AI text: it reads the newest lists' fallbacks, answers them from the
// cache or the model (within the event's budget) and writes the answers
// fenced (store.SaveBackfill), so text never lands on a pair no longer
// listed. Everything it does is in the database when it returns, and a
// retry reads afresh, so it is idempotent.
func (a *Activities) BackfillRound(ctx context.Context, in BackfillRoundInput) (out BackfillRoundResult, err error) {
	defer keepAlive(ctx)()
	defer func() {
		if !out.Finished {
			out.SpendLimitUSD, out.SpentUSD = a.AISpendLimitUSD, a.spent(out.Progress)
		}
	}()
	start := time.Now()
	res := BackfillRoundResult{Budget: a.AIMaxCallsPerEvent}
	if a.Insights == nil {
		return BackfillRoundResult{Finished: true}, nil
	}
	ev, err := a.Store.FindEvent(ctx, in.EventID)
	if errors.Is(err, store.ErrEventNotFound) {
		return BackfillRoundResult{Finished: true}, nil
	}
	if err != nil {
		return res, err
	}
	if !ev.MatchmakingEnabled {
		return BackfillRoundResult{Finished: true}, nil
	}
	if a.EventPaused != nil {
		paused, err := a.EventPaused(ctx, in.EventID)
		if err != nil {
			return res, fmt.Errorf("is event %s paused: %w", in.EventID, err)
		}
		if paused {
			res.Paused = true
			return a.backfillProgress(ctx, in.EventID, res)
		}
	}
	before, err := a.Store.BackfillProgress(ctx, in.EventID)
	if err != nil {
		return res, err
	}
	callsLeft, budgetSpent, spendReached := a.callsAllowed(before)
	if budgetSpent {
		res.BudgetSpent, res.SpendLimitReached, res.Progress = true, spendReached, before
		return res, nil
	}

	matches, err := a.Store.FallbackMatches(ctx, in.EventID, backfillRoundMatches)
	if err != nil {
		return res, err
	}
	if !in.ListsWrittenAfter.IsZero() {
		// Newest lists first: those written after the cut-off lead.
		n := 0
		for n < len(matches) && matches[n].ListWrittenAt.After(in.ListsWrittenAfter) {
			n++
		}
		matches = matches[:n]
	}
	res.Selected = len(matches)
	if len(matches) == 0 {
		res.Progress = before
		return res, nil
	}
	pending := make([]store.PendingInsight, len(matches))
	for i, m := range matches {
		pending[i] = m.PendingInsight
	}
	answers, err := a.Insights.Backfill(ctx, pending, callsLeft)
	if err != nil {
		return res, fmt.Errorf("AI backfill of event %s: %w", in.EventID, err)
	}
	var (
		upgrades []store.Upgrade
		refusals []store.Refusal
	)
	for i, m := range matches {
		if text, ok := answers.AI[i]; ok {
			upgrades = append(upgrades, store.Upgrade{UserID: m.UserID, Rank: m.Rank, MatchedUserID: m.MatchedUserID,
				ListWrittenAt: m.ListWrittenAt, Text: text})
		} else if reason, ok := answers.Refused[i]; ok {
			refusals = append(refusals, store.Refusal{UserID: m.UserID, Rank: m.Rank, MatchedUserID: m.MatchedUserID,
				ListWrittenAt: m.ListWrittenAt, Reason: reason})
		}
	}
	r := answers.Result
	// Counted as soon as made: the calls cost the same if saving fails.
	a.Metrics.AIUsage(in.EventID, r.AICalls, r.CacheHits, r.PromptTokens, r.CompletionTokens)
	// Every match of a round belongs to one event, and all of them were
	// read at the same members_version.
	written, err := a.Store.SaveBackfill(ctx, in.EventID, matches[0].MembersVersion, upgrades, refusals,
		store.BackfillUsage{Calls: r.AICalls, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
			Rejections: answers.Rejections})
	if err != nil {
		return res, err
	}
	for _, rc := range r.FallbackReasons {
		a.Metrics.InsightFallbacks(rc.Reason, rc.Count)
	}
	res.Upgraded, res.Fenced, res.Refused = written, len(upgrades)-written, len(refusals)
	res.CacheHits, res.AICalls, res.PromptTokens, res.CompletionTokens = r.CacheHits, r.AICalls, r.PromptTokens, r.CompletionTokens
	res.EndpointDown = answers.Failed > 0 && answers.Answered == 0
	res.FailureReason = answers.FailureReason
	a.Metrics.BackfillRound(in.EventID, res.Upgraded, res.Fenced)
	if res, err = a.backfillProgress(ctx, in.EventID, res); err != nil {
		return res, err
	}
	a.log(ctx).Info("AI backfill round", "event_id", in.EventID, "selected", res.Selected,
		"upgraded", res.Upgraded, "fenced", res.Fenced, "refused", res.Refused, "cache_hits", res.CacheHits,
		"ai_calls", res.AICalls, "failed_calls", answers.Failed, "failure", res.FailureReason,
		"ai", res.Progress.AI, "matches", res.Progress.Matches, "backlog", res.Progress.Backlog,
		"took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// callsAllowed is how many model calls the event's budgets leave (0: no
// bound), or whether one of them is spent: AI_MAX_CALLS_PER_EVENT, and
// AI_MAX_SPEND_USD_PER_EVENT at the average cost of the event's calls so
// far. Before any call there is no average, so one call goes alone and
// prices the next.
func (a *Activities) callsAllowed(p BackfillProgress) (calls int, spent, spendReached bool) {
	if a.AIMaxCallsPerEvent > 0 {
		calls = a.AIMaxCallsPerEvent - p.Calls
		if calls <= 0 {
			return 0, true, false
		}
	}
	if a.AISpendLimitUSD <= 0 {
		return calls, false, false
	}
	cost := a.spent(p)
	if cost >= a.AISpendLimitUSD {
		return 0, true, true
	}
	bySpend := 1
	if p.Calls > 0 {
		perCall := cost / float64(p.Calls)
		if perCall <= 0 { // a free model: the spend limit never binds
			return calls, false, false
		}
		bySpend = int((a.AISpendLimitUSD - cost) / perCall)
		if bySpend <= 0 {
			return 0, true, true
		}
	}
	if calls == 0 || bySpend < calls {
		calls = bySpend
	}
	return calls, false, false
}

// batchAdvised reports whether the event's backlog is for the Batch API.
func (a *Activities) batchAdvised(p BackfillProgress) bool {
	_, batching := a.batchWriter()
	return batching && p.Backlog >= a.AIBatchMinBacklog
}

// spent is what the event's model calls cost, in USD, at this worker's
// price of the model.
func (a *Activities) spent(p BackfillProgress) float64 {
	return a.AIPrice.Cost(p.PromptTokens, p.CompletionTokens)
}

// backfillProgress reads where the event stands into res, and shows it in
// the metrics.
func (a *Activities) backfillProgress(ctx context.Context, eventID string, res BackfillRoundResult) (BackfillRoundResult, error) {
	p, err := a.Store.BackfillProgress(ctx, eventID)
	if err != nil {
		return res, err
	}
	res.Progress = p
	res.BatchAdvised = a.batchAdvised(p)
	a.Metrics.SetAIProgress(eventID, p.AI, p.Matches, p.Backlog)
	a.Metrics.SetAISpend(eventID, a.spent(p))
	return res, nil
}

// backfillRoundMatches is how many fallback insights a round reads (about
// 300 pairs): enough to keep 32 call slots busy for several answers each,
// few enough that a newcomer's lists, written meanwhile, wait one short
// round at most (2 s with 32 slots and a 200 ms model).
const backfillRoundMatches = 512
