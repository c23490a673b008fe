package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/deploy"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

// TestEventThroughTransactionPooler runs an event end to end with every
// query of the worker and the starter going through pgbouncer in
// transaction mode (as through Supabase's port 6543), and the worker's
// LISTEN on DATABASE_LISTEN_URL, direct. The worker is the least-privilege
// role, whose session timeouts come from its role settings there. Six
// `starter matches` at once through the pooler all succeed.
func TestEventThroughTransactionPooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// SAFETY_POLL of an hour: a newcomer matched within seconds was woken
	// by LISTEN, not by a poll.
	e := newEnv(t, map[string]string{"BATCH_SIZE": "10000", "SAFETY_POLL": "1h"})
	admin, err := pgx.ParseConfig(testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgx.ParseConfig(e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// Two server connections per user: the clients' transactions really do
	// move between server sessions.
	bouncer := deploy.StartPgBouncer(t, admin.Host, int(admin.Port), 2, admin.User, e.workerRole)
	e.vars["DATABASE_URL"] = bouncer.URL(admin.User, db.Database)
	e.vars["DATABASE_LISTEN_URL"] = e.dbURL
	e.workerVars["DATABASE_URL"] = bouncer.URL(e.workerRole, db.Database)
	e.workerVars["DATABASE_LISTEN_URL"] = e.workerURL
	pool := openPool(t, e.dbURL)

	// The operator loads and enables through the pooler too.
	e.mustStarter("load-demo", "--code", "pooled", "--members", "150", "--seed", "5")
	w := e.startWorker()
	out := e.mustStarter("enable", "pooled", "--wait", "--timeout", "2m")
	if !strings.Contains(out, "150 of 150 members have matches") {
		t.Fatalf("enable --wait through the pooler: %s", out)
	}
	eventID := stringsOf(t, pool, `SELECT id::text FROM events WHERE code = 'pooled'`)[0]
	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)

	// A newcomer, enqueued by the trigger: the LISTEN connection (direct)
	// wakes the workflow.
	newcomer := demodata.Generate(99, 1)[0]
	if _, err := pool.Exec(ctx, `INSERT INTO all_events_members (event_id, user_id, display_name, interests, looking_for, offering, bio)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, eventID, newcomer.UserID, newcomer.DisplayName,
		newcomer.Interests, newcomer.LookingFor, newcomer.Offering, newcomer.Bio); err != nil {
		t.Fatal(err)
	}
	joined := time.Now()
	waitFor(t, 10*time.Second, "the newcomer to be matched", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2`, eventID, newcomer.UserID) == topN
	})
	t.Logf("newcomer matched %s after joining", time.Since(joined).Round(time.Millisecond))
	checkInvariants(t, pool, eventID, topN)

	logs := w.logs.String()
	if !strings.Contains(logs, "transaction-mode pooler (pgbouncer=true in the URL)") {
		t.Errorf("the worker does not say its queries go through a transaction-mode pooler:\n%s", logs)
	}
	for _, bad := range []string{"receives no notifications", "no statement_timeout", "stmtcache", "already exists"} {
		if strings.Contains(logs, bad) {
			t.Errorf("worker log contains %q:\n%s", bad, logs)
		}
	}
	// The worker's queries really went through the pooler.
	if !strings.Contains(bouncer.Log(), "login attempt: db="+db.Database+" user="+e.workerRole) {
		t.Errorf("pgbouncer saw no login of the worker's role %s:\n%s", e.workerRole, bouncer.Log())
	}

	// Six `starter matches` at once, through the pooler: all succeed (5 of 6
	// failed with `prepared statement "stmtcache_..." already exists`).
	var wg sync.WaitGroup
	results := make([]string, 6)
	for i := range results {
		wg.Go(func() {
			out, errOut, code := e.starter("matches", "pooled", "--members", "5")
			if code != 0 || !strings.Contains(out, "151 of 151 members matched") {
				results[i] = fmt.Sprintf("exit %d: %s%s", code, out, errOut)
			}
		})
	}
	wg.Wait()
	for i, r := range results {
		if r != "" {
			t.Errorf("starter matches #%d through the pooler: %s", i+1, r)
		}
	}
}
