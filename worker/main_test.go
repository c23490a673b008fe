package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/internal/cli"
)

// TestCommandLine: help and --version print on stdout and exit 0 without
// reading the configuration; usage errors exit 2 with one line and the
// usage on stderr.
func TestCommandLine(t *testing.T) {
	// A configuration that would fail to load: help must not read it.
	t.Setenv("BATCH_SIZE", "many")
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // what stdout contains; "" for nothing at all
		stderrLine string // stderr's first line; "" for nothing at all
	}{
		{[]string{"--help"}, cli.ExitOK, "healthcheck Exit 0 when the worker on METRICS_ADDR is ready", ""},
		{[]string{"-h"}, cli.ExitOK, "WORKER_STOP_TIMEOUT", ""},
		{[]string{"help"}, cli.ExitOK, "README", ""},
		{[]string{"help", "healthcheck"}, cli.ExitOK, "Usage:\n  worker healthcheck [flags]", ""},
		{[]string{"healthcheck", "--help"}, cli.ExitOK, "/readyz", ""},
		{[]string{"--version"}, cli.ExitOK, "worker github.com/eventmatch/matchmaker ", ""},
		{[]string{"version"}, cli.ExitOK, "worker github.com/eventmatch/matchmaker ", ""},
		{[]string{"completion", "bash"}, cli.ExitOK, "bash completion", ""},
		{[]string{"healthcheck", "extra"}, cli.ExitUsage, "", `worker: unknown command "extra" for "worker healthcheck"`},
		{[]string{"healthcheck", "--verbose"}, cli.ExitUsage, "", "worker: unknown flag: --verbose"},
		{[]string{"bogus"}, cli.ExitUsage, "", `worker: unknown command "bogus" for "worker"`},
		{[]string{""}, cli.ExitUsage, "", `worker: unknown command "" for "worker"`},
		{[]string{"--address", ""}, cli.ExitUsage, "", `worker: invalid argument "" for "--address" flag: must not be empty or blank`},
		{[]string{}, cli.ExitFailure, "", "worker: configuration: BATCH_SIZE: invalid value"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.stdout == "" && stdout.Len() > 0 || !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tc.stdout)
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			switch {
			case tc.stderrLine == "" && stderr.Len() > 0:
				t.Errorf("stderr %q, want nothing", stderr.String())
			case !strings.HasPrefix(first, tc.stderrLine):
				t.Errorf("stderr's first line %q, want %q", first, tc.stderrLine)
			case tc.code == cli.ExitUsage && !strings.Contains(rest, "Usage:\n  worker"):
				t.Errorf("a usage error without the usage:\n%s", stderr.String())
			}
		})
	}
}

// TestNoSubcommandRunsTheWorker: without arguments the worker runs, here
// until it finds the database unreachable, and exits 1 saying so.
func TestNoSubcommandRunsTheWorker(t *testing.T) {
	t.Setenv("METRICS_ADDR", "")
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), nil, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code != cli.ExitFailure || !strings.HasPrefix(lines[len(lines)-1], "worker: database unreachable at 127.0.0.1:1/none") {
		t.Fatalf("exit %d, stderr:\n%s\nwant 1 and the database unreachable last", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="worker stopped"`) {
		t.Errorf("the worker's log lacks why it stopped:\n%s", stderr.String())
	}
}

// TestHealthcheckCommand: `worker healthcheck` exits 0 when /readyz on
// METRICS_ADDR answers 200, and 1, with one line on stderr, when it does
// not or nothing listens.
func TestHealthcheckCommand(t *testing.T) {
	serve := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"ready":false}`))
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	for _, tc := range []struct {
		name, addr string
		code       int
	}{
		{"ready", serve(http.StatusOK), 0},
		{"not ready", serve(http.StatusServiceUnavailable), 1},
		{"no worker", closed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("METRICS_ADDR", tc.addr)
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), []string{"healthcheck"}, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.code == 0 && !strings.HasPrefix(stdout.String(), "ready: ") {
				t.Errorf("stdout %q", stdout.String())
			}
			if tc.code != 0 && (strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "worker healthcheck: ")) {
				t.Errorf("stderr %q, want one 'worker healthcheck: ' line", stderr.String())
			}
		})
	}
}
