package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// ScoreBatch scores the batch's claimed members against the whole event,
// applies the incremental rule to everyone else's list, and stages every list
// that changed.
func (a *Activities) ScoreBatch(ctx context.Context, in BatchRef) (ScoreResult, error) {
	cachedVersion, pool := a.pools.get(in.EventID)
	snap, err := a.Store.LoadSnapshot(ctx, in.EventID, in.Token, cachedVersion)
	if err != nil {
		if isBatchNotFound(err) {
			return ScoreResult{}, a.batchNotFound(ctx, in, err)
		}
		return ScoreResult{}, err
	}
	if snap.MembersLoaded {
		if pool, err = poolOf(ctx, snap.Members); err != nil {
			return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
		}
		if snap.MembersVersion >= 0 {
			a.pools.put(in.EventID, snap.MembersVersion, pool)
		}
	}
	activity.RecordHeartbeat(ctx, "loaded")

	plan, err := planBatch(ctx, pool, snap, a.TopN)
	if err != nil {
		// The attempt ran out of time or was cancelled: stop scoring now
		// rather than keep a core busy for a result nobody will take.
		return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
	}
	rows, err := plan.stagedRows()
	if err != nil {
		return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
	}
	activity.RecordHeartbeat(ctx, "scored")

	if err := a.Store.StageMatches(ctx, in.Token, snap.Version, plan.viewerIDs(), rows); err != nil {
		return ScoreResult{}, err
	}
	res := ScoreResult{
		Members:      plan.pool.Len(),
		Scored:       len(plan.claimed),
		ListsChanged: len(plan.viewers),
		Rows:         len(rows),
	}
	a.log(ctx).Info("scored batch", "event_id", in.EventID, "batch", in.Token,
		"members", res.Members, "scored", res.Scored, "lists_changed", res.ListsChanged)
	return res, nil
}

// batchPlan is the pure part of scoring: the snapshot turned into a pool, the
// stored lists, and the result of the incremental update.
type batchPlan struct {
	pool    *matching.Pool
	lists   [][]matching.Entry
	claimed []int
	// viewers are the member indexes whose lists the batch rewrites.
	viewers []int
	// orphanViewers are stored lists whose owner left the event; they are
	// rewritten as empty.
	orphanViewers []string
}

// planBatch maps the snapshot's stored lists onto the pool (built from the
// same members_version) and applies the incremental update.
func planBatch(ctx context.Context, pool *matching.Pool, snap store.Snapshot, topN int) (*batchPlan, error) {
	p := &batchPlan{pool: pool}
	p.lists = make([][]matching.Entry, p.pool.Len())

	orphans := map[string]bool{}
	for _, m := range snap.Matches {
		viewer, ok := p.pool.Index(m.UserID)
		if !ok {
			if !orphans[m.UserID] {
				orphans[m.UserID] = true
				p.orphanViewers = append(p.orphanViewers, m.UserID)
			}
			continue
		}
		other, ok := p.pool.Index(m.MatchedUserID)
		if !ok {
			other = -1 // makes the list invalid, so Update recomputes it
		}
		p.lists[viewer] = append(p.lists[viewer], matching.Entry{Other: other, Score: m.Score})
	}
	for _, id := range snap.ClaimedUsers {
		if i, ok := p.pool.Index(id); ok {
			p.claimed = append(p.claimed, i)
		}
	}
	var err error
	if p.viewers, err = p.pool.UpdateContext(ctx, p.lists, p.claimed, topN); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *batchPlan) viewerIDs() []string {
	ids := make([]string, 0, len(p.viewers)+len(p.orphanViewers))
	for _, v := range p.viewers {
		ids = append(ids, p.pool.Profile(v).UserID)
	}
	return append(ids, p.orphanViewers...)
}

func (p *batchPlan) stagedRows() ([]store.StagedMatch, error) {
	var rows []store.StagedMatch
	for _, v := range p.viewers {
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
