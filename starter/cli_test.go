package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/internal/cli"
	"github.com/eventmatch/matchmaker/internal/cli/clitest"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

// TestExitCodesAndStreams: help and --version on stdout with 0; usage
// errors on stderr with 2, one line then the usage; nothing connects.
func TestExitCodesAndStreams(t *testing.T) {
	unreachable(t)
	clitest.Run(t, "starter", execute, []clitest.Case{
		{Args: []string{"enable", "--help"}, Code: cli.ExitOK, Stdout: "Usage:\n  starter enable <event> [flags]"},
		{Args: []string{"help", "enable"}, Code: cli.ExitOK, Stdout: "Usage:\n  starter enable <event> [flags]"},
		{Args: []string{"pause", "-h"}, Code: cli.ExitOK, Stdout: "--all"},
		{Args: []string{"--version"}, Code: cli.ExitOK, Stdout: "starter github.com/eventmatch/matchmaker "},
		{Args: []string{"completion", "bash"}, Code: cli.ExitOK, Stdout: "bash completion"},
		{Args: []string{"completion", "zsh"}, Code: cli.ExitOK, Stdout: "zsh completion"},
		{Args: []string{"completion", "fish"}, Code: cli.ExitOK, Stdout: "fish completion"},
		{Args: []string{"completion", "powershell"}, Code: cli.ExitOK, Stdout: "powershell completion"},
		{Args: []string{"enable"}, Code: cli.ExitUsage, StderrLine: "starter: enable takes one event code or uuid, got 0 arguments"},
		{Args: []string{"nosuch"}, Code: cli.ExitUsage, StderrLine: `starter: unknown command "nosuch" for "starter"`},
		{Args: []string{}, Code: cli.ExitUsage, StderrLine: "starter: missing command"},
		{Args: []string{"status", "--output", "yaml"}, Code: cli.ExitUsage, StderrLine: `starter: invalid argument "yaml" for "-o, --output" flag: want text or json`},
		{Args: []string{"matches", "demo", "--members", "0"}, Code: cli.ExitUsage, StderrLine: `starter: invalid argument "0" for "--members" flag: want a whole number from 1 to 1000`},
		{Args: []string{"enable", "demo", "--wait", "--timeout", "0s"}, Code: cli.ExitUsage, StderrLine: `starter: invalid argument "0s" for "--timeout" flag: want a duration from 1s to 24h, such as 90s, 30m or 2h`},
		{Args: []string{"--nosuch", "status"}, Code: cli.ExitUsage, StderrLine: "starter: unknown flag: --nosuch"},
		{Args: []string{"completion", "bash", "extra"}, Code: cli.ExitUsage, StderrLine: `starter: unknown command "extra" for "starter completion bash"`},
		{Args: []string{"status"}, Code: cli.ExitFailure, StderrLine: "starter: database unreachable at 127.0.0.1:1/none"},
	})
}

// TestStatusWithoutTemporal: with Temporal unreachable, status shows what
// the database knows, says that Temporal was not reached, and exits 0,
// within its bounded attempt. It also checks that --output json writes one
// JSON document on stdout and nothing else there, and that --database-url
// overrides DATABASE_URL.
func TestStatusWithoutTemporal(t *testing.T) {
	dbURL := testenv.URL(testenv.EmptyDatabase(t))
	// Nothing listens on port 1: the environment's database and Temporal
	// are both unreachable; the flag names the real database.
	unreachable(t)
	run := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code = execute(context.Background(), append([]string{"--database-url", dbURL}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	jsonOnly := func(stdout string, v any) {
		t.Helper()
		dec := json.NewDecoder(strings.NewReader(stdout))
		if err := dec.Decode(v); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
		}
		if dec.More() {
			t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
		}
	}

	code, stdout, stderr := run("migrate", "-o", "json")
	var migrated migrateResult
	if code != 0 || stderr != "" {
		t.Fatalf("migrate: exit %d, stderr %q", code, stderr)
	}
	if jsonOnly(stdout, &migrated); migrated.ToVersion == 0 || migrated.FromVersion != 0 {
		t.Fatalf("migrate -o json: %+v", migrated)
	}
	code, stdout, stderr = run("load-demo", "--code", "offline", "--members", "12", "--output", "json")
	var loaded loadDemoResult
	if code != 0 || stderr != "" {
		t.Fatalf("load-demo: exit %d, stderr %q", code, stderr)
	}
	if jsonOnly(stdout, &loaded); loaded.Added != 12 || loaded.Event.Code != "offline" {
		t.Fatalf("load-demo -o json: %+v", loaded)
	}
	// Enabled as the web app does, in SQL: its trigger queues the members.
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE events SET matchmaking_enabled = true WHERE code = 'offline'`); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"status", "-o", "json"}, {"status", "offline", "--output", "json"}} {
		start := time.Now()
		code, stdout, stderr = run(args...)
		if took := time.Since(start); took > statusTemporalTimeout+5*time.Second {
			t.Errorf("%v took %s with Temporal unreachable", args, took)
		}
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		var report struct {
			Temporal struct {
				Reachable *bool  `json:"reachable"`
				Error     string `json:"error"`
			} `json:"temporal"`
			Events []map[string]any `json:"events"`
		}
		jsonOnly(stdout, &report)
		if r := report.Temporal; r.Reachable == nil || *r.Reachable || !strings.Contains(r.Error, "Temporal unreachable at 127.0.0.1:1") {
			t.Errorf("%v: temporal %+v, want unreachable with the reason", args, r)
		}
		if len(report.Events) != 1 || report.Events[0]["code"] != "offline" || report.Events[0]["queue"] != float64(12) ||
			report.Events[0]["members"] != float64(12) || report.Events[0]["state"] != "unknown (Temporal unreachable)" {
			t.Errorf("%v: events %v, want offline with its 12 members queued", args, report.Events)
		}
		if !strings.Contains(stderr, "showing what the database knows") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line saying Temporal was not reached", args, stderr)
		}
	}

	code, stdout, stderr = run("status")
	if code != 0 || !strings.Contains(stdout, "offline") || !strings.Contains(stdout, "12 (12/0/0/0)") ||
		!strings.HasPrefix(stderr, "starter: Temporal unreachable at 127.0.0.1:1") {
		t.Errorf("status as text: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
