package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeChecks are the three readiness checks, each answering with its error.
type fakeChecks struct{ database, temporal, listener error }

func (f fakeChecks) readiness(timeout time.Duration) *readiness {
	r := newReadiness(timeout, checkDatabase, checkTemporal, checkListener)
	answer := func(err error) readyCheck { return func(context.Context) error { return err } }
	r.set(checkDatabase, answer(f.database))
	r.set(checkTemporal, answer(f.temporal))
	r.set(checkListener, answer(f.listener))
	return r
}

// getReady asks h for /readyz and decodes the answer.
func getReady(t *testing.T, h http.Handler) (int, readyReport, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, pathReadyz, nil))
	var rep readyReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("/readyz body is not JSON: %v\n%s", err, rec.Body)
	}
	return rec.Code, rep, rec.Header()
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name   string
		checks fakeChecks
		status int
		failed map[string]string // check → its reported reason; the rest "ok"
	}{
		{name: "all ready", status: http.StatusOK},
		{name: "database down", checks: fakeChecks{database: down}, status: http.StatusServiceUnavailable,
			failed: map[string]string{checkDatabase: "connection refused"}},
		{name: "temporal down", checks: fakeChecks{temporal: down}, status: http.StatusServiceUnavailable,
			failed: map[string]string{checkTemporal: "connection refused"}},
		{name: "listener reconnecting", checks: fakeChecks{listener: errNotListening}, status: http.StatusServiceUnavailable,
			failed: map[string]string{checkListener: errNotListening.Error()}},
		{name: "everything down", checks: fakeChecks{database: down, temporal: down, listener: errNotListening},
			status: http.StatusServiceUnavailable,
			failed: map[string]string{checkDatabase: "connection refused", checkTemporal: "connection refused", checkListener: errNotListening.Error()}},
		{name: "multi-line error keeps its first line", checks: fakeChecks{database: errors.New("refused\nat line 2")},
			status: http.StatusServiceUnavailable, failed: map[string]string{checkDatabase: "refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, rep, header := getReady(t, tc.checks.readiness(time.Second))
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if rep.Ready != (tc.status == http.StatusOK) || rep.Stopping {
				t.Errorf("ready=%v stopping=%v with status %d", rep.Ready, rep.Stopping, status)
			}
			if ct := header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, name := range []string{checkDatabase, checkTemporal, checkListener} {
				want := "ok"
				if reason, ok := tc.failed[name]; ok {
					want = reason
				}
				if got := rep.Checks[name]; got != want {
					t.Errorf("check %s: %q, want %q", name, got, want)
				}
			}
		})
	}
}

// A dependency that hangs, even one whose check ignores its context, must
// not hold the probe past the check timeout.
func TestReadyzBoundsAHungCheck(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	r := fakeChecks{}.readiness(timeout)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r.set(checkDatabase, func(context.Context) error { <-release; return nil }) // ignores ctx
	r.set(checkTemporal, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })

	start := time.Now()
	status, rep, _ := getReady(t, r)
	took := time.Since(start)
	if status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", status)
	}
	// The checks run in parallel: one timeout, not two.
	if took > timeout+300*time.Millisecond {
		t.Errorf("probe took %s with a %s check timeout", took, timeout)
	}
	for _, name := range []string{checkDatabase, checkTemporal} {
		if got := rep.Checks[name]; got != "no answer within 200ms" {
			t.Errorf("check %s: %q, want %q", name, got, "no answer within 200ms")
		}
	}
	if rep.Checks[checkListener] != "ok" {
		t.Errorf("listener: %q, want ok", rep.Checks[checkListener])
	}
}

func TestReadyzBeforeChecksAreSetAndWhileStopping(t *testing.T) {
	t.Parallel()
	r := newReadiness(time.Second, checkDatabase, checkTemporal, checkListener)
	r.set(checkDatabase, func(context.Context) error { return nil })
	status, rep, _ := getReady(t, r)
	if status != http.StatusServiceUnavailable || rep.Checks[checkTemporal] != errNotStarted.Error() ||
		rep.Checks[checkListener] != errNotStarted.Error() || rep.Checks[checkDatabase] != "ok" {
		t.Errorf("while starting: %d %+v", status, rep)
	}

	ready := fakeChecks{}.readiness(time.Second)
	if status, _, _ := getReady(t, ready); status != http.StatusOK {
		t.Fatalf("status %d before stopping, want 200", status)
	}
	ready.setStopping()
	status, rep, _ = getReady(t, ready)
	if status != http.StatusServiceUnavailable || rep.Ready || !rep.Stopping {
		t.Errorf("while stopping: %d %+v, want 503, not ready, stopping", status, rep)
	}
}

func TestEndpointRoutes(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "a test counter"})
	reg.MustRegister(c)
	mux := endpointMux(reg, fakeChecks{database: errors.New("down")}.readiness(time.Second))
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{http.MethodGet, pathHealthz, http.StatusOK, "ok\n"},
		{http.MethodHead, pathHealthz, http.StatusOK, ""},
		{http.MethodGet, pathReadyz, http.StatusServiceUnavailable, `"database":"down"`},
		{http.MethodPost, pathReadyz, http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/metrics", http.StatusOK, "test_total 0"},
		{http.MethodGet, "/nothing", http.StatusNotFound, ""},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
}

func TestReadyURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, want string
		wantErr    string
	}{
		{addr: "127.0.0.1:9464", want: "http://127.0.0.1:9464/readyz"},
		{addr: "0.0.0.0:9464", want: "http://127.0.0.1:9464/readyz"},
		{addr: ":9464", want: "http://127.0.0.1:9464/readyz"},
		{addr: "[::]:9464", want: "http://[::1]:9464/readyz"},
		{addr: "[::1]:9464", want: "http://[::1]:9464/readyz"},
		{addr: "worker:9464", want: "http://worker:9464/readyz"},
		{addr: "", wantErr: "METRICS_ADDR is empty"},
		{addr: "127.0.0.1:0", wantErr: "port 0"},
		{addr: "9464", wantErr: "METRICS_ADDR"},
	} {
		got, err := readyURL(tc.addr)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("readyURL(%q) = %q, %v; want an error containing %q", tc.addr, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("readyURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}

// TestHealthcheck runs `worker healthcheck` against a real endpoint.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(t *testing.T, r *readiness) string {
		t.Helper()
		ep, err := serveEndpoint("127.0.0.1:0", endpointMux(prometheus.NewRegistry(), r), logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ep.shutdown(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
		return ep.addr()
	}
	run := func(addr string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := healthcheck(addr, 2*time.Second, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := run(start(t, fakeChecks{}.readiness(time.Second)))
		if code != 0 || !strings.HasPrefix(out, "ready: ") || errOut != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and ready", code, out, errOut)
		}
	})
	t.Run("not ready", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := run(start(t, fakeChecks{listener: errNotListening}.readiness(time.Second)))
		if code != 1 || out != "" || !strings.Contains(errOut, "503") || !strings.Contains(errOut, checkListener) {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 naming the listener", code, out, errOut)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		t.Parallel()
		ep, err := serveEndpoint("127.0.0.1:0", http.NotFoundHandler(), logger)
		if err != nil {
			t.Fatal(err)
		}
		addr := ep.addr()
		if err := ep.shutdown(); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := run(addr); code != 1 || !strings.Contains(errOut, "worker healthcheck:") {
			t.Errorf("exit %d, stderr %q; want 1", code, errOut)
		}
	})
	t.Run("no endpoint configured", func(t *testing.T) {
		t.Parallel()
		if code, _, errOut := run(""); code != 1 || !strings.Contains(errOut, "METRICS_ADDR is empty") {
			t.Errorf("exit %d, stderr %q; want 1 explaining METRICS_ADDR", code, errOut)
		}
	})
}
