package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/activity"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// ScoreBatch scores the batch's claimed members against the whole event,
// applies the incremental rule to everyone else's list, and stages every list
// that changed.
func (a *Activities) ScoreBatch(ctx context.Context, in BatchRef) (ScoreResult, error) {
	view, err := a.eventView(ctx, in)
	if err != nil {
		if isBatchNotFound(err) {
			return ScoreResult{}, a.batchNotFound(ctx, in, err)
		}
		return ScoreResult{}, fmt.Errorf("score batch %s: %w", in.Token, err)
	}
	activity.RecordHeartbeat(ctx, "loaded")

	plan, err := planBatch(ctx, view.view, view.claimed, a.TopN)
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

	if err := a.Store.StageMatches(ctx, in.Token, view.view.listsVersion, plan.viewerIDs(), rows); err != nil {
		return ScoreResult{}, err
	}
	res := ScoreResult{
		Members:      plan.pool.Len(),
		Scored:       len(plan.claimed),
		ListsChanged: len(plan.viewers),
		Rows:         len(rows),

		ReadWholeEvent: view.wholeRead,
	}
	a.log(ctx).Info("scored batch", "event_id", in.EventID, "batch", in.Token,
		"members", res.Members, "scored", res.Scored, "lists_changed", res.ListsChanged,
		"read_whole_event", res.ReadWholeEvent)
	return res, nil
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
}

// planBatch applies the incremental update to a copy of the view's lists.
func planBatch(ctx context.Context, view *eventView, claimedUsers []string, topN int) (*batchPlan, error) {
	p := &batchPlan{pool: view.pool, lists: slices.Clone(view.lists)}
	for owner := range view.orphans {
		p.orphanViewers = append(p.orphanViewers, owner)
	}
	slices.Sort(p.orphanViewers)
	for _, id := range claimedUsers {
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
