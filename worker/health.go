package main

// The worker's HTTP endpoint on METRICS_ADDR serves, besides /metrics:
//
//	/healthz  200 while the process serves HTTP at all (liveness)
//	/readyz   200 when the database answers, Temporal answers and the
//	          listener holds its LISTEN; otherwise 503, naming what is not
//	          ready (readiness)
//
// `worker healthcheck` asks /readyz and exits 0 or 1, for container
// healthchecks in an image without a shell or HTTP client.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventmatch/matchmaker/internal/metrics"
)

// Endpoint paths.
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
)

// Readiness checks, in the order /readyz reports them.
const (
	checkDatabase = "database"
	checkTemporal = "temporal"
	checkListener = "listener"
)

// checkTimeout bounds each readiness check; they run in parallel, so a
// probe is answered within about this long even when a dependency hangs.
const checkTimeout = 2 * time.Second

// healthcheckTimeout bounds `worker healthcheck`'s request. It exceeds
// checkTimeout, so a hung dependency is reported as such rather than as a
// timeout of the probe; docker-compose.yml's healthcheck timeout exceeds it.
const healthcheckTimeout = 4 * time.Second

// httpShutdownGrace bounds how long a request in flight may delay the
// endpoint's shutdown.
const httpShutdownGrace = 5 * time.Second

// readyCheck answers nil when its dependency is ready, else why not. It
// must return once ctx ends.
type readyCheck func(ctx context.Context) error

// errNotStarted is a check whose dependency the worker has not set up yet.
var errNotStarted = errors.New("not started yet")

// readiness is /readyz. Its checks are set as the worker brings their
// dependencies up; until then they report errNotStarted.
type readiness struct {
	timeout  time.Duration
	names    []string
	mu       sync.Mutex
	checks   map[string]readyCheck
	stopping atomic.Bool
}

func newReadiness(timeout time.Duration, names ...string) *readiness {
	return &readiness{timeout: timeout, names: names, checks: map[string]readyCheck{}}
}

// set installs the check of name, one of the names given to newReadiness.
func (r *readiness) set(name string, c readyCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = c
}

// setStopping makes /readyz answer 503 from now on: the worker has been
// told to stop and takes no new work.
func (r *readiness) setStopping() { r.stopping.Store(true) }

// readyReport is /readyz's body.
type readyReport struct {
	Ready bool `json:"ready"`
	// Stopping: SIGTERM or SIGINT arrived; the worker is finishing its
	// running steps and takes no new ones.
	Stopping bool `json:"stopping,omitempty"`
	// Checks maps each check to "ok" or why it is not ready.
	Checks map[string]string `json:"checks"`
}

// report runs every check in parallel, each bounded by r.timeout.
func (r *readiness) report(ctx context.Context) readyReport {
	r.mu.Lock()
	checks := make([]readyCheck, len(r.names))
	for i, name := range r.names {
		checks[i] = r.checks[name]
	}
	r.mu.Unlock()

	results := make([]string, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = runCheck(ctx, r.timeout, c) })
	}
	wg.Wait()

	rep := readyReport{Ready: !r.stopping.Load(), Stopping: r.stopping.Load(), Checks: make(map[string]string, len(checks))}
	for i, name := range r.names {
		rep.Checks[name] = results[i]
		if results[i] != "ok" {
			rep.Ready = false
		}
	}
	return rep
}

// runCheck runs c within timeout and says "ok" or why not. A check that
// ignores its context is abandoned at the timeout, so it cannot hold the
// probe.
func runCheck(ctx context.Context, timeout time.Duration, c readyCheck) string {
	if c == nil {
		return errNotStarted.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return shortError(err)
}

// shortError keeps a probe's body short: an error's first line, at most
// 200 bytes.
func shortError(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return msg
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rep := r.report(req.Context())
	status := http.StatusOK
	if !rep.Ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}

// serveHealthz answers 200 to anyone who reaches it: the process runs and
// serves HTTP.
func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// endpointMux routes /metrics, /healthz and /readyz.
func endpointMux(g prometheus.Gatherer, ready http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(metrics.Path, metrics.Handler(g))
	mux.HandleFunc("GET "+pathHealthz, serveHealthz)
	mux.Handle("GET "+pathReadyz, ready)
	return mux
}

// endpoint is the worker's running HTTP listener.
type endpoint struct {
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// serveEndpoint listens on addr at once, so a taken port is reported to
// the caller, then serves h in the background until shutdown.
func serveEndpoint(addr string, h http.Handler, logger *slog.Logger) (*endpoint, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics and health endpoint: %w", err)
	}
	e := &endpoint{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan error, 1),
	}
	go func() { e.done <- e.srv.Serve(ln) }()
	return e, nil
}

// addr is where the endpoint listens (with the real port when the
// configured one was 0).
func (e *endpoint) addr() string { return e.ln.Addr().String() }

// shutdown stops the endpoint, letting requests in flight finish.
func (e *endpoint) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if err != nil {
		_ = e.srv.Close()
	}
	if serveErr := <-e.done; !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("metrics and health endpoint: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("metrics and health endpoint shutdown: %w", err)
	}
	return nil
}

// readyURL is the /readyz URL of a worker listening on metricsAddr, as a
// process on the same host (or in the same container) reaches it.
func readyURL(metricsAddr string) (string, error) {
	if metricsAddr == "" {
		return "", errors.New("METRICS_ADDR is empty, so the worker serves no health endpoint; set it to a host:port")
	}
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR %q: %w", metricsAddr, err)
	}
	if port == "0" {
		return "", fmt.Errorf("METRICS_ADDR %q has port 0, a free port the worker picks at start, which a healthcheck cannot know; give it a fixed port", metricsAddr)
	}
	// A worker listening on every interface is reached on loopback.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + pathReadyz, nil
}

// healthcheck asks the worker at metricsAddr whether it is ready and
// returns the exit status: 0 ready, 1 not ready or unreachable.
func healthcheck(metricsAddr string, timeout time.Duration, stdout, stderr io.Writer) int {
	url, err := readyURL(metricsAddr)
	if err != nil {
		fmt.Fprintln(stderr, "worker healthcheck:", err)
		return 1
	}
	// No proxy: the worker is on this host, whatever HTTP_PROXY says.
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "worker healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "worker healthcheck: not ready (%s): %s\n", resp.Status, text)
		return 1
	}
	fmt.Fprintf(stdout, "ready: %s\n", text)
	return 0
}
