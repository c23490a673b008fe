package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventmatch/matchmaker/store"
)

// refusingSetup stages a batch of members 1..5, each listing the next,
// in an event whose matches reference a profiles table that lacks member
// 3, the common Supabase shape (matches.user_id → profiles.id) with one
// attendee imported without a profile.
func refusingSetup(t *testing.T, column string, profiles ...int) (*env, string) {
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2, 3, 4, 5)
	e.Exec(`CREATE TABLE profiles (id uuid PRIMARY KEY)`)
	e.Exec(`INSERT INTO profiles SELECT unnest($1::uuid[])`, uids(profiles...))
	e.Exec(fmt.Sprintf(`ALTER TABLE matches ADD CONSTRAINT matches_profile FOREIGN KEY (%s) REFERENCES profiles (id)`, column))
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1, 2, 3, 4, 5},
		[2]int{1, 2}, [2]int{2, 3}, [2]int{3, 4}, [2]int{4, 5}, [2]int{5, 1})
	return e, event
}

func TestRefusedOwnerIsQuarantined(t *testing.T) {
	t.Parallel()
	e, event := refusingSetup(t, "user_id", 1, 2, 4, 5)
	_, err := e.st.CommitBatch(e.Ctx, event, "t")
	if !errors.Is(err, store.ErrRowsRefused) {
		t.Fatalf("commit: %v, want ErrRowsRefused", err)
	}
	refused, err := e.st.FindRefusedMembers(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0].UserID != uid(3) || refused[0].Reason == "" {
		t.Fatalf("refused %+v, want member 3 with a reason", refused)
	}
	if n := e.Int(`SELECT count(*) FROM matches WHERE event_id = $1`, event); n != 0 {
		t.Errorf("finding the refused members left %d match rows behind", n)
	}
	total, err := e.st.QuarantineMembers(e.Ctx, event, refused)
	if err != nil || total != 1 {
		t.Fatalf("QuarantineMembers: %d, %v", total, err)
	}
	wantStrings(t, "queue", sorted(e.queueRows(event)), "1:0*t", "2:0*t", "4:0*t", "5:0*t")
	snap, err := e.st.LoadSnapshot(e.Ctx, event, "t", store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range snap.Members {
		if m.UserID == uid(3) {
			t.Errorf("a quarantined member is still scored")
		}
	}

	// A profile change takes the member out of quarantine and enqueues them.
	e.Exec(`UPDATE all_events_members SET bio = 'new' WHERE event_id = $1 AND user_id = $2`, event, uid(3))
	if n := e.Int(`SELECT count(*) FROM matchmaking_quarantine`); n != 0 {
		t.Errorf("%d quarantined after the profile changed", n)
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_queue WHERE user_id = $1 AND priority = 2`, uid(3)); n != 1 {
		t.Errorf("the edited member was not enqueued")
	}
}

func TestRefusedMatchedMemberIsQuarantined(t *testing.T) {
	t.Parallel()
	e, event := refusingSetup(t, "matched_user_id", 1, 2, 4, 5)
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); !errors.Is(err, store.ErrRowsRefused) {
		t.Fatalf("commit: %v, want ErrRowsRefused", err)
	}
	refused, err := e.st.FindRefusedMembers(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	// 2 lists 3 and is refused for it: the blame is 3's, whom nobody can list.
	if len(refused) != 1 || refused[0].UserID != uid(3) {
		t.Fatalf("refused %+v, want member 3", refused)
	}
}

func TestRefusalOfEveryListIsNotAboutAMember(t *testing.T) {
	t.Parallel()
	e, event := refusingSetup(t, "user_id") // no profiles at all
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); !errors.Is(err, store.ErrRowsRefused) {
		t.Fatalf("commit: %v, want ErrRowsRefused", err)
	}
	refused, err := e.st.FindRefusedMembers(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 0 {
		t.Fatalf("refused %+v: a setup that refuses everyone must not quarantine anyone", refused)
	}
}

func TestRetryQuarantined(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2)
	e.Exec(`DELETE FROM matchmaking_queue`)
	if _, err := e.st.QuarantineMembers(e.Ctx, event, []store.RefusedMember{{UserID: uid(2), Reason: "refused"}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.st.QuarantinedMembers(e.Ctx, event)
	if err != nil || len(got) != 1 || got[0].Reason != "refused" || got[0].DisplayName == "" {
		t.Fatalf("QuarantinedMembers: %+v, %v", got, err)
	}
	n, err := e.st.RetryQuarantined(e.Ctx, event)
	if err != nil || n != 1 {
		t.Fatalf("RetryQuarantined: %d, %v", n, err)
	}
	wantStrings(t, "queue", e.queueRows(event), "2:2")
	if n := e.Int(`SELECT count(*) FROM matchmaking_quarantine`); n != 0 {
		t.Errorf("%d still quarantined", n)
	}
}

// TestNoDeadlockBetweenCommitReleaseAndDeletes runs what can touch one
// event at once (a commit, a release of the same batch as after a timed-out
// commit, another batch's commit, member deletes, profile edits, newcomers)
// 20 times; none may fail with a deadlock.
func TestNoDeadlockBetweenCommitReleaseAndDeletes(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		e := newEnv(t)
		event := e.Event(1, true)
		ids := make([]int, 40)
		for i := range ids {
			ids[i] = i + 1
		}
		e.members(event, ids...)
		e.claim(event, "a", 20)
		e.claim(event, "b", 20)
		var pairsA, pairsB [][2]int
		for i := 1; i <= 20; i++ {
			pairsA = append(pairsA, [2]int{i, i%20 + 21})
			pairsB = append(pairsB, [2]int{i + 20, i})
		}
		e.stageAll(event, "a", ids[:20], pairsA...)
		e.stageAll(event, "b", ids[20:], pairsB...)

		var wg sync.WaitGroup
		errs := make(chan error, 8)
		run := func(f func() error) {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- f() }()
		}
		run(func() error { _, err := e.st.CommitBatch(e.Ctx, event, "a"); return err })
		run(func() error { _, err := e.st.ReleaseBatch(e.Ctx, "a", "gave up"); return err })
		run(func() error { _, err := e.st.CommitBatch(e.Ctx, event, "b"); return err })
		run(func() error {
			_, err := e.Pool.Exec(e.Ctx, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = ANY ($2::uuid[])`,
				event, uids(5, 25))
			return err
		})
		run(func() error {
			_, err := e.Pool.Exec(e.Ctx, `UPDATE all_events_members SET bio = 'edited' WHERE event_id = $1 AND user_id = ANY ($2::uuid[])`,
				event, uids(2, 22, 30))
			return err
		})
		run(func() error {
			_, err := e.Pool.Exec(e.Ctx, `INSERT INTO all_events_members (event_id, user_id, display_name) VALUES ($1, $2, 'new')`,
				event, uid(99))
			return err
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
				t.Fatalf("round %d: deadlock: %v", round, err)
			}
			if err != nil && !errors.Is(err, store.ErrBatchStale) && !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("round %d: %v", round, err)
			}
		}
		// The round's connections go now, not when the test ends: twenty
		// rounds' pools would hold most of the server's max_connections.
		e.Pool.Close()
	}
}
