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
	"github.com/eventmatch/matchmaker/internal/cli/clitest"
)

// TestCommandLine: help and --version print on stdout and exit 0 without
// reading the configuration; usage errors exit 2 with one line and the
// usage on stderr.
func TestCommandLine(t *testing.T) {
	// A configuration that would fail to load: help must not read it.
	t.Setenv("BATCH_SIZE", "many")
	clitest.Run(t, "worker", execute, []clitest.Case{
		{Args: []string{"--help"}, Code: cli.ExitOK, Stdout: "healthcheck Exit 0 when the worker on METRICS_ADDR is ready"},
		{Args: []string{"-h"}, Code: cli.ExitOK, Stdout: "WORKER_STOP_TIMEOUT"},
		{Args: []string{"help"}, Code: cli.ExitOK, Stdout: "README"},
		{Args: []string{"help", "healthcheck"}, Code: cli.ExitOK, Stdout: "Usage:\n  worker healthcheck [flags]"},
		{Args: []string{"healthcheck", "--help"}, Code: cli.ExitOK, Stdout: "/readyz"},
		{Args: []string{"--version"}, Code: cli.ExitOK, Stdout: "worker github.com/eventmatch/matchmaker "},
		{Args: []string{"version"}, Code: cli.ExitOK, Stdout: "worker github.com/eventmatch/matchmaker "},
		{Args: []string{"completion", "bash"}, Code: cli.ExitOK, Stdout: "bash completion"},
		{Args: []string{"healthcheck", "extra"}, Code: cli.ExitUsage, StderrLine: `worker: unknown command "extra" for "worker healthcheck"`},
		{Args: []string{"healthcheck", "--verbose"}, Code: cli.ExitUsage, StderrLine: "worker: unknown flag: --verbose"},
		{Args: []string{"bogus"}, Code: cli.ExitUsage, StderrLine: `worker: unknown command "bogus" for "worker"`},
		{Args: []string{""}, Code: cli.ExitUsage, StderrLine: `worker: unknown command "" for "worker"`},
		{Args: []string{"--address", ""}, Code: cli.ExitUsage, StderrLine: `worker: invalid argument "" for "--address" flag: must not be empty or blank`},
		{Args: []string{}, Code: cli.ExitFailure, StderrLine: "worker: configuration: BATCH_SIZE: invalid value"},
	})
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
