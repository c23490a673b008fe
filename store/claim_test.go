package store_test

import (
	"testing"
	"time"
)

func TestClaimBatchOrderLimitAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	other := e.Event(2, false)
	// Claim order: priority desc, then oldest first.
	e.queue(event, 1, 0, 1*time.Minute)
	e.queue(event, 2, 2, 3*time.Minute)
	e.queue(event, 3, 2, 4*time.Minute)
	e.queue(event, 4, 3, 1*time.Second)
	e.queue(event, 5, 0, 9*time.Minute)
	e.queue(other, 6, 3, time.Hour)

	if n := e.claim(event, "a", 3); n != 3 {
		t.Fatalf("claim a: got %d rows, want 3", n)
	}
	wantStrings(t, "queue after claim a", e.queueRows(event), "4:3*a", "3:2*a", "2:2*a", "5:0", "1:0")
	wantStrings(t, "batch a's claimed users",
		sorted(e.Strings(`SELECT `+short("u")+` FROM matchmaking_batches, unnest(claimed_users) u WHERE token = 'a'`)),
		"2", "3", "4")
	if n := e.Int(`SELECT count(*) FROM matchmaking_queue
		WHERE claim_token = 'a' AND claimed_generation = generation AND attempts = 1
		  AND lease_expires_at BETWEEN now() + interval '50 seconds' AND now() + interval '70 seconds'`); n != 3 {
		t.Errorf("%d of a's rows have the expected claim columns, want 3", n)
	}

	// Same token again: the first claim, nothing more.
	if n := e.claim(event, "a", 10); n != 3 {
		t.Fatalf("claim a again: got %d rows, want 3", n)
	}
	wantStrings(t, "queue after retried claim a", e.queueRows(event), "4:3*a", "3:2*a", "2:2*a", "5:0", "1:0")

	// A second token takes only the free rows, and never another event's.
	if n := e.claim(event, "b", 10); n != 2 {
		t.Fatalf("claim b: got %d rows, want 2", n)
	}
	wantStrings(t, "queue after claim b", e.queueRows(event), "4:3*a", "3:2*a", "2:2*a", "5:0*b", "1:0*b")
	wantStrings(t, "other event's queue", e.queueRows(other), "6:3")

	// Nothing free: no rows, and no batch row recorded.
	if n := e.claim(event, "c", 10); n != 0 {
		t.Fatalf("claim c with nothing free: got %d rows, want 0", n)
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_batches WHERE token = 'c'`); n != 0 {
		t.Errorf("empty claim recorded %d batch rows", n)
	}

	// Once a's lease runs out, its rows are free again, in claim order.
	e.expire("a")
	if n := e.claim(event, "d", 2); n != 2 {
		t.Fatalf("claim d after a expired: got %d rows, want 2", n)
	}
	wantStrings(t, "queue after claim d", e.queueRows(event), "4:3*d", "3:2*d", "2:2*a", "5:0*b", "1:0*b")
	if n := e.Int(`SELECT count(*) FROM matchmaking_queue WHERE claim_token = 'd' AND attempts = 2`); n != 2 {
		t.Errorf("reclaimed rows: %d have attempts = 2, want 2", n)
	}
}

func TestClaimBatchTinyLeaseExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.queue(event, 1, 1, time.Minute)
	e.queue(event, 2, 1, 2*time.Minute)

	n, err := e.st.ClaimBatch(e.Ctx, event, "short", 10, time.Millisecond)
	if err != nil || n != 2 {
		t.Fatalf("ClaimBatch short lease: %d, %v; want 2 rows", n, err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := e.claim(event, "next", 10); n != 2 {
		t.Fatalf("claim after the 1ms lease ran out: got %d rows, want 2", n)
	}
	wantStrings(t, "queue", e.queueRows(event), "2:1*next", "1:1*next")
}
