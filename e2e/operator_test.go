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

// The starter's exit codes: a runtime failure, a usage error.
const (
	exitFailure = 1
	exitUsage   = 2
)

// starterFails runs the starter and checks it exits with wantCode and says
// want on its first line of stderr: the only line for a runtime failure,
// followed by the command's usage for a usage error.
func (e *env) starterFails(wantCode int, want string, args ...string) {
	e.t.Helper()
	out, errOut, code := e.starter(args...)
	first, rest, _ := strings.Cut(strings.TrimRight(errOut, "\n"), "\n")
	ok := code == wantCode && strings.HasPrefix(first, "starter: ") && strings.Contains(first, want)
	switch wantCode {
	case exitFailure:
		ok = ok && rest == ""
	case exitUsage:
		ok = ok && strings.Contains(rest, "Usage:")
	}
	if !ok {
		e.t.Fatalf("starter %s: exit %d, stderr %q, stdout %q; want exit %d and a first line containing %q",
			strings.Join(args, " "), code, errOut, out, wantCode, want)
	}
}

// statusJSON is `starter status -o json`.
type statusJSON struct {
	Temporal struct {
		Reachable bool   `json:"reachable"`
		Error     string `json:"error"`
	} `json:"temporal"`
	Events []map[string]any `json:"events"`
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
	var status statusJSON
	if err := json.Unmarshal([]byte(e.mustStarter("status", "ops", "-o", "json")), &status); err != nil || len(status.Events) != 1 || !status.Temporal.Reachable {
		t.Fatalf("status -o json: %+v %v", status, err)
	}
	if row := status.Events[0]; row["code"] != "ops" || row["state"] != "idle" || row["users_matched"] != float64(40) || row["fallback_insights"] != float64(120) {
		t.Errorf("status -o json: %v", row)
	}

	// pause: the update returns the new state; visibility shows it
	if out := e.mustStarter("pause", "ops"); !strings.Contains(out, "ops: paused") {
		t.Errorf("pause printed %q", out)
	}
	waitFor(t, 10*time.Second, "visibility to show ops paused", func() bool {
		return visible(t, "MatchmakingEventCode = 'ops' AND MatchmakingPaused = true") == 1
	})
	if _, err := store.New(pool).InsertMembers(context.Background(), opsID, members[40:]); err != nil {
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
	e.starterFails(exitFailure, "run it again with --yes", "clear-queue", "ops")
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
	e.starterFails(exitFailure, "matchmaking is not enabled for ops", "rematch", "ops")
	e.starterFails(exitFailure, "is not running", "pause", "ops")
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
			e.starterFails(exitFailure, `no event with code or id "nope"`, cmd, "nope")
			e.starterFails(exitUsage, "is not a valid event UUID", cmd, "6f1c2e7a-1111-4222-8333-94445555666")
			if cmd != "status" {
				e.starterFails(exitUsage, "takes", cmd)
			}
		})
	}
	e.starterFails(exitUsage, "takes an event or --all, not both", "pause", "quiet", "--all")
	e.starterFails(exitFailure, "is not running", "pause", "quiet")
	e.starterFails(exitFailure, "is not running", "resume", "quiet")
	e.starterFails(exitFailure, "matchmaking is not enabled for quiet", "rematch", "quiet")
	e.starterFails(exitUsage, `unknown command "nosuch" for "starter"`, "nosuch")
	e.starterFails(exitUsage, "want text or json", "status", "--output", "yaml")
	bad := append(e.environ(), "TEMPORAL_ADDRESS=127.0.0.1:1")
	if _, errOut, code := runStarter(bad, "pause", "--all"); code != exitFailure || !strings.Contains(errOut, "Temporal unreachable") {
		t.Errorf("pause --all with Temporal down: exit %d, %q", code, errOut)
	}
	// status still answers from the database, and says Temporal did not.
	out, errOut, code := runStarter(bad, "status", "quiet", "-o", "json")
	var status statusJSON
	if err := json.Unmarshal([]byte(out), &status); code != 0 || err != nil || status.Temporal.Reachable ||
		!strings.Contains(status.Temporal.Error, "Temporal unreachable") || len(status.Events) != 1 ||
		status.Events[0]["code"] != "quiet" || status.Events[0]["members"] != float64(3) ||
		status.Events[0]["state"] != "unknown (Temporal unreachable)" {
		t.Errorf("status with Temporal down: exit %d, %+v (%v), stderr %q", code, status, err, errOut)
	}
	bad = append(e.environ(), "DATABASE_URL=postgres://postgres@127.0.0.1:1/x?sslmode=disable")
	if _, errOut, code := runStarter(bad, "status"); code != exitFailure || !strings.Contains(errOut, "database unreachable") {
		t.Errorf("status with the database down: exit %d, %q", code, errOut)
	}
}
