package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// mustStarter runs the starter and fails the test unless it exits 0.
func (e *env) mustStarter(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.starter(args...)
	if code != 0 {
		e.t.Fatalf("starter %s exited %d:\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// starterFails runs the starter and checks it fails with one line saying want.
func (e *env) starterFails(want string, args ...string) {
	e.t.Helper()
	out, errOut, code := e.starter(args...)
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if code == 0 || len(lines) != 1 || !strings.Contains(errOut, want) {
		e.t.Fatalf("starter %s: exit %d, stderr %q, stdout %q; want a non-zero exit and one line containing %q",
			strings.Join(args, " "), code, errOut, out, want)
	}
}

// visible counts workflows that Temporal's visibility finds for query.
func visible(t *testing.T, query string) int {
	t.Helper()
	resp, err := suite.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: "default", Query: query,
	})
	if err != nil {
		t.Fatalf("list workflows %q: %v", query, err)
	}
	return len(resp.GetExecutions())
}

// TestOperatorCommands walks through every control command of the starter
// on two events: status, pause and resume (one and all), rematch (one and
// all), clear-queue and disable, checking the database, the workflow and
// Temporal's visibility after each.
func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	members := demodata.Generate(61, 45)
	opsID := loadEvent(t, pool, "ops", members[:40])
	loadEvent(t, pool, "ops2", demodata.Generate(62, 20))
	e.startWorker()
	e.mustStarter("enable", "ops", "--wait", "--timeout", "1m")
	e.mustStarter("enable", "ops2", "--wait", "--timeout", "1m")
	queued := func() int {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, opsID)
	}

	// status, as a table and as JSON
	if out := e.mustStarter("status"); !strings.Contains(out, "ops ") || !strings.Contains(out, "ops2") || !strings.Contains(out, "idle") {
		t.Errorf("status table lacks the events or their state:\n%s", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(e.mustStarter("status", "ops", "--json")), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("status --json: %v %v", rows, err)
	}
	if rows[0]["code"] != "ops" || rows[0]["state"] != "idle" || rows[0]["users_matched"] != float64(40) || rows[0]["fallback_insights"] != float64(120) {
		t.Errorf("status --json: %v", rows[0])
	}

	// pause: the update returns the new state; visibility shows it
	if out := e.mustStarter("pause", "ops"); !strings.Contains(out, "ops: paused") {
		t.Errorf("pause printed %q", out)
	}
	waitFor(t, 10*time.Second, "visibility to show ops paused", func() bool {
		return visible(t, "MatchmakingEventCode = 'ops' AND MatchmakingPaused = true") == 1
	})
	if _, err := store.New(pool).InsertMembers(context.Background(), opsID, demodata.StoreMembers(members[40:])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := queued(); n != 5 {
		t.Fatalf("a paused event's queue changed: %d rows, want 5", n)
	}
	if out := e.mustStarter("status", "ops"); !strings.Contains(out, "paused") || !strings.Contains(out, "5 (0/0/0/5)") {
		t.Errorf("status of the paused event:\n%s", out)
	}

	// clear-queue asks for --yes, then says how many it removed
	e.starterFails("run it again with --yes", "clear-queue", "ops")
	if out := e.mustStarter("clear-queue", "ops", "--yes"); !strings.Contains(out, "removed 5 queued members of ops") {
		t.Errorf("clear-queue printed %q", out)
	}

	// resume, and rematch puts everyone back through
	if out := e.mustStarter("resume", "ops"); !strings.Contains(out, "ops: ") || strings.Contains(out, "paused") {
		t.Errorf("resume printed %q", out)
	}
	if out := e.mustStarter("rematch", "ops"); !strings.Contains(out, "ops: 45 members queued") {
		t.Errorf("rematch printed %q", out)
	}
	waitFor(t, 60*time.Second, "the re-match to drain", func() bool { return queued() == 0 })
	checkInvariants(t, pool, opsID, topN)

	// --all finds both workflows through visibility
	out := e.mustStarter("pause", "--all")
	if !strings.Contains(out, "ops: paused") || !strings.Contains(out, "ops2: paused") {
		t.Errorf("pause --all printed %q", out)
	}
	out = e.mustStarter("resume", "--all")
	if strings.Count(out, "paused") != 0 || !strings.Contains(out, "ops2: ") {
		t.Errorf("resume --all printed %q", out)
	}
	if out := e.mustStarter("rematch", "--all"); !strings.Contains(out, "ops: 45 members queued") || !strings.Contains(out, "ops2: 20 members queued") {
		t.Errorf("rematch --all printed %q", out)
	}
	waitFor(t, 60*time.Second, "rematch --all to drain", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue`) == 0
	})

	// disable: the workflow finishes, matches stay
	rowsBefore := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1`, opsID)
	if out := e.mustStarter("disable", "ops"); !strings.Contains(out, "its workflow finished") ||
		!strings.Contains(out, fmt.Sprintf("%d match rows kept", rowsBefore)) {
		t.Errorf("disable printed %q", out)
	}
	desc, err := suite.temporal.DescribeWorkflow(context.Background(), workflows.WorkflowID(opsID), "")
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("workflow after disable: %s, want completed", st)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1`, opsID); n != rowsBefore {
		t.Errorf("disable changed matches: %d rows, had %d", n, rowsBefore)
	}
	if out := e.mustStarter("status", "ops"); !strings.Contains(out, "workflow completed") {
		t.Errorf("status of a disabled event:\n%s", out)
	}
	e.starterFails("matchmaking is not enabled for ops", "rematch", "ops")
	e.starterFails("is not running", "pause", "ops")
}

// TestOperatorCommandsRejectBadInput: every control command answers bad
// input with one line and a non-zero exit.
func TestOperatorCommandsRejectBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	loadEvent(t, pool, "quiet", demodata.Generate(71, 3))
	for _, cmd := range []string{"pause", "resume", "disable", "rematch", "clear-queue", "status"} {
		t.Run(cmd, func(t *testing.T) {
			e := *e
			e.t = t
			e.starterFails(`no event with code or id "nope"`, cmd, "nope")
			e.starterFails("is not a valid event UUID", cmd, "6f1c2e7a-1111-4222-8333-94445555666")
			if cmd != "status" {
				e.starterFails("takes", cmd)
			}
		})
	}
	e.starterFails("takes an event or --all, not both", "pause", "quiet", "--all")
	e.starterFails("is not running", "pause", "quiet")
	e.starterFails("is not running", "resume", "quiet")
	e.starterFails("matchmaking is not enabled for quiet", "rematch", "quiet")
	bad := append(e.environ(), "TEMPORAL_ADDRESS=127.0.0.1:1")
	if _, errOut, code := runStarter(bad, "pause", "--all"); code == 0 || !strings.Contains(errOut, "Temporal unreachable") {
		t.Errorf("pause --all with Temporal down: exit %d, %q", code, errOut)
	}
	bad = append(e.environ(), "DATABASE_URL=postgres://postgres@127.0.0.1:1/x?sslmode=disable")
	if _, errOut, code := runStarter(bad, "status"); code == 0 || !strings.Contains(errOut, "database unreachable") {
		t.Errorf("status with the database down: exit %d, %q", code, errOut)
	}
}
