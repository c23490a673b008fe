package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// ScoreBatch scores the batch's claimed members against the whole event (or,
// with in.Shards, merges what the batch's ScoreShard activities scored),
// applies the incremental rule to everyone else's list, and stages every list
// that changed.
func (a *Activities) ScoreBatch(ctx context.Context, in BatchRef) (ScoreResult, error) {
	defer keepAlive(ctx)()
	took := stepTimes{last: time.Now()}
	view, err := a.eventView(ctx, in)
	if err != nil {
		if isBatchNotFound(err) {
			return ScoreResult{}, a.batchNotFound(ctx, in, err)
		}
		return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
	}
	took.mark(&took.load)
	activity.RecordHeartbeat(ctx, "loaded")

	var offers []*matching.Offers
	if a.MaxAppearances <= 0 {
		// A capped assignment is made whole here: shards stage nothing
		// for it (see ScoreShard).
		if offers, err = a.shardOffers(ctx, in, view.view); err != nil {
			return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
		}
	}
	var capped *cappedResult
	if a.MaxAppearances > 0 {
		// Detached from this attempt: see assign.go.
		result, err := a.assignments.assign(ctx, in.EventID, view.view, a.TopN, a.MaxAppearances, &a.events)
		if err != nil {
			if ctx.Err() != nil {
				a.log(ctx).Info("the capped assignment outlasts this attempt; it goes on for the retry",
					"event_id", in.EventID, "batch", in.Token, "members", view.view.pool.Len())
			}
			return ScoreResult{}, fmt.Errorf("score batch %s: capped assignment: %w", in.Token, err)
		}
		capped = &result
	}
	took.mark(&took.assign)
	plan, err := planBatch(ctx, view.view, view.claimed, a.TopN, a.MaxAppearances, offers, capped)
	if errors.Is(err, errForeignOffers) {
		a.log(ctx).Warn("shards do not fit this worker's copy of the event; scoring the batch here", "batch", in.Token, "error", err)
		offers = nil
		plan, err = planBatch(ctx, view.view, view.claimed, a.TopN, a.MaxAppearances, nil, capped)
	}
	if err != nil {
		// The attempt ran out of time or was cancelled: stop scoring now
		// rather than keep a core busy for a result nobody will take.
		return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
	}
	rows, err := plan.stagedRows()
	if err != nil {
		return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
	}
	took.mark(&took.plan)
	activity.RecordHeartbeat(ctx, "scored")

	// Without AI the fallbacks are the insights: staged as such, they
	// spare WriteInsights a rewrite of every row.
	fallbacksFinal := a.Insights == nil
	stageID, err := a.Store.StageMatches(ctx, in.Token, view.view.listsVersion, plan.viewerIDs(), rows, fallbacksFinal)
	if err != nil {
		return ScoreResult{}, err
	}
	if fallbacksFinal {
		a.Metrics.InsightFallbacks(FallbackNoAI, withFallback(rows))
	}
	took.mark(&took.stage)
	if plan.reserves != nil {
		// Whether or not the commit lands, the reserves hold for this
		// version of the event; matching uses one only while the stored
		// list is the one it extends.
		a.events.put(in.EventID, view.view.withReserves(plan.reserves))
	}
	a.events.staged(in.EventID, stageID, view.view.writtenBy(plan))
	res := ScoreResult{
		Members:      plan.pool.Len(),
		Scored:       len(plan.claimed),
		ListsChanged: len(plan.viewers),
		Rows:         len(rows),

		ListsRescored: plan.rescored,

		ReadWholeEvent: view.wholeRead,
		ShardsMerged:   offers != nil,
	}
	a.log(ctx).Info("scored batch", "event_id", in.EventID, "batch", in.Token,
		"members", res.Members, "scored", res.Scored, "lists_changed", res.ListsChanged,
		"lists_rescored", res.ListsRescored, "read_whole_event", res.ReadWholeEvent,
		"load_ms", took.load.Milliseconds(), "assign_ms", took.assign.Milliseconds(),
		"plan_ms", took.plan.Milliseconds(), "stage_ms", took.stage.Milliseconds())
	return res, nil
}

// stepTimes are how long ScoreBatch's parts took, for its log line: reading
// and applying the event's changes; the capped assignment when the cap is
// on, else reading the shards' offers; scoring and building the rows; and
// staging them. ScoreShard uses load, plan (its scoring) and stage.
type stepTimes struct {
	load, assign, plan, stage time.Duration
	last                      time.Time
}

// mark sets part to the time since the previous mark (the first: since
// the step began) and starts the next.
func (t *stepTimes) mark(part *time.Duration) {
	now := time.Now()
	*part, t.last = now.Sub(t.last), now
}

// batchView is the event as a batch scores it, and the batch's members.
type batchView struct {
	view      *eventView
	claimed   []string
	wholeRead bool
}

// eventView reads what changed in the event since this worker's cached
// view and applies it, or reads the whole event when there is no view or
// the changes cannot be applied to it, and caches the result.
func (a *Activities) eventView(ctx context.Context, in BatchRef) (batchView, error) {
	cached := a.events.get(in.EventID)
	snap, err := a.Store.LoadSnapshot(ctx, in.EventID, in.Token, cached.cached())
	if err != nil {
		return batchView{}, err
	}
	view, err := cached.advance(ctx, snap)
	if errors.Is(err, errViewGap) {
		a.log(ctx).Info("reading the whole event", "event_id", in.EventID, "reason", err)
		a.events.drop(in.EventID)
		if snap, err = a.Store.LoadSnapshot(ctx, in.EventID, in.Token, store.NoCache); err != nil {
			return batchView{}, err
		}
		view, err = (*eventView)(nil).advance(ctx, snap)
	}
	if err != nil {
		return batchView{}, err
	}
	// -1: no state row yet, so nothing may be cached against it.
	if snap.MembersVersion >= 0 {
		a.events.put(in.EventID, view)
	}
	return batchView{view: view, claimed: snap.ClaimedUsers, wholeRead: snap.MembersLoaded}, nil
}

// batchPlan is the pure part of scoring: the event's view and the result
// of the incremental update.
type batchPlan struct {
	pool    *matching.Pool
	lists   [][]matching.Entry
	claimed []int
	// viewers are the member indexes whose lists the batch rewrites.
	viewers []int
	// orphanViewers are stored lists whose owner is not scored (left, or
	// quarantined); they are rewritten as empty.
	orphanViewers []string
	// reserves are every list's spares after the update, nil when the
	// batch merged shards (which keep none); rescored counts the lists
	// scored against the whole event.
	reserves []matching.Reserve
	rescored int
	// capped is the event's capped assignment when the cap is on (then
	// lists are its lists and reserves are nil).
	capped *matching.CapState
}

// ScoreShard scores one shard of a large batch on whichever worker takes
// it: every shards-th fresh member against the whole event (see
// matching.Pool.ShardOffers), leaving each list's best offers for the
// ScoreBatch that merges them.
func (a *Activities) ScoreShard(ctx context.Context, in ShardRef) (ShardResult, error) {
	if in.Shards < 1 || in.Shard < 0 || in.Shard >= in.Shards {
		return ShardResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("shard %d of %d does not exist", in.Shard, in.Shards), "BadInput", nil)
	}
	defer keepAlive(ctx)()
	took := stepTimes{last: time.Now()}
	ref := BatchRef{EventID: in.EventID, Token: in.Token}
	view, err := a.eventView(ctx, ref)
	if err != nil {
		if isBatchNotFound(err) {
			return ShardResult{}, a.batchNotFound(ctx, ref, err)
		}
		return ShardResult{}, fmt.Errorf("score shard %d of batch %s: %w", in.Shard, in.Token, err)
	}
	took.mark(&took.load)
	activity.RecordHeartbeat(ctx, "loaded")
	plan := &batchPlan{pool: view.view.pool}
	plan.claim(view.claimed)
	offers := &matching.Offers{}
	if a.MaxAppearances <= 0 {
		// With the cap on, ScoreBatch assigns the whole event itself and
		// reads no shard, so this one stages nothing to merge.
		offers, err = plan.pool.ShardOffers(ctx, view.view.lists, plan.claimed, a.TopN, in.Shard, in.Shards)
		if err != nil {
			return ShardResult{}, fmt.Errorf("score shard %d of batch %s: %w", in.Shard, in.Token, err)
		}
	}
	encoded, err := offers.MarshalBinary()
	if err != nil {
		return ShardResult{}, fmt.Errorf("score shard %d of batch %s: %w", in.Shard, in.Token, err)
	}
	took.mark(&took.plan)
	err = a.Store.StageShard(ctx, in.Token, in.Shard, in.Shards, store.Shard{
		MembersVersion: view.view.membersVersion, ListsVersion: view.view.listsVersion, Offers: encoded,
	})
	if err != nil {
		if isBatchNotFound(err) {
			return ShardResult{}, a.batchNotFound(ctx, ref, err)
		}
		return ShardResult{}, err
	}
	took.mark(&took.stage)
	// waited_ms: from the shard's scheduling to this attempt's start, the
	// time it sat in the shard queue.
	info := activity.GetInfo(ctx)
	a.log(ctx).Info("scored shard", "event_id", in.EventID, "batch", in.Token, "shard", in.Shard, "shards", in.Shards,
		"scored", offers.Scored, "offers", len(offers.Rows), "read_whole_event", view.wholeRead,
		"waited_ms", info.StartedTime.Sub(info.ScheduledTime).Milliseconds(),
		"load_ms", took.load.Milliseconds(), "score_ms", took.plan.Milliseconds(), "stage_ms", took.stage.Milliseconds())
	return ShardResult{Scored: offers.Scored, Offers: len(offers.Rows)}, nil
}

// errForeignOffers: the shards were scored on another version of the
// event than the merging worker's.
var errForeignOffers = errors.New("shard offers from another version of the event")

// shardOffers reads the shards ScoreBatch merges: nil when the batch was
// not sharded; errForeignOffers (wrapped) when a shard saw other versions.
func (a *Activities) shardOffers(ctx context.Context, in BatchRef, view *eventView) ([]*matching.Offers, error) {
	if in.Shards <= 0 {
		return nil, nil
	}
	shards, err := a.Store.Shards(ctx, in.Token, in.Shards)
	if err != nil {
		return nil, err
	}
	offers := make([]*matching.Offers, len(shards))
	for k, shard := range shards {
		if shard.MembersVersion != view.membersVersion || shard.ListsVersion != view.listsVersion {
			a.log(ctx).Warn("a shard saw another version of the event; scoring the batch here", "batch", in.Token,
				"shard", k, "shard_versions", fmt.Sprintf("%d/%d", shard.MembersVersion, shard.ListsVersion),
				"versions", fmt.Sprintf("%d/%d", view.membersVersion, view.listsVersion))
			return nil, nil
		}
		o := &matching.Offers{}
		if err := o.UnmarshalBinary(shard.Offers); err != nil {
			return nil, fmt.Errorf("shard %d: %w", k, err)
		}
		offers[k] = o
	}
	return offers, nil
}

// planBatch applies the incremental update to a copy of the view's lists,
// merging the shards' offers when there are any; with maxAppearances above
// 0 it plans the capped assignment instead (planCapped), given as capped
// when it was computed already.
func planBatch(ctx context.Context, view *eventView, claimedUsers []string, topN, maxAppearances int, offers []*matching.Offers, capped *cappedResult) (*batchPlan, error) {
	p := &batchPlan{pool: view.pool, lists: slices.Clone(view.lists)}
	for owner := range view.orphans {
		p.orphanViewers = append(p.orphanViewers, owner)
	}
	slices.Sort(p.orphanViewers)
	p.claim(claimedUsers)
	if maxAppearances > 0 {
		return p.planCapped(ctx, view, topN, maxAppearances, capped)
	}
	var err error
	if offers != nil {
		p.viewers, err = p.pool.UpdateWithOffers(ctx, p.lists, p.claimed, topN, offers)
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %w", errForeignOffers, err)
		}
	} else {
		// Lists that name a departed or edited member are repaired from
		// the spares this worker kept, rather than scored against the
		// whole event again.
		p.reserves = slices.Clone(view.reserves)
		if p.reserves == nil {
			p.reserves = make([]matching.Reserve, p.pool.Len())
		}
		p.viewers, p.rescored, err = p.pool.UpdateReserved(ctx, p.lists, p.reserves, p.claimed, topN, matching.ReserveDepth)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// planCapped makes p the event's capped assignment: capped, or else
// computed here, repaired from the one this worker computed before (every
// member set since taken as changed), or from scratch after a whole read.
// The lists it rewrites are those that differ from the stored ones, the
// claimed members' own, and those naming a claimed member (their rows show
// that member's profile).
func (p *batchPlan) planCapped(ctx context.Context, view *eventView, topN, maxAppearances int, capped *cappedResult) (*batchPlan, error) {
	if capped == nil {
		state, repaired, stats, err := p.pool.Assign(ctx, view.capped, topN, maxAppearances)
		if err != nil {
			return nil, err
		}
		capped = &cappedResult{state: state, repaired: repaired, stats: stats}
	}
	p.capped, p.lists = capped.state, capped.state.Lists()
	if !capped.repaired {
		p.rescored = p.pool.Len()
	} else {
		p.rescored = capped.stats.Scans
	}
	isClaimed := make([]bool, p.pool.Len())
	for _, c := range p.claimed {
		isClaimed[c] = true
	}
	for v, list := range p.lists {
		if isClaimed[v] || !slices.Equal(list, view.lists[v]) ||
			slices.ContainsFunc(list, func(e matching.Entry) bool { return isClaimed[e.Other] }) {
			p.viewers = append(p.viewers, v)
		}
	}
	return p, nil
}

// claim sets p.claimed to the pool indexes of the claimed members still
// scored, in ascending order.
func (p *batchPlan) claim(claimedUsers []string) {
	for _, id := range claimedUsers {
		if i, ok := p.pool.Index(id); ok {
			p.claimed = append(p.claimed, i)
		}
	}
	slices.Sort(p.claimed)
}

func (p *batchPlan) viewerIDs() []string {
	ids := make([]string, 0, len(p.viewers)+len(p.orphanViewers))
	for _, v := range p.viewers {
		ids = append(ids, p.pool.Profile(v).UserID)
	}
	return append(ids, p.orphanViewers...)
}

// stagedRows are the rows of every list the plan changed, in the plan's
// order of viewers. Building them (each row's reasons, encoded, and its
// fallback insight) is a few microseconds a row, seconds for a whole large
// event, so viewers are split into as many runs as there are cores, each
// building its rows on its own.
func (p *batchPlan) stagedRows() ([]store.StagedMatch, error) {
	runs := min(runtime.GOMAXPROCS(0), max(1, len(p.viewers)/stagedRowsPerRun))
	if runs == 1 {
		return p.rowsOf(p.viewers)
	}
	parts := make([][]store.StagedMatch, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for k := range runs {
		viewers := p.viewers[k*len(p.viewers)/runs : (k+1)*len(p.viewers)/runs]
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[k], errs[k] = p.rowsOf(viewers)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(parts...), nil
}

// stagedRowsPerRun is the fewest viewers worth a goroutine of their own
// in stagedRows: a newcomer's batch changes a few dozen lists, built in
// well under a millisecond on one.
const stagedRowsPerRun = 512

// rowsOf builds the staged rows of the viewers' lists.
func (p *batchPlan) rowsOf(viewers []int) ([]store.StagedMatch, error) {
	var rows []store.StagedMatch
	for _, v := range viewers {
		viewerID := p.pool.Profile(v).UserID
		for rank, e := range p.lists[v] {
			r := p.pool.Reasons(v, e.Other)
			reasons, err := json.Marshal(r)
			if err != nil {
				return nil, fmt.Errorf("encode reasons: %w", err)
			}
			other := p.pool.Profile(e.Other)
			rows = append(rows, store.StagedMatch{
				UserID:        viewerID,
				MatchedUserID: other.UserID,
				Rank:          rank + 1,
				Score:         e.Score,
				Reasons:       reasons,
				Fallback:      matching.FallbackInsight(fallbackName(other.DisplayName), r),
			})
		}
	}
	return rows, nil
}

// withFallback counts the rows that carry a fallback insight.
func withFallback(rows []store.StagedMatch) int {
	n := 0
	for _, r := range rows {
		if r.Fallback != "" {
			n++
		}
	}
	return n
}
