package activities

import (
	"context"
	"sync"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// maxCachedEvents bounds the events whose pools a worker keeps; a pool of
// 10,000 members takes a few megabytes.
const maxCachedEvents = 16

// poolCache keeps each event's scoring pool between batches, so a batch
// reloads and re-tokenizes the event's profiles only when a member joined,
// left or edited their profile (the event's members_version moved).
type poolCache struct {
	mu      sync.Mutex
	entries map[string]cachedPool
	// recent lists event IDs, least recently used first.
	recent []string
}

type cachedPool struct {
	membersVersion int64
	pool           *matching.Pool
}

// get returns the cached pool of the event and the members_version it was
// built at, or -1 and nil.
func (c *poolCache) get(eventID string) (int64, *matching.Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[eventID]
	if !ok {
		return -1, nil
	}
	c.touch(eventID)
	return e.membersVersion, e.pool
}

func (c *poolCache) put(eventID string, membersVersion int64, pool *matching.Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]cachedPool{}
	}
	if cur, ok := c.entries[eventID]; ok && cur.membersVersion > membersVersion {
		return // a concurrent batch already cached a newer one
	}
	c.entries[eventID] = cachedPool{membersVersion: membersVersion, pool: pool}
	c.touch(eventID)
	for len(c.recent) > maxCachedEvents {
		delete(c.entries, c.recent[0])
		c.recent = c.recent[1:]
	}
}

func (c *poolCache) touch(eventID string) {
	for i, id := range c.recent {
		if id == eventID {
			c.recent = append(c.recent[:i], c.recent[i+1:]...)
			break
		}
	}
	c.recent = append(c.recent, eventID)
}

// poolOf builds the scoring pool of an event's members; it stops early
// with ctx's error when the activity's attempt ends.
func poolOf(ctx context.Context, members []store.Member) (*matching.Pool, error) {
	profiles := make([]matching.Profile, len(members))
	for i, m := range members {
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
	return matching.NewPoolContext(ctx, profiles)
}
