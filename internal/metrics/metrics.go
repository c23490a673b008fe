// Package metrics exposes the worker's Prometheus metrics: the Temporal Go
// SDK's own (through a client.MetricsHandler), the matchmaking engine's
// (through App) and Go runtime and process metrics, all on one registry of
// their own, served at /metrics.
//
// It imports nothing of the engine's packages, so activities and the worker
// can both import it.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the endpoint serves the text exposition.
const Path = "/metrics"

// shutdownGrace bounds how long a scrape in flight may delay shutdown.
const shutdownGrace = 5 * time.Second

// RegisterPairsScored adds matchmaking_pairs_scored_total to reg, read
// from count at each scrape: matching.PairsScored, passed in so that this
// package imports none of the engine's.
func RegisterPairsScored(reg prometheus.Registerer, count func() int64) error {
	return reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "matchmaking_pairs_scored_total",
		Help: "Pair scores this worker computed to choose lists (a full match of N members scores about N(N-1)/2).",
	}, func() float64 { return float64(count()) }))
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors; App and the Temporal handler add theirs to it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves the registry's metrics in Prometheus' text exposition
// format. A metric that fails to gather is left out rather than failing the
// whole scrape.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Server is a running metrics endpoint.
type Server struct {
	ln   net.Listener
	done chan struct{}
	err  error
}

// Serve listens on addr (host:port; port 0 picks a free port) at once, so
// a taken port is reported to the caller, then serves Path in the
// background until ctx is done, when it shuts down gracefully.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(g))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s := &Server{ln: ln, done: make(chan struct{})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				s.err = fmt.Errorf("metrics endpoint: %w", err)
				logger.Error("metrics endpoint stopped", "error", err)
			}
		case <-ctx.Done():
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			defer cancel()
			if err := srv.Shutdown(shutdownCtx); err != nil {
				_ = srv.Close()
				s.err = fmt.Errorf("metrics endpoint shutdown: %w", err)
			}
			<-serveErr
		}
	}()
	return s, nil
}

// Addr is the address the endpoint listens on (with the real port when
// the configured one was 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the endpoint's full address.
func (s *Server) URL() string { return "http://" + s.Addr() + Path }

// Wait blocks until the endpoint has stopped and reports why, if not by
// its context ending.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}
