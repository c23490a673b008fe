package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

func newSDKHandler(t *testing.T, reg prometheus.Registerer) client.MetricsHandler {
	t.Helper()
	h, err := NewSDKHandler(reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSDKHandlerSeries: the SDK's counters, gauges and timers come out
// under the names Temporal's SDK dashboards query, with the SDK's tags as
// their only labels.
func TestSDKHandlerSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	root := newSDKHandler(t, reg)
	h := root.WithTags(map[string]string{"namespace": "default", "task_queue": "mm"})

	h.Counter("temporal_request").Inc(2)
	h.Counter("temporal_request").Inc(1)
	// The same name with another tag set is a second series of the same
	// family.
	h.WithTags(map[string]string{"operation": "PollActivityTaskQueue"}).Counter("temporal_request").Inc(1)
	// WithTags overrides an existing key and leaves its parent alone.
	h.WithTags(map[string]string{"task_queue": "other"}).Counter("temporal_request").Inc(4)
	h.Gauge("temporal_num_pollers").Update(3)
	h.Gauge("temporal_num_pollers").Update(2)
	h.Timer("temporal_request_latency").Record(200 * time.Millisecond)
	h.Timer("temporal_request_latency").Record(3 * time.Second)
	root.Counter("temporal_untagged").Inc(1)

	text := scrape(t, reg)
	requireLines(t, text,
		"# TYPE temporal_request_total counter",
		`temporal_request_total{namespace="default",task_queue="mm"} 3`,
		`temporal_request_total{namespace="default",operation="PollActivityTaskQueue",task_queue="mm"} 1`,
		`temporal_request_total{namespace="default",task_queue="other"} 4`,
		"# TYPE temporal_num_pollers gauge",
		`temporal_num_pollers{namespace="default",task_queue="mm"} 2`,
		"# TYPE temporal_request_latency_seconds histogram",
		// TimerBuckets, not OpenTelemetry's millisecond defaults.
		`temporal_request_latency_seconds_bucket{namespace="default",task_queue="mm",le="0.1"} 0`,
		`temporal_request_latency_seconds_bucket{namespace="default",task_queue="mm",le="0.25"} 1`,
		`temporal_request_latency_seconds_bucket{namespace="default",task_queue="mm",le="5"} 2`,
		`temporal_request_latency_seconds_bucket{namespace="default",task_queue="mm",le="600"} 2`,
		`temporal_request_latency_seconds_bucket{namespace="default",task_queue="mm",le="+Inf"} 2`,
		`temporal_request_latency_seconds_sum{namespace="default",task_queue="mm"} 3.2`,
		`temporal_request_latency_seconds_count{namespace="default",task_queue="mm"} 2`,
		`temporal_untagged_total 1`,
	)
	for _, noise := range []string{"otel_scope_", "target_info"} {
		if strings.Contains(text, noise) {
			t.Errorf("exposition has %s:\n%s", noise, text)
		}
	}
}

// TestSDKHandlerBesideAppMetrics: the SDK's metrics and the engine's share
// one registry, and the engine's keep their names and labels.
func TestSDKHandlerBesideAppMetrics(t *testing.T) {
	reg := NewRegistry()
	app, err := NewApp(reg)
	if err != nil {
		t.Fatal(err)
	}
	sdk := newSDKHandler(t, reg)
	app.BatchCommitted("ev1", 4)
	app.ObserveStep("claim", 20*time.Millisecond)
	sdk.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_workflow_completed").Inc(1)
	requireLines(t, scrape(t, reg),
		`matchmaking_batches_total{event_id="ev1"} 1`,
		`matchmaking_users_matched_total{event_id="ev1"} 4`,
		`matchmaking_batch_duration_seconds_count{step="claim"} 1`,
		`temporal_workflow_completed_total{namespace="default"} 1`,
	)
}

func TestSDKHandlerConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newSDKHandler(t, reg).WithTags(map[string]string{"namespace": "default"})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			hh := h.WithTags(map[string]string{"worker": fmt.Sprint(i % 2)})
			for range 100 {
				hh.Counter("temporal_concurrent").Inc(1)
				hh.Timer("temporal_concurrent_latency").Record(time.Millisecond)
			}
		})
	}
	wg.Wait()
	requireLines(t, scrape(t, reg),
		`temporal_concurrent_total{namespace="default",worker="0"} 400`,
		`temporal_concurrent_total{namespace="default",worker="1"} 400`,
		`temporal_concurrent_latency_seconds_count{namespace="default",worker="1"} 400`,
	)
}

// TestSDKHandlerAsClientOption: a client given the handler records its
// gRPC requests, here failing ones to a port where nothing listens.
func TestSDKHandlerAsClientOption(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	reg := prometheus.NewRegistry()
	c, err := client.NewLazyClient(client.Options{
		HostPort:       addr,
		Namespace:      "metrics-test",
		MetricsHandler: newSDKHandler(t, reg),
		Logger:         sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.DescribeWorkflow(ctx, "wf", ""); err == nil {
		t.Fatal("a request to a closed port succeeded")
	}
	text := scrape(t, reg)
	for _, want := range []string{
		// The names Temporal's SDK dashboards query.
		"# TYPE temporal_request_total counter",
		"# TYPE temporal_request_failure_total counter",
		"# TYPE temporal_request_latency_seconds histogram",
		// The client's first call asks for the server's capabilities.
		`operation="GetSystemInfo"`,
		`status_code="UNAVAILABLE"`,
		`client_name="temporal_go"`,
		`worker_type="none"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", text)
	}
}
