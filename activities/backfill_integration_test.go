package activities

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/testsuite"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/aiprice"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// TestBackfillWritesNoAITextOntoPairsThatChangedMeanwhile: between the
// round's read and its write, one member's list is rewritten by a commit
// (their twin joins and takes its first place), another member edits
// their profile and a third leaves. None of their pairs gets the AI text
// the round asked for; every other pair does.
func TestBackfillWritesNoAITextOntoPairsThatChangedMeanwhile(t *testing.T) {
	testenv.RequireIntegration(t)
	f, round := newHeldRound(t)
	f.drainBatches()
	rewritten, edited, departed := f.members[0].UserID, f.members[1].UserID, f.members[2].UserID
	ctx := context.Background()
	db := f.st.Pool()
	round.start()
	twin := f.members[0]
	// Another company: colleagues are never matched.
	twin.UserID, twin.DisplayName, twin.Company = testenv.UID(999), "Their Twin", "Twin & Co"
	if _, err := f.st.InsertMembers(ctx, f.eventID, []attendee.Profile{twin}); err != nil {
		t.Fatal(err)
	}
	// Rewrites the first member's list, every row moved down a place by
	// the twin, with fallbacks: the cache is still empty. (A commit keeps
	// the rows of a list that comes out the same, and their AI answers
	// land: TestBackfillAnswersLandOnListsCommittedUnchanged.)
	f.drainBatches()
	var first string
	if err := db.QueryRow(ctx, `SELECT matched_user_id::text FROM matches WHERE event_id = $1 AND user_id = $2 AND rank = 1`,
		f.eventID, rewritten).Scan(&first); err != nil || first != twin.UserID {
		t.Fatalf("the first member's first match is %q (%v), want their twin", first, err)
	}
	if _, err := db.Exec(ctx, `UPDATE all_events_members SET bio = bio || ' Now into sailing.' WHERE event_id = $1 AND user_id = $2`,
		f.eventID, edited); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, f.eventID, departed); err != nil {
		t.Fatal(err)
	}
	r := round.finish()
	if r.err != nil {
		t.Fatal(r.err)
	}

	var onChanged, aiRows, stale int
	if err := db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE insight_source = 'ai' AND (user_id = $2 OR $3 IN (user_id, matched_user_id))),
		       count(*) FILTER (WHERE insight_source = 'ai'),
		       count(*) FILTER (WHERE insight_source = 'fallback' AND NOT (user_id = $2 OR $3 IN (user_id, matched_user_id)))
		FROM matches WHERE event_id = $1`, f.eventID, rewritten, edited).Scan(&onChanged, &aiRows, &stale); err != nil {
		t.Fatal(err)
	}
	if onChanged != 0 {
		t.Errorf("%d AI insights on pairs whose list was rewritten or whose profile was edited after the round read them", onChanged)
	}
	if r.res.Fenced == 0 || r.res.Upgraded != aiRows {
		t.Errorf("round %+v: want answers fenced out, and %d upgraded", r.res, aiRows)
	}
	if aiRows == 0 {
		t.Errorf("no AI insight written at all: the fence refuses everything")
	}
	// Lists the departure or the edit made go round again may have been
	// rewritten since: the only fallbacks left outside the changed pairs
	// are on lists written after the round's read.
	var newer int
	if err := db.QueryRow(ctx, `
		SELECT count(*) FROM matches m
		WHERE m.event_id = $1 AND m.insight_source = 'fallback'
		  AND NOT (m.user_id = $2 OR $3 IN (m.user_id, m.matched_user_id))
		  AND m.updated_at < (SELECT max(updated_at) FROM matches WHERE event_id = $1 AND user_id = $2)`,
		f.eventID, rewritten, edited).Scan(&newer); err != nil {
		t.Fatal(err)
	}
	if newer != 0 {
		t.Errorf("%d fallbacks left on unchanged pairs read by the round (%d fallbacks outside the changed pairs)", newer, stale)
	}

	// The next rounds upgrade what changed, fenced on its new state.
	f.backfill()
	if ai, fallback := f.sources(); fallback != 0 {
		t.Errorf("after further rounds: %d ai, %d fallback", ai, fallback)
	}
}

// TestBackfillAnswersLandOnListsCommittedUnchanged: a member goes round
// again between the round's read and its write, and their list comes out
// the same. The commit keeps its rows as they were (same updated_at), so
// the round's answers for them are still answers about the listed pairs
// and land; nothing is fenced.
func TestBackfillAnswersLandOnListsCommittedUnchanged(t *testing.T) {
	testenv.RequireIntegration(t)
	f, round := newHeldRound(t)
	f.drainBatches()
	relisted := f.members[0].UserID
	ctx := context.Background()
	db := f.st.Pool()
	writtenAt := func() []string {
		t.Helper()
		rows, err := db.Query(ctx, `SELECT rank || ' ' || matched_user_id || ' ' || updated_at FROM matches
			WHERE event_id = $1 AND user_id = $2 ORDER BY rank`, f.eventID, relisted)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := writtenAt()

	round.start()
	if _, err := db.Exec(ctx, `SELECT matchmaking_enqueue_rows($1, ARRAY[$2::uuid], 3)`, f.eventID, relisted); err != nil {
		t.Fatal(err)
	}
	if got := f.drainBatches(); got.Fallback == 0 {
		t.Fatalf("the member was not scored again: %+v", got)
	}
	if after := writtenAt(); !slices.Equal(after, before) {
		t.Fatalf("the list came out the same, yet its rows were written again:\nbefore %q\nafter  %q", before, after)
	}
	r := round.finish()
	if r.err != nil {
		t.Fatal(r.err)
	}
	if res := r.res; res.Fenced != 0 || res.Upgraded == 0 {
		t.Errorf("round %+v: want every answer written, none fenced", res)
	}
	var fallbacks int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2 AND insight_source = 'fallback'`,
		f.eventID, relisted).Scan(&fallbacks); err != nil {
		t.Fatal(err)
	}
	if fallbacks != 0 {
		t.Errorf("%d fallbacks left on the list committed unchanged", fallbacks)
	}
}

// heldRound is a backfill round whose first model call waits (it goes
// alone, after the round's read) until the test has changed the event
// between the round's read and its write.
type heldRound struct {
	t                 *testing.T
	f                 *aiFixture
	selected, proceed chan struct{}
	release           func()
	done              chan heldRoundResult
}

type heldRoundResult struct {
	res BackfillRoundResult
	err error
}

// newHeldRound is a 12-member AI fixture whose fake model holds the first
// call of the round that start runs.
func newHeldRound(t *testing.T) (*aiFixture, *heldRound) {
	h := &heldRound{t: t, selected: make(chan struct{}), proceed: make(chan struct{}), done: make(chan heldRoundResult, 1)}
	var once sync.Once
	h.f = newAIFixture(t, 12, func(call int, req fakeopenai.Request) fakeopenai.Response {
		once.Do(func() {
			close(h.selected)
			<-h.proceed
		})
		return fakeopenai.Echo(call, req)
	})
	// A failing check must not leave the call held, or the fake server
	// never stops (cleanups run last registered first).
	h.release = sync.OnceFunc(func() { close(h.proceed) })
	t.Cleanup(h.release)
	return h.f, h
}

// start runs the round and returns once its first call is held.
func (h *heldRound) start() {
	h.t.Helper()
	go func() {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(h.f.acts)
		v, err := env.ExecuteActivity(h.f.acts.BackfillRound, BackfillRoundInput{EventID: h.f.eventID})
		var r heldRoundResult
		if r.err = err; err == nil {
			r.err = v.Get(&r.res)
		}
		h.done <- r
	}()
	select {
	case <-h.selected:
	case r := <-h.done:
		h.t.Fatalf("the round ended without calling the model: %+v %v", r.res, r.err)
	}
}

// finish lets the held call go and waits for the round.
func (h *heldRound) finish() heldRoundResult {
	h.release()
	return <-h.done
}

// TestBackfillReadsTheNewestListsFirst: a newcomer's list, and the lists
// the newcomer entered, come before an older backlog.
func TestBackfillReadsTheNewestListsFirst(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 12, ok)
	f.drainBatches()
	newcomer := demodata.Generate(99, 1)[0]
	newcomer.DisplayName = "Nora Newcomer"
	ctx := context.Background()
	if _, err := f.st.InsertMembers(ctx, f.eventID, []attendee.Profile{newcomer}); err != nil {
		t.Fatal(err)
	}
	f.drainBatches()
	var newest int
	var newestAt time.Time
	if err := f.st.Pool().QueryRow(ctx, `
		SELECT count(*), max(updated_at) FROM matches
		WHERE event_id = $1 AND updated_at = (SELECT max(updated_at) FROM matches WHERE event_id = $1)`, f.eventID).Scan(&newest, &newestAt); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.FallbackMatches(ctx, f.eventID, newest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != newest {
		t.Fatalf("%d matches read, want %d", len(got), newest)
	}
	ownRows := 0
	for _, m := range got {
		if !m.ListWrittenAt.Equal(newestAt) {
			t.Errorf("%s's match of rank %d, written %s, read before the newest lists (%s)", m.UserID, m.Rank, m.ListWrittenAt, newestAt)
		}
		if m.UserID == newcomer.UserID {
			ownRows++
		}
	}
	if ownRows != 3 {
		t.Errorf("%d of the newcomer's 3 matches among the first read", ownRows)
	}
}

// TestBackfillStopsAtTheEventsBudget: AI_MAX_CALLS_PER_EVENT bounds the
// calls of all rounds together, and the rest keep the fallback.
func TestBackfillStopsAtTheEventsBudget(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 12, ok)
	f.acts.AIMaxCallsPerEvent = 5
	f.drainBatches()
	rounds := f.backfill()
	last := rounds[len(rounds)-1]
	if !last.BudgetSpent || last.Budget != 5 {
		t.Fatalf("last round %+v, want the budget of 5 spent", last)
	}
	if f.fake.Calls() != 5 || last.Progress.Calls != 5 {
		t.Errorf("%d model calls, %d counted; want 5", f.fake.Calls(), last.Progress.Calls)
	}
	ai, fallback := f.sources()
	if ai == 0 || fallback == 0 || last.Progress.Matches-last.Progress.AI != fallback {
		t.Errorf("%d ai, %d fallback, progress %+v: want some of each, as counted", ai, fallback, last.Progress)
	}
	// Spent stays spent: another round calls nothing.
	f.backfill()
	if f.fake.Calls() != 5 {
		t.Errorf("%d model calls after the budget was spent", f.fake.Calls())
	}
}

// TestBackfillCountsRejectionsByRule: every answer the model gives that
// validation rejects, or that the model refuses, is counted by rule in the
// event's progress, added up over rounds (and so over runs and workers:
// the counts live in the database), and each round logs one sample per
// rule at debug level with the pair's IDs and nothing of the profiles.
func TestBackfillCountsRejectionsByRule(t *testing.T) {
	testenv.RequireIntegration(t)
	var (
		mu   sync.Mutex
		want = map[string]int{}
	)
	f := newAIFixture(t, 12, func(call int, req fakeopenai.Request) fakeopenai.Response {
		var rule string
		var resp fakeopenai.Response
		switch call % 5 {
		case 0:
			return fakeopenai.Echo(call, req)
		case 1:
			rule, resp = "json", fakeopenai.Content(`{"for_first": "unfinished`)
		case 2:
			rule, resp = "length", fakeopenai.Answer("Too short.", "Too short.")
		case 3:
			rule, resp = "name", fakeopenai.Answer("You two share interests worth a conversation at this event.",
				"You two share interests worth a conversation at this event.")
		case 4:
			rule, resp = "refused", fakeopenai.Response{Refusal: "I cannot help with that."}
		}
		mu.Lock()
		want[rule]++
		mu.Unlock()
		return resp
	})
	logs := &recordingHandler{}
	f.acts.Insights.(*AIWriter).Logger = slog.New(logs)
	f.drainBatches()
	first := f.backfill()

	// Every list is written again: the rejected pairs are asked again, and
	// their new rejections add to the old.
	ctx := context.Background()
	if _, err := f.st.Pool().Exec(ctx, `SELECT matchmaking_enqueue_rows($1, (SELECT array_agg(user_id) FROM all_events_members WHERE event_id = $1), 3)`,
		f.eventID); err != nil {
		t.Fatal(err)
	}
	f.drainBatches()
	second := f.backfill()

	p, err := f.st.BackfillProgress(ctx, f.eventID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range p.Rejections {
		got[c.Rule] = c.Answers
	}
	mu.Lock()
	defer mu.Unlock()
	if len(want) != 4 || !maps.Equal(got, want) {
		t.Errorf("rejections %v, want %v (the fake's rejected answers)", got, want)
	}
	if !slices.IsSortedFunc(p.Rejections, func(a, b store.RuleCount) int { return strings.Compare(a.Rule, b.Rule) }) {
		t.Errorf("rejections not sorted by rule: %v", p.Rejections)
	}
	if line := p.Summary(); !strings.Contains(line, fmt.Sprintf("%d answers rejected (json %d, length %d, name %d, refused %d)",
		p.RejectedAnswers(), want["json"], want["length"], want["name"], want["refused"])) {
		t.Errorf("summary %q does not say the rejections by rule", line)
	}

	// One sample per rule in each round that rejected something.
	roundsRejecting := 0
	for _, r := range append(first, second...) {
		if r.Refused > 0 {
			roundsRejecting++
		}
	}
	members := map[string]bool{}
	for _, m := range f.members {
		members[m.UserID] = true
	}
	samples := map[string]int{}
	for _, r := range logs.records() {
		if r.Message != "AI answer rejected" {
			continue
		}
		if r.Level != slog.LevelDebug {
			t.Errorf("sample logged at %v, want debug", r.Level)
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		if len(attrs) != 3 || !members[attrs["user_id"]] || !members[attrs["matched_user_id"]] {
			t.Errorf("sample %v: want the rule and the pair's two member IDs, nothing else", attrs)
		}
		samples[attrs["rule"]]++
	}
	for rule := range want {
		if samples[rule] != roundsRejecting {
			t.Errorf("%d samples of rule %q logged, want one per round that rejected answers (%d)", samples[rule], rule, roundsRejecting)
		}
	}
}

// recordingHandler keeps every log record, at every level.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.recs)
}

// TestProfileCacheKeyIsTheCachesKey: the key `starter ai-cache clear
// --event` computes from the event's profiles (ProfileCacheKey over
// store.EventProfiles) is the key the backfill caches answers under, so
// clearing the event's pairs deletes every answer its backfill cached.
func TestProfileCacheKeyIsTheCachesKey(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 12, ok)
	f.drain()
	ctx := context.Background()
	profiles, err := f.st.EventProfiles(ctx, f.eventID)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(profiles))
	for i, p := range profiles {
		keys[i] = ProfileCacheKey(p)
	}
	deleted, err := f.st.ClearCachedInsightsAmong(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	var left int
	if err := f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM matchmaking_insight_cache`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if pairs := f.distinctPairs(); deleted != int64(pairs) || left != 0 {
		t.Errorf("%d cached answers deleted, %d left; want all %d pairs' deleted", deleted, left, pairs)
	}
}

// TestBackfillStopsAtTheEventsSpendLimit: AI_MAX_SPEND_USD_PER_EVENT,
// priced from the model's tokens, stops the backfill before a call that
// could pass it, and the rest keep the fallback. Every call costs $0.002
// here (1,000 prompt tokens at $1/M, 100 completion tokens at $10/M), so a
// $0.011 limit allows five calls: one alone, which prices the rest, then
// four.
func TestBackfillStopsAtTheEventsSpendLimit(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 12, func(call int, req fakeopenai.Request) fakeopenai.Response {
		r := fakeopenai.Echo(call, req)
		r.PromptTokens, r.CompletionTokens = 1000, 100
		return r
	})
	f.acts.AISpendLimitUSD = 0.011
	f.acts.AIPrice = aiprice.Price{InputPerMillion: 1, OutputPerMillion: 10}
	f.drainBatches()
	rounds := f.backfill()
	last := rounds[len(rounds)-1]
	if !last.SpendLimitReached || !last.BudgetSpent {
		t.Fatalf("last round %+v, want the spend limit reached", last)
	}
	if f.fake.Calls() != 5 || last.Progress.Calls != 5 {
		t.Errorf("%d model calls, %d counted; want 5", f.fake.Calls(), last.Progress.Calls)
	}
	if math.Abs(last.SpentUSD-0.010) > 1e-9 || last.SpendLimitUSD != 0.011 {
		t.Errorf("spent $%v of $%v, want $0.010 of $0.011", last.SpentUSD, last.SpendLimitUSD)
	}
	ai, fallback := f.sources()
	if ai == 0 || fallback == 0 || last.Progress.Matches-last.Progress.AI != fallback {
		t.Errorf("%d ai, %d fallback, progress %+v: want some of each, as counted", ai, fallback, last.Progress)
	}
	// Reached stays reached: another round calls nothing.
	f.backfill()
	if f.fake.Calls() != 5 {
		t.Errorf("%d model calls after the spend limit was reached", f.fake.Calls())
	}
}
