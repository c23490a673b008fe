package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/store"
)

// The backfill's Batch API mode (AI_BATCH_API). A backlog of at least
// AI_BATCH_MIN_BACKLOG fallback insights is sent to the provider as one
// batch (SubmitAIBatch); the backfill workflow polls it with a timer
// between PollAIBatch activities and, once it is done, CollectAIBatch
// validates its answers as the live path does and caches them. Writing
// them is left to the ordinary rounds, which find them in the cache and
// write them with the same fenced update (store.SaveBackfill): no AI text
// lands on a pair no longer listed, and an answer about a profile edited
// meanwhile is never used (the cache is keyed by profile content).
// Answers the batch failed or validation refused are asked again live.

// ErrTypeAIBatchRefused: the provider refused the batch request itself (a
// bad key, no Batch API, a malformed file); asking again cannot help.
const ErrTypeAIBatchRefused = "AIBatchRefused"

// maxBatchMatches bounds the fallback insights one batch is built from:
// about 25,000 pairs, half the Batch API's 50,000 requests per batch.
const maxBatchMatches = 50_000

// BatchInsightWriter is an InsightWriter that can also send a backlog
// through the provider's Batch API.
type BatchInsightWriter interface {
	InsightWriter
	// SubmitBatch creates a batch of the pairs of pending that the cache
	// does not answer, at most maxRequests of them (0: no limit), unless
	// they hold fewer than minMatches matches; then it returns "" and
	// submits nothing. It returns the batch ID and its requests.
	SubmitBatch(ctx context.Context, pending []store.PendingInsight, maxRequests, minMatches int) (batchID string, requests int, err error)
	// BatchStatus says where the batch stands.
	BatchStatus(ctx context.Context, batchID string) (insight.BatchStatus, error)
	// CollectBatch validates the answers of a done batch for the pairs of
	// pending and caches the valid ones.
	CollectBatch(ctx context.Context, st insight.BatchStatus, pending []store.PendingInsight) (BatchCollected, error)
}

// BatchCollected is what a batch's answers came to.
type BatchCollected struct {
	store.AIBatchCounts
	Usage store.BackfillUsage
}

// AIBatchInput names an event's batch.
type AIBatchInput struct {
	EventID string
	BatchID string
}

// SubmitAIBatchResult names the batch the event's backlog was sent in: a
// new one, or the event's open one (Resumed), whose answers are still to
// be collected. BatchID is "" when none was sent; Declined says why.
type SubmitAIBatchResult struct {
	BatchID  string
	Requests int
	// ListsUpTo is the newest list write the batch was built from: lists
	// written after it are served live while the batch runs
	// (BackfillRoundInput.ListsWrittenAfter).
	ListsUpTo time.Time
	Resumed   bool
	Declined  string
}

// AIBatchPollResult is where a batch stands: counts only.
type AIBatchPollResult struct {
	Status                   string
	Done                     bool
	Total, Completed, Failed int
}

// AIBatchCollectResult is what collecting a batch found and spent.
type AIBatchCollectResult struct {
	store.AIBatchCounts
	Calls, PromptTokens, CompletionTokens int
}

func (a *Activities) batchWriter() (BatchInsightWriter, bool) {
	bw, ok := a.Insights.(BatchInsightWriter)
	return bw, ok && a.AIBatch
}

// SubmitAIBatch sends the event's backlog of fallback insights, newest
// lists first and within the event's budgets, through the Batch API. An
// event has at most one open batch: when the database has one, it is
// returned, not submitted again.
func (a *Activities) SubmitAIBatch(ctx context.Context, in BackfillRoundInput) (SubmitAIBatchResult, error) {
	defer keepAlive(ctx)()
	bw, ok := a.batchWriter()
	if !ok {
		return SubmitAIBatchResult{Declined: "the Batch API is off on this worker"}, nil
	}
	open, ok, err := a.Store.OpenAIBatch(ctx, in.EventID)
	if err != nil {
		return SubmitAIBatchResult{}, err
	}
	if ok {
		return SubmitAIBatchResult{BatchID: open.BatchID, Requests: open.Requests, ListsUpTo: open.ListsUpTo, Resumed: true}, nil
	}
	before, err := a.Store.BackfillProgress(ctx, in.EventID)
	if err != nil {
		return SubmitAIBatchResult{}, err
	}
	maxCalls, spent, _ := a.callsAllowed(before)
	if spent {
		return SubmitAIBatchResult{Declined: "the event's AI budget is spent"}, nil
	}
	matches, err := a.Store.FallbackMatches(ctx, in.EventID, maxBatchMatches)
	if err != nil {
		return SubmitAIBatchResult{}, err
	}
	pending := make([]store.PendingInsight, len(matches))
	for i, m := range matches {
		pending[i] = m.PendingInsight
	}
	batchID, requests, err := bw.SubmitBatch(ctx, pending, maxCalls, a.AIBatchMinBacklog)
	if err != nil {
		return SubmitAIBatchResult{}, batchAPIError(fmt.Sprintf("submit a batch for event %s", in.EventID), err)
	}
	if batchID == "" {
		return SubmitAIBatchResult{Requests: requests, Declined: fmt.Sprintf(
			"%d requests (within the budget, not in the cache) hold fewer than AI_BATCH_MIN_BACKLOG insights", requests)}, nil
	}
	// FallbackMatches reads the newest lists first.
	b := store.AIBatch{BatchID: batchID, Requests: requests, ListsUpTo: matches[0].ListWrittenAt}
	// A worker that dies before this line submitted a batch nobody polls;
	// its pairs are asked again, live or in the next batch.
	if err := a.Store.RecordAIBatch(ctx, in.EventID, b); err != nil {
		return SubmitAIBatchResult{}, err
	}
	a.log(ctx).Info("AI batch submitted", "event_id", in.EventID, "batch_id", batchID, "requests", requests,
		"fallbacks", len(matches))
	return SubmitAIBatchResult{BatchID: batchID, Requests: requests, ListsUpTo: b.ListsUpTo}, nil
}

// PollAIBatch says where the event's batch stands.
func (a *Activities) PollAIBatch(ctx context.Context, in AIBatchInput) (AIBatchPollResult, error) {
	bw, ok := a.Insights.(BatchInsightWriter)
	if !ok {
		// AI is off on this worker (no key): it cannot ask about the
		// batch, which is closed as lost rather than polled in vain.
		return AIBatchPollResult{Status: batchLost, Done: true}, nil
	}
	st, err := batchStatus(ctx, bw, in.BatchID)
	if err != nil {
		return AIBatchPollResult{}, batchAPIError("poll batch "+in.BatchID, err)
	}
	if st.Status == batchLost {
		a.log(ctx).Warn("the provider does not know the AI batch; it is closed and its pairs asked live",
			"event_id", in.EventID, "batch_id", in.BatchID)
	}
	return AIBatchPollResult{Status: st.Status, Done: st.Done, Total: st.Total, Completed: st.Completed, Failed: st.Failed}, nil
}

// CollectAIBatch validates and caches the answers of the event's done
// batch for the fallbacks still awaiting them, and counts what the batch
// spent, once: a retry finds the batch collected and returns what the
// first collect found.
func (a *Activities) CollectAIBatch(ctx context.Context, in AIBatchInput) (AIBatchCollectResult, error) {
	defer keepAlive(ctx)()
	bw, ok := a.Insights.(BatchInsightWriter)
	if !ok {
		_, counts, err := a.Store.FinishAIBatch(ctx, in.EventID, in.BatchID, store.AIBatchCounts{}, store.BackfillUsage{})
		return AIBatchCollectResult{AIBatchCounts: counts}, err
	}
	st, err := batchStatus(ctx, bw, in.BatchID)
	if err != nil {
		return AIBatchCollectResult{}, batchAPIError("read batch "+in.BatchID, err)
	}
	if !st.Done {
		return AIBatchCollectResult{}, fmt.Errorf("batch %s is %s, not done", in.BatchID, st.Status)
	}
	matches, err := a.Store.FallbackMatches(ctx, in.EventID, maxBatchMatches)
	if err != nil {
		return AIBatchCollectResult{}, err
	}
	pending := make([]store.PendingInsight, len(matches))
	for i, m := range matches {
		pending[i] = m.PendingInsight
	}
	got, err := bw.CollectBatch(ctx, st, pending)
	if err != nil {
		return AIBatchCollectResult{}, batchAPIError("collect batch "+in.BatchID, err)
	}
	first, counts, err := a.Store.FinishAIBatch(ctx, in.EventID, in.BatchID, got.AIBatchCounts, got.Usage)
	if err != nil {
		return AIBatchCollectResult{}, err
	}
	res := AIBatchCollectResult{AIBatchCounts: counts}
	if first {
		res.Calls, res.PromptTokens, res.CompletionTokens = got.Usage.Calls, got.Usage.PromptTokens, got.Usage.CompletionTokens
		a.Metrics.AIUsage(in.EventID, res.Calls, 0, res.PromptTokens, res.CompletionTokens)
	}
	a.log(ctx).Info("AI batch collected", "event_id", in.EventID, "batch_id", in.BatchID, "status", st.Status,
		"answered", counts.Answered, "refused", counts.Refused, "failed", counts.Failed, "stale", counts.Stale,
		"first", first)
	return res, nil
}

// batchLost is the status of a batch the provider refuses to tell about
// (it does not know the ID, or the key lost access): done, with nothing to
// collect, so the backfill closes it and goes on live rather than poll it
// forever.
const batchLost = "lost"

// batchStatus is the batch's status, or batchLost.
func batchStatus(ctx context.Context, bw BatchInsightWriter, batchID string) (insight.BatchStatus, error) {
	st, err := bw.BatchStatus(ctx, batchID)
	var permanent *insight.PermanentError
	if errors.As(err, &permanent) {
		return insight.BatchStatus{Status: batchLost, Done: true}, nil
	}
	return st, err
}

// batchAPIError wraps a Batch API failure, final when retrying cannot fix
// it.
func batchAPIError(what string, err error) error {
	var permanent *insight.PermanentError
	if errors.As(err, &permanent) {
		return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), ErrTypeAIBatchRefused, nil)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// batchCustomID names a pair in a batch by its profile contents' hashes,
// so that an answer finds its pair again whichever lists hold it by then.
func batchCustomID(j *pairJob) string {
	sum := sha256.Sum256([]byte(j.firstHash + ":" + j.secondHash))
	return "pair-" + hex.EncodeToString(sum[:16])
}

// SubmitBatch implements BatchInsightWriter.
func (w *AIWriter) SubmitBatch(ctx context.Context, pending []store.PendingInsight, maxRequests, minMatches int) (string, int, error) {
	jobs, err := pairJobs(pending)
	if err != nil {
		return "", 0, err
	}
	if err := w.useCache(ctx, jobs); err != nil {
		return "", 0, err
	}
	var lines []insight.BatchLine
	seen := map[string]bool{}
	matches := 0
	for _, j := range jobs {
		if j.cacheHit || (maxRequests > 0 && len(lines) >= maxRequests) {
			continue
		}
		matches += len(j.sides())
		// Two pairs of the same two profile contents share one answer.
		if id := batchCustomID(j); !seen[id] {
			seen[id] = true
			lines = append(lines, insight.BatchLine{CustomID: id, Pair: insight.Pair{First: j.first, Second: j.second, Shared: j.facts}})
		}
	}
	if len(lines) == 0 || matches < minMatches {
		return "", len(lines), nil
	}
	id, err := w.Client.SubmitBatch(ctx, lines)
	if err != nil {
		return "", 0, err
	}
	return id, len(lines), nil
}

// BatchStatus implements BatchInsightWriter.
func (w *AIWriter) BatchStatus(ctx context.Context, batchID string) (insight.BatchStatus, error) {
	return w.Client.RetrieveBatch(ctx, batchID)
}

// CollectBatch implements BatchInsightWriter. Every line of the output
// file counts as a call with its tokens, whether or not its pair still
// awaits it: the provider bills it either way.
func (w *AIWriter) CollectBatch(ctx context.Context, st insight.BatchStatus, pending []store.PendingInsight) (BatchCollected, error) {
	var out BatchCollected
	out.Failed = st.Failed
	if st.OutputFileID == "" {
		return out, nil
	}
	lines, err := w.Client.BatchOutput(ctx, st.OutputFileID)
	if err != nil {
		return out, err
	}
	jobs, err := pairJobs(pending)
	if err != nil {
		return out, err
	}
	byID := make(map[string]*pairJob, len(jobs))
	for _, j := range jobs {
		if id := batchCustomID(j); byID[id] == nil {
			byID[id] = j
		}
	}
	var fresh []store.CachedPair
	reasons := map[string]int{}
	for _, l := range lines {
		out.Usage.Calls++
		prompt, completion := l.Usage()
		out.Usage.PromptTokens += prompt
		out.Usage.CompletionTokens += completion
		j := byID[l.CustomID]
		if j == nil {
			// Its lists were rewritten, or a profile edited, meanwhile; the
			// answer cannot be checked against the profiles it was about.
			out.Stale++
			continue
		}
		res, err := w.Client.CheckBatchAnswer(l, insight.Pair{First: j.first, Second: j.second, Shared: j.facts})
		switch reason := insight.Classify(err); {
		case err == nil:
			out.Answered++
			fresh = append(fresh, store.CachedPair{FirstHash: j.firstHash, SecondHash: j.secondHash,
				ForFirst: res.ForFirst, ForSecond: res.ForSecond})
		case strings.HasPrefix(reason, "invalid_"):
			out.Refused++
			reasons[reason]++
		default:
			out.Failed++
		}
	}
	if len(reasons) > 0 {
		w.log().Info("AI batch answers refused", "reasons", fmt.Sprint(reasons))
	}
	return out, w.Store.CacheInsights(ctx, w.Model, insight.PromptVersion, fresh)
}
