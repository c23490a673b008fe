package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/internal/cli"
)

// unreachable points the starter at a database and a Temporal that refuse
// connections at once: a check that lets bad input through fails the test
// with "database unreachable" instead of touching anything.
func unreachable(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
}

// TestBadInputIsRefusedBeforeConnecting runs every command with bad input
// and wants a usage error: exit 2, one line naming the cause followed by
// the command's usage on stderr, nothing on stdout, and no attempt to
// connect.
func TestBadInputIsRefusedBeforeConnecting(t *testing.T) {
	unreachable(t)
	long := strings.Repeat("x", 201)
	const (
		members1000    = "want a whole number from 1 to 1000"
		members1000000 = "want a whole number from 1 to 1000000"
		timeout        = "want a duration from 1s to 24h, such as 90s, 30m or 2h"
	)
	cases := []struct {
		args []string
		want string
	}{
		// matches
		{[]string{"matches", "demo", "--members", "-5"}, `invalid argument "-5" for "--members" flag: ` + members1000},
		{[]string{"matches", "demo", "--members", "0"}, `invalid argument "0" for "--members" flag: ` + members1000},
		{[]string{"matches", "--members", "1001", "demo"}, `invalid argument "1001" for "--members" flag: ` + members1000},
		{[]string{"matches", "demo", "--members", "abc"}, `invalid argument "abc" for "--members" flag: ` + members1000},
		{[]string{"matches", "demo", "--members", "99999999999999999999"}, `invalid argument "99999999999999999999" for "--members" flag: ` + members1000},
		{[]string{"matches", "demo", "--members"}, "flag needs an argument: --members"},
		{[]string{"matches"}, "matches takes one event code or uuid, got 0 arguments"},
		{[]string{"matches", ""}, "the event code or uuid must not be blank"},
		// load-demo
		{[]string{"load-demo", "--code", ""}, "--code must not be blank"},
		{[]string{"load-demo", "--code", "   "}, "--code must not be blank"},
		{[]string{"load-demo", "--code", " demo"}, `--code may contain only letters, digits, '-', '_' and '.', got " demo"`},
		{[]string{"load-demo", "--code", "demo night"}, `--code may contain only letters, digits, '-', '_' and '.', got "demo night"`},
		{[]string{"load-demo", "--code", "x';drop"}, `--code may contain only letters, digits, '-', '_' and '.', got "x';drop"`},
		{[]string{"load-demo", "--code", "-demo"}, `--code must start with a letter or digit, got "-demo"`},
		{[]string{"load-demo", "--code", strings.Repeat("d", 65)}, "--code must be at most 64 characters, got 65"},
		{[]string{"load-demo", "--code", "6f1c2e7a-1111-4222-8333-944455556666"}, `--code must not look like a UUID (it would be taken for an event id), got "6f1c2e7a-1111-4222-8333-944455556666"`},
		{[]string{"load-demo", "--code", "6f1c2e7a-1111-4222-8333-94445555666"}, `--code must not look like a UUID (it would be taken for an event id), got "6f1c2e7a-1111-4222-8333-94445555666"`},
		{[]string{"load-demo", "--members", "-5"}, `invalid argument "-5" for "--members" flag: ` + members1000000},
		{[]string{"load-demo", "--members", "0"}, `invalid argument "0" for "--members" flag: ` + members1000000},
		{[]string{"load-demo", "--members", "1000001"}, `invalid argument "1000001" for "--members" flag: ` + members1000000},
		{[]string{"load-demo", "--seed", "x"}, `invalid argument "x" for "--seed" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{[]string{"load-demo", "demo"}, `load-demo takes no arguments (the event code is --code), got "demo"`},
		// enable
		{[]string{"enable", "demo", "--wait", "--timeout", "-5s"}, `invalid argument "-5s" for "--timeout" flag: ` + timeout},
		{[]string{"enable", "demo", "--wait", "--timeout", "0"}, `invalid argument "0" for "--timeout" flag: ` + timeout},
		{[]string{"enable", "demo", "--wait", "--timeout", "0s"}, `invalid argument "0s" for "--timeout" flag: ` + timeout},
		{[]string{"enable", "demo", "--wait", "--timeout", "500ms"}, `invalid argument "500ms" for "--timeout" flag: ` + timeout},
		{[]string{"enable", "demo", "--wait", "--timeout", "25h"}, `invalid argument "25h" for "--timeout" flag: ` + timeout},
		{[]string{"enable", "demo", "--wait", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag: ` + timeout},
		{[]string{"enable", "demo", "--timeout", "5m"}, "--timeout applies only with --wait"},
		{[]string{"enable", "demo", "--wait=maybe"}, `invalid argument "maybe" for "--wait" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"enable", "demo", "--wiat"}, "unknown flag: --wiat"},
		{[]string{"enable"}, "enable takes one event code or uuid, got 0 arguments"},
		{[]string{"enable", "a", "b"}, "enable takes one event code or uuid, got 2 arguments"},
		{[]string{"enable", ""}, "the event code or uuid must not be blank"},
		{[]string{"enable", " \t "}, "the event code or uuid must not be blank"},
		{[]string{"enable", "de\x00mo"}, `the event code or uuid "de\x00mo" contains a control character or invalid UTF-8`},
		{[]string{"enable", "de\xffmo"}, `the event code or uuid "de\xffmo" contains a control character or invalid UTF-8`},
		{[]string{"enable", long}, "the event code or uuid is too long: at most 200 characters, got 201"},
		{[]string{"enable", "6f1c2e7a-1111-4222-8333-94445555666"}, `"6f1c2e7a-1111-4222-8333-94445555666" is not a valid event UUID`},
		{[]string{"enable", "demo", "--output", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: want text or json`},
		// migrate
		{[]string{"migrate", "now"}, `migrate takes no arguments, got "now"`},
		{[]string{"migrate", "--create-database=perhaps"}, `invalid argument "perhaps" for "--create-database" flag: strconv.ParseBool: parsing "perhaps": invalid syntax`},
		// grant-worker
		{[]string{"grant-worker"}, "grant-worker takes one role name, got 0 arguments"},
		{[]string{"grant-worker", "a", "b"}, "grant-worker takes one role name, got 2 arguments"},
		{[]string{"grant-worker", " \t"}, "the role name must not be blank"},
		{[]string{"grant-worker", "w\x00rker"}, `the role name "w\x00rker" contains a control character or invalid UTF-8`},
		{[]string{"grant-worker", strings.Repeat("w", 64)}, "the role name is too long: PostgreSQL names are at most 63 bytes, got 64"},
		{[]string{"grant-worker", "worker", "--all"}, "unknown flag: --all"},
		// per-event commands
		{[]string{"disable", ""}, "the event code or uuid must not be blank"},
		{[]string{"disable", "demo", "--yes"}, "unknown flag: --yes"},
		{[]string{"pause", ""}, "the event code or uuid must not be blank"},
		{[]string{"pause", "demo", "--all"}, "pause takes an event or --all, not both"},
		{[]string{"resume"}, "resume takes one event code or uuid, got 0 arguments"},
		{[]string{"rematch", "  "}, "the event code or uuid must not be blank"},
		{[]string{"clear-queue", "", "--yes"}, "the event code or uuid must not be blank"},
		{[]string{"retry-quarantined"}, "retry-quarantined takes one event code or uuid, got 0 arguments"},
		{[]string{"retry-quarantined", ""}, "the event code or uuid must not be blank"},
		{[]string{"retry-quarantined", "demo", "--all"}, "unknown flag: --all"},
		{[]string{"retry-quarantined", "6f1c2e7a-1111-4222-8333-94445555666"}, `"6f1c2e7a-1111-4222-8333-94445555666" is not a valid event UUID`},
		// status
		{[]string{"status", "a", "b"}, "status takes at most one event code or uuid, got 2 arguments"},
		{[]string{"status", ""}, "the event code or uuid must not be blank"},
		{[]string{"status", "--output", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: want text or json`},
		{[]string{"status", "--json"}, "unknown flag: --json"},
		{[]string{"status", "6f1c2e7a-1111-4222-8333-94445555666"}, `"6f1c2e7a-1111-4222-8333-94445555666" is not a valid event UUID`},
		// ai-cache
		{[]string{"ai-cache"}, "ai-cache needs a command: clear"},
		{[]string{"ai-cache", "drop"}, `unknown command "drop" for "starter ai-cache"`},
		{[]string{"ai-cache", "clear"}, "ai-cache clear needs --event <event> or --all"},
		{[]string{"ai-cache", "clear", "demo"}, `ai-cache clear takes no arguments (name the event with --event), got "demo"`},
		{[]string{"ai-cache", "clear", "--event", "demo", "--all"}, "ai-cache clear takes --event or --all, not both"},
		{[]string{"ai-cache", "clear", "--event", " "}, "the event code or uuid must not be blank"},
		{[]string{"ai-cache", "clear", "--event"}, "flag needs an argument: --event"},
		{[]string{"ai-cache", "clear", "--all", "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: want text or json`},
		// connection overrides
		{[]string{"status", "--address", " "}, `invalid argument " " for "--address" flag: must not be empty or blank`},
		{[]string{"--database-url=", "status"}, `invalid argument "" for "--database-url" flag: must not be empty or blank`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), c.args, &stdout, &stderr)
			if code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, cli.ExitUsage, stderr.String())
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if want := "starter: " + c.want; first != want {
				t.Fatalf("stderr's first line\n  %q\nwant\n  %q", first, want)
			}
			if want := "Usage:\n  starter " + c.args[0] + " "; c.args[0] != "--database-url=" && !strings.Contains(rest, want) {
				t.Errorf("stderr does not go on with the usage of %s:\n%s", c.args[0], rest)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// TestGoodInputReachesTheConnection makes sure the checks pass what they
// should: these fail only because nothing answers, as runtime failures.
func TestGoodInputReachesTheConnection(t *testing.T) {
	unreachable(t)
	for _, args := range [][]string{
		{"matches", "demo", "--members", "1000"},
		{"matches", "--members=1", " demo "},
		{"load-demo", "--code", "bs-100-1-4242", "--members", "1000000", "--seed", "-3"},
		{"load-demo", "--code", "münchen_2025.v2"},
		{"enable", "demo", "--wait", "--timeout", "24h"},
		{"enable", "--wait", "--timeout", "1s", "6f1c2e7a-1111-4222-8333-944455556666"},
		{"enable", "demo", "--rematch", "-o", "json"},
		{"retry-quarantined", "demo"},
		{"status"},
		{"status", "demo", "--output", "json"},
		{"pause", "--all"},
		{"clear-queue", "demo"},
		{"ai-cache", "clear", "--all"},
		{"ai-cache", "clear", "--event", "demo", "-o", "json"},
		{"grant-worker", "mm_worker"},
		{"grant-worker", `Odd "Role"; DROP TABLE x`},
		{"grant-worker", strings.Repeat("w", 63)},
		{"migrate"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), args, &stdout, &stderr)
			if code != cli.ExitFailure || !strings.Contains(stderr.String(), "unreachable") {
				t.Fatalf("exit %d, stderr %q; want 1 and the database or Temporal unreachable", code, stderr.String())
			}
			if lines := strings.Count(stderr.String(), "\n"); lines != 1 || stdout.Len() != 0 {
				t.Errorf("want one line on stderr and nothing on stdout; stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

func TestHelpPrintsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "retry-quarantined Enqueue"},
		{[]string{"--help"}, "retry-quarantined Enqueue"},
		{[]string{"enable", "-h"}, "Usage:\n  starter enable <event> [flags]"},
		{[]string{"status", "--help"}, "Usage:\n  starter status [event] [flags]"},
		{[]string{"help", "retry-quarantined"}, "Usage:\n  starter retry-quarantined <event> [flags]"},
		{[]string{"completion", "--help"}, "Usage:\n  starter completion [command]"},
	} {
		var stdout, stderr bytes.Buffer
		if code := execute(context.Background(), tc.args, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("%v: usage lacks %q:\n%s", tc.args, tc.want, stdout.String())
		}
	}
}

func TestCheckEventRefTrims(t *testing.T) {
	got, err := checkEventRef("  demo\t")
	if err != nil || got != "demo" {
		t.Fatalf("checkEventRef = %q, %v; want demo", got, err)
	}
	// Codes the web app made are looked up as they are.
	for _, ref := range []string{"Summer Gala 2025", "münchen", "6f1c2e7a-1111-4222-8333-944455556666", strings.Repeat("x", 200)} {
		if _, err := checkEventRef(ref); err != nil {
			t.Errorf("checkEventRef(%q): %v", ref, err)
		}
	}
}

func TestGaveUpSaysWhy(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	interrupted, stop := context.WithCancel(context.Background())
	stop()
	cases := []struct {
		ctx    context.Context
		queued int
		want   string
	}{
		{expired, -1, "gave up after 5s before the queue of demo could be read; matchmaking stays enabled"},
		{expired, 7, "gave up after 5s: the queue of demo still has 7 members; matchmaking stays enabled"},
		{interrupted, 7, "interrupted: the queue of demo still has 7 members; matchmaking stays enabled"},
	}
	for _, c := range cases {
		if got := gaveUp(c.ctx, 5*time.Second, "demo", c.queued).Error(); got != c.want {
			t.Errorf("gaveUp = %q, want %q", got, c.want)
		}
	}
}

func TestStatusShowsQuarantinedMembersAndLastError(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	row := statusRow{
		Code: "demo", Name: "Demo night", State: "idle", Members: 301, UsersMatched: 300,
		LastError:     "commit batch 3:\n  insert or update on table \"matches\"\tviolates a constraint",
		ListsDeferred: 2,
		Quarantined:   12,
	}
	for i := range 10 {
		row.QuarantinedMembers = append(row.QuarantinedMembers, quarantinedRow{
			UserID: "u" + string(rune('0'+i)), DisplayName: "Poison\n" + string(rune('A'+i)),
			Reason: "violates foreign key constraint (SQLSTATE 23503)", QuarantinedAt: now.Add(-2 * time.Minute),
		})
	}
	row.QuarantinedMembers[1].DisplayName = ""

	var out bytes.Buffer
	if err := writeStatus(&out, []statusRow{row}, true, now); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"\nquarantined: 12 (starter retry-quarantined demo to retry)\n",
		"\n  Poison A, user u0, quarantined 2m0s ago: violates foreign key constraint (SQLSTATE 23503)\n",
		"\n  (no longer a member), user u1, quarantined 2m0s ago: violates foreign key constraint (SQLSTATE 23503)\n",
		"\n  … and 2 more\n",
		"\nlists deferred: 2 (they named a member who left; their owners were matched again)\n",
		"\nlast error: commit batch 3: insert or update on table \"matches\" violates a constraint\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "\n  Poison") != 9 {
		t.Errorf("want 9 named members listed:\n%s", text)
	}

	// Several events: one line each, prefixed by the code, no members.
	other := statusRow{Code: "gala night", Name: "Gala", State: "paused", Quarantined: 1}
	row.QuarantinedMembers = nil
	out.Reset()
	if err := writeStatus(&out, []statusRow{row, other}, false, now); err != nil {
		t.Fatal(err)
	}
	text = out.String()
	for _, want := range []string{
		"\ndemo: quarantined: 12 (starter retry-quarantined demo to retry)\n",
		"\ndemo: last error: commit batch 3:",
		"\ngala night: quarantined: 1 (starter retry-quarantined 'gala night' to retry)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Poison") || strings.Contains(text, "more") {
		t.Errorf("the overview lists members:\n%s", text)
	}

	// Nothing quarantined, no error: no detail lines.
	out.Reset()
	if err := writeStatus(&out, []statusRow{{Code: "calm", State: "idle"}}, true, now); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 {
		t.Errorf("want a header and one row:\n%s", out.String())
	}
}

func TestStatusJSONHasQuarantined(t *testing.T) {
	b, err := json.Marshal(statusReport{Events: []statusRow{{Code: "demo", Quarantined: 1, QuarantinedMembers: []quarantinedRow{{UserID: "u1", Reason: "r"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Temporal map[string]any   `json:"temporal"`
		Events   []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(b, &report); err != nil || len(report.Events) != 1 {
		t.Fatalf("%v: %s", err, b)
	}
	if _, ok := report.Temporal["reachable"]; !ok {
		t.Errorf("no temporal.reachable: %s", b)
	}
	m := report.Events[0]
	if m["quarantined"] != float64(1) {
		t.Errorf("quarantined = %v, want 1: %s", m["quarantined"], b)
	}
	if ms, ok := m["quarantined_members"].([]any); !ok || len(ms) != 1 {
		t.Errorf("quarantined_members = %v: %s", m["quarantined_members"], b)
	}
	if _, ok := m["lists_deferred"]; !ok {
		t.Errorf("no lists_deferred: %s", b)
	}
}

func TestClipKeepsOneLine(t *testing.T) {
	if got := clip("a\nb\tc\x00d  e", 100); got != "a b c d e" {
		t.Errorf("clip = %q", got)
	}
	if got := clip(strings.Repeat("é", 10), 5); got != "éééé…" {
		t.Errorf("clip = %q", got)
	}
}

// TestMigrateNeedsASession: migrate refuses, before connecting, a URL that
// goes through a transaction-mode pooler, and takes DATABASE_LISTEN_URL
// over DATABASE_URL.
func TestMigrateNeedsASession(t *testing.T) {
	unreachable(t)
	for _, tc := range []struct {
		name, url, listen, want string
	}{
		{"DATABASE_URL on Supabase's transaction pooler", "postgres://u@127.0.0.1:6543/db?connect_timeout=1", "",
			"DATABASE_URL goes through a transaction-mode pooler (port 6543"},
		{"DATABASE_URL marked pgbouncer=true", "postgres://u@127.0.0.1:1/db?pgbouncer=true", "",
			"DATABASE_URL goes through a transaction-mode pooler (pgbouncer=true in the URL)"},
		{"DATABASE_LISTEN_URL pooled too", "postgres://u@127.0.0.1:1/db", "postgres://u@127.0.0.1:1/db?pgbouncer=true",
			"DATABASE_LISTEN_URL goes through a transaction-mode pooler"},
		{"DATABASE_LISTEN_URL direct", "postgres://u@127.0.0.1:6543/db", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
			"database server unreachable at 127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", tc.url)
			t.Setenv("DATABASE_LISTEN_URL", tc.listen)
			var stderr bytes.Buffer
			code := execute(context.Background(), []string{"migrate", "--create-database"}, &bytes.Buffer{}, &stderr)
			if code != cli.ExitFailure || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		var stdout, stderr bytes.Buffer
		code := execute(context.Background(), args, &stdout, &stderr)
		if code != 0 || stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), "starter github.com/eventmatch/matchmaker ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}
