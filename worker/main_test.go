package main

import (
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		mode     mode
		code     int
		toStdout bool   // the usage goes to stdout, else to stderr
		first    string // the first line of the output
	}{
		{args: nil, mode: modeRun},
		{args: []string{"healthcheck"}, mode: modeHealthcheck},
		{args: []string{"healthcheck", "--verbose"}, code: 2, first: `worker: healthcheck takes no arguments, got "--verbose"`},
		{args: []string{"help", "healthcheck"}, code: 2, first: `worker: unexpected argument "healthcheck"`},
		{args: []string{"--help"}, toStdout: true, first: "Usage: worker"},
		{args: []string{"-h"}, toStdout: true, first: "Usage: worker"},
		{args: []string{"help"}, toStdout: true, first: "Usage: worker"},
		{args: []string{"bogus"}, code: 2, first: `worker: unexpected argument "bogus"`},
		{args: []string{"--help", "bogus"}, code: 2, first: `worker: unexpected argument "bogus"`},
		{args: []string{"-v"}, code: 2, first: `worker: unexpected argument "-v"`},
		{args: []string{""}, code: 2, first: `worker: unexpected argument ""`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			m, stdout, stderr, code := commandLine(tc.args)
			if m != tc.mode || code != tc.code {
				t.Fatalf("mode=%d code=%d, want mode=%d code=%d", m, code, tc.mode, tc.code)
			}
			if tc.mode != modeExit {
				if stdout != "" || stderr != "" {
					t.Fatalf("running prints nothing first, got stdout %q stderr %q", stdout, stderr)
				}
				return
			}
			out, other := stderr, stdout
			if tc.toStdout {
				out, other = stdout, stderr
			}
			if other != "" {
				t.Fatalf("output on both streams: stdout %q stderr %q", stdout, stderr)
			}
			if first, _, _ := strings.Cut(out, "\n"); first != tc.first {
				t.Fatalf("first line %q, want %q", first, tc.first)
			}
			for _, want := range []string{"environment", "README", "worker healthcheck", "WORKER_STOP_TIMEOUT"} {
				if !strings.Contains(out, want) {
					t.Fatalf("usage does not mention %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--version", "version"} {
		m, stdout, stderr, code := commandLine([]string{arg})
		if m != modeExit || code != 0 || stderr != "" || !strings.HasPrefix(stdout, "worker github.com/eventmatch/matchmaker ") {
			t.Errorf("%s: mode=%d code=%d stdout %q stderr %q", arg, m, code, stdout, stderr)
		}
	}
}
