package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// ScoreBatch scores the batch's claimed members against the whole event,
// applies the incremental rule to everyone else's list, and stages every list
// that changed.
func (a *Activities) ScoreBatch(ctx context.Context, in BatchRef) (ScoreResult, error) {
	snap, err := a.Store.LoadSnapshot(ctx, in.EventID, in.Token)
	if err != nil {
		if isBatchNotFound(err) {
			return ScoreResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBatchNotFound, err)
		}
		return ScoreResult{}, err
	}
	activity.RecordHeartbeat(ctx, "loaded")

	plan := planBatch(snap, a.TopN)
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

func planBatch(snap store.Snapshot, topN int) *batchPlan {
	profiles := make([]matching.Profile, len(snap.Members))
	for i, m := range snap.Members {
		profiles[i] = matching.Profile{
			UserID:      m.UserID,
			DisplayName: m.DisplayName,
			Company:     m.Company,
			JobTitle:    m.JobTitle,
			Industry:    m.Industry,
			Interests:   m.Interests,
			LookingFor:  m.LookingFor,
			Offering:    m.Offering,
			Bio:         m.Bio,
		}
	}
	p := &batchPlan{pool: matching.NewPool(profiles)}
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
	p.viewers = p.pool.Update(p.lists, p.claimed, topN)
	return p
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
			reasons, err := json.Marshal(p.pool.Reasons(v, e.Other))
			if err != nil {
				return nil, fmt.Errorf("encode reasons: %w", err)
			}
			rows = append(rows, store.StagedMatch{
				UserID:        viewerID,
				MatchedUserID: p.pool.Profile(e.Other).UserID,
				Rank:          rank + 1,
				Score:         e.Score,
				Reasons:       reasons,
			})
		}
	}
	return rows, nil
}
