package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// maxCachedEvents bounds the events a worker keeps in memory; an event of
// 10,000 members takes a few megabytes.
const maxCachedEvents = 16

// eventView is an event as scoring sees it: its pool and every stored list,
// at one members_version and one version. A view is never modified once
// made, so concurrent batches may share it; advance makes the next one.
type eventView struct {
	membersVersion int64
	listsVersion   int64
	pool           *matching.Pool
	// lists[v] is pool member v's stored list, best first. An entry whose
	// Other is -1 names someone no longer scored, so the list fails
	// validation and is recomputed.
	lists [][]matching.Entry
	// orphans own stored lists but are not in the pool (left, or
	// quarantined); the next batch rewrites their lists as empty.
	orphans map[string]bool
	// reserves[v] are the spares this worker last computed past v's list
	// (see matching.Reserve), or nil when it has computed none for this
	// pool's lineage. They live only in memory: a whole read starts
	// without them, and matching ignores a reserve whose list is not the
	// stored one.
	reserves []matching.Reserve
	// capped is the pool's capped assignment as this worker last computed
	// it (matching.CapState), carried through member changes so that the
	// next capped batch repairs it; nil when the cap is off or after a
	// whole read. Like reserves it lives only in memory.
	capped *matching.CapState
}

// withCapped is v with the capped assignment a batch computed on it.
func (v *eventView) withCapped(capped *matching.CapState) *eventView {
	next := *v
	next.capped = capped
	return &next
}

// withReserves is v with the reserves a batch computed on it.
func (v *eventView) withReserves(reserves []matching.Reserve) *eventView {
	next := *v
	next.reserves = reserves
	return &next
}

func (v *eventView) cached() store.Cached {
	if v == nil {
		return store.NoCache
	}
	return store.Cached{MembersVersion: v.membersVersion, ListsVersion: v.listsVersion}
}

// errViewGap means the snapshot's changes cannot be applied to the view: a
// member who owns a stored list the view holds only as an orphan came back.
// The caller reads the whole event instead.
var errViewGap = errors.New("cached event cannot take these changes")

// advance returns the view of snap: built from it when snap holds the whole
// event, else v with snap's changes applied. The pool takes member changes
// through matching.Pool.Apply, so a batch after a few joins, edits or
// departures re-reads and re-tokenizes only those members.
func (v *eventView) advance(ctx context.Context, snap store.Snapshot) (*eventView, error) {
	next := &eventView{membersVersion: snap.MembersVersion, listsVersion: snap.Version}
	var err error
	switch {
	case snap.MembersLoaded || v == nil:
		if !snap.MembersLoaded || !snap.MatchesLoaded {
			return nil, fmt.Errorf("%w: no cached event to apply changes to", errViewGap)
		}
		if next.pool, err = matching.NewPoolWithRules(ctx, snap.Members, snap.Rules); err != nil {
			return nil, err
		}
		next.lists, next.orphans = listsOf(next.pool, snap.Matches)
		return next, nil
	case len(snap.Members) == 0 && len(snap.MembersGone) == 0:
		next.pool, next.lists, next.orphans, next.reserves, next.capped = v.pool, v.lists, v.orphans, v.reserves, v.capped
	default:
		if next, err = v.applyMembers(ctx, snap, next); err != nil {
			return nil, err
		}
		if !next.pool.SameTermWeights(v.pool) {
			// A bio term became boilerplate or stopped being one: every
			// score may have moved, also of pairs no list names, so every
			// list is scored again (and the reserves ended with the
			// pool's lineage).
			defer func() {
				if next != nil {
					next.lists = matching.MarkForRescore(next.lists)
				}
			}()
		}
	}

	if snap.MatchesLoaded {
		next.lists, next.orphans = listsOf(next.pool, snap.Matches)
		return next, nil
	}
	if len(snap.ListsChanged) == 0 {
		return next, nil
	}
	rows := map[string][]store.StoredMatch{}
	for _, m := range snap.Matches {
		rows[m.UserID] = append(rows[m.UserID], m)
	}
	if next.lists != nil {
		next.lists = slices.Clone(next.lists)
	}
	orphansCloned := false
	for _, owner := range snap.ListsChanged {
		if i, ok := next.pool.Index(owner); ok {
			next.lists[i] = entriesOf(next.pool, rows[owner])
			continue
		}
		if has := len(rows[owner]) > 0; has != next.orphans[owner] {
			if !orphansCloned {
				next.orphans, orphansCloned = cloneSet(next.orphans), true
			}
			if has {
				next.orphans[owner] = true
			} else {
				delete(next.orphans, owner)
			}
		}
	}
	return next, nil
}

// applyMembers is advance's member step: next with the pool after snap's
// member changes, and v's lists and reserves moved to its indexes.
func (v *eventView) applyMembers(ctx context.Context, snap store.Snapshot, next *eventView) (*eventView, error) {
	upserts := snap.Members
	for _, p := range upserts {
		if v.orphans[p.UserID] {
			return nil, fmt.Errorf("%w: %s has a stored list and is back", errViewGap, p.UserID)
		}
	}
	pool, moved, err := v.pool.Apply(ctx, upserts, snap.MembersGone)
	if err != nil {
		return nil, err
	}
	next.pool = pool
	next.capped = v.capped.Moved(moved, pool.Len())
	next.lists = make([][]matching.Entry, pool.Len())
	if v.reserves != nil {
		next.reserves = make([]matching.Reserve, pool.Len())
	}
	if !slices.Contains(moved, -1) {
		// Nobody left: every member kept its index and newcomers come
		// last, so the lists stand as they are (a list naming an edited
		// member fails validation on its stale score).
		copy(next.lists, v.lists)
		copy(next.reserves, v.reserves)
		next.orphans = v.orphans
		return next, nil
	}
	orphans, orphansCloned := v.orphans, false
	for old, to := range moved {
		if to < 0 {
			if len(v.lists[old]) > 0 {
				if !orphansCloned {
					orphans, orphansCloned = cloneSet(orphans), true
				}
				orphans[v.pool.Profile(old).UserID] = true
			}
			continue
		}
		if v.reserves != nil {
			next.reserves[to] = v.reserves[old].Remap(moved)
		}
		list := v.lists[old]
		if len(list) == 0 {
			continue
		}
		remapped := make([]matching.Entry, len(list))
		for k, e := range list {
			remapped[k] = matching.Entry{Other: -1, Score: e.Score}
			if e.Other >= 0 {
				remapped[k].Other = moved[e.Other]
			}
		}
		next.lists[to] = remapped
	}
	next.orphans = orphans
	return next, nil
}

// listsOf maps stored rows onto the pool: lists by pool index, and the
// owners of lists who are not in the pool.
//
// The lists share one backing array, each capped at its length (as
// matching's packLists): the batches after compare every stored list with
// the assignment, and one allocation per list would make that pass a cache
// miss per member of a large event.
func listsOf(pool *matching.Pool, matches []store.StoredMatch) ([][]matching.Entry, map[string]bool) {
	lists := make([][]matching.Entry, pool.Len())
	orphans := map[string]bool{}
	flat := make([]matching.Entry, len(matches))
	for start := 0; start < len(matches); {
		end := start + 1
		for end < len(matches) && matches[end].UserID == matches[start].UserID {
			end++
		}
		owner := matches[start].UserID
		if i, ok := pool.Index(owner); ok {
			lists[i] = entriesInto(flat[start:end:end], pool, matches[start:end])
		} else {
			orphans[owner] = true
		}
		start = end
	}
	return lists, orphans
}

// entriesOf is one owner's stored rows, in rank order, as list entries.
func entriesOf(pool *matching.Pool, rows []store.StoredMatch) []matching.Entry {
	if len(rows) == 0 {
		return nil
	}
	return entriesInto(make([]matching.Entry, len(rows)), pool, rows)
}

// entriesInto is entriesOf written into list, which is as long as rows.
func entriesInto(list []matching.Entry, pool *matching.Pool, rows []store.StoredMatch) []matching.Entry {
	for k, m := range rows {
		other, ok := pool.Index(m.MatchedUserID)
		if !ok {
			other = -1 // makes the list invalid, so Update recomputes it
		}
		list[k] = matching.Entry{Other: other, Score: m.Score}
	}
	return list
}

func cloneSet(s map[string]bool) map[string]bool {
	c := make(map[string]bool, len(s)+1)
	for k := range s {
		c[k] = true
	}
	return c
}

// writtenBy is v as it stands once p's batch commits, if nobody else wrote
// a list since v was read: the lists p rewrites replaced (the orphans'
// emptied), with the reserves or the capped assignment p computed. Its
// lists version is set by committed, once the commit lands.
func (v *eventView) writtenBy(p *batchPlan) *eventView {
	next := *v
	next.lists = slices.Clone(v.lists)
	for _, viewer := range p.viewers {
		next.lists[viewer] = p.lists[viewer]
	}
	if len(p.orphanViewers) > 0 {
		next.orphans = cloneSet(v.orphans)
		for _, owner := range p.orphanViewers {
			delete(next.orphans, owner)
		}
	}
	if p.reserves != nil {
		next.reserves = p.reserves
	}
	if p.capped != nil {
		next.capped = p.capped
	}
	return &next
}

// eventCache keeps each event's view between batches, so a batch reads only
// what changed since the last one this worker scored.
type eventCache struct {
	mu      sync.Mutex
	entries map[string]*eventView
	// written[event] is the view the event's latest batch staged here
	// leaves once committed (see committed).
	written map[string]writtenView
	// recent lists event IDs, least recently used first.
	recent []string
}

// writtenView is the view a staging of a batch leaves once committed.
type writtenView struct {
	stageID string
	view    *eventView
}

// staged keeps view as what the staging stageID (store.StageMatches)
// leaves once committed, in place of an earlier staging of the event.
func (c *eventCache) staged(eventID, stageID string, view *eventView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.written == nil {
		c.written = map[string]writtenView{}
	}
	c.written[eventID] = writtenView{stageID: stageID, view: view}
}

// committed makes the view the commit's staging left the event's view, at
// the commit's version, when that staging was made here and the commit
// wrote it onto the very lists it was scored on (store.CommitResult): the
// next batch then does not read back the lists this worker wrote. Else
// the next batch reads them, as any other change.
func (c *eventCache) committed(eventID string, commit store.CommitResult) {
	c.mu.Lock()
	w, ok := c.written[eventID]
	if ok && w.stageID == commit.StageID {
		delete(c.written, eventID)
	}
	c.mu.Unlock()
	if !ok || w.stageID != commit.StageID ||
		commit.Version != commit.ScoredVersion+1 || commit.ListsDeferred > 0 {
		return
	}
	view := *w.view
	view.listsVersion = commit.Version
	c.put(eventID, &view)
}

// get returns the cached view of the event, or nil.
func (c *eventCache) get(eventID string) *eventView {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[eventID]
	if !ok {
		return nil
	}
	c.touch(eventID)
	return v
}

// put keeps view unless a concurrent batch already cached a newer one.
func (c *eventCache) put(eventID string, view *eventView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*eventView{}
	}
	if cur, ok := c.entries[eventID]; ok &&
		(cur.membersVersion > view.membersVersion || cur.listsVersion > view.listsVersion) {
		return
	}
	c.entries[eventID] = view
	c.touch(eventID)
	for len(c.recent) > maxCachedEvents {
		delete(c.entries, c.recent[0])
		delete(c.written, c.recent[0])
		c.recent = c.recent[1:]
	}
}

// drop forgets the event, so the next batch reads all of it.
func (c *eventCache) drop(eventID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, eventID)
	delete(c.written, eventID)
	c.recent = slices.DeleteFunc(c.recent, func(id string) bool { return id == eventID })
}

func (c *eventCache) touch(eventID string) {
	for i, id := range c.recent {
		if id == eventID {
			c.recent = append(c.recent[:i], c.recent[i+1:]...)
			break
		}
	}
	c.recent = append(c.recent, eventID)
}
