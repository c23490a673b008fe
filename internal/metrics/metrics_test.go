package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

// scrape renders g as the endpoint would.
func scrape(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	if _, err := g.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	srv := &http.Server{Handler: Handler(g)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return get(t, "http://"+ln.Addr().String())
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: Content-Type %q, want the text exposition format", url, ct)
	}
	return string(body)
}

func requireLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("exposition lacks line %q", l)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", text)
	}
}

func echo(_ context.Context, s string) (string, error) { return s, nil }

func TestAppRecords(t *testing.T) {
	reg := prometheus.NewRegistry()
	app, err := NewApp(reg)
	if err != nil {
		t.Fatal(err)
	}
	app.BatchCommitted("ev1", 250)
	app.BatchCommitted("ev1", 50)
	app.BatchCommitted("ev2", 0)
	app.SetQueueDepth("ev1", 120)
	app.SetQueueDepth("ev1", 0)
	app.ObserveStep("claim", 20*time.Millisecond)
	app.ObserveStep("commit", 2*time.Second)
	app.AIUsage("ev1", 7, 3, 1000, 200)
	app.AIUsage("ev1", 1, 0, 100, 20)
	app.InsightFallbacks("timeout", 2)
	app.InsightFallbacks("no_ai", 5)
	app.InsightFallbacks("timeout", 1)

	for _, tc := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{app.batches.WithLabelValues("ev1"), 2},
		{app.batches.WithLabelValues("ev2"), 1},
		{app.usersMatched.WithLabelValues("ev1"), 300},
		{app.queueDepth.WithLabelValues("ev1"), 0},
		{app.aiCalls.WithLabelValues("ev1"), 8},
		{app.aiCacheHits.WithLabelValues("ev1"), 3},
		{app.aiTokens.WithLabelValues(TokensPrompt), 1100},
		{app.aiTokens.WithLabelValues(TokensCompletion), 220},
		{app.fallbacks.WithLabelValues("timeout"), 3},
		{app.fallbacks.WithLabelValues("no_ai"), 5},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.c.(prometheus.Metric).Desc(), got, tc.want)
		}
	}

	requireLines(t, scrape(t, reg),
		`matchmaking_batches_total{event_id="ev1"} 2`,
		`matchmaking_users_matched_total{event_id="ev1"} 300`,
		`matchmaking_queue_depth{event_id="ev1"} 0`,
		`matchmaking_batch_duration_seconds_count{step="claim"} 1`,
		`matchmaking_batch_duration_seconds_bucket{step="commit",le="1"} 0`,
		`matchmaking_batch_duration_seconds_bucket{step="commit",le="2.5"} 1`,
		`matchmaking_ai_calls_total{event_id="ev1"} 8`,
		`matchmaking_ai_cache_hits_total{event_id="ev1"} 3`,
		`matchmaking_insight_fallbacks_total{reason="timeout"} 3`,
		`matchmaking_ai_tokens_total{kind="prompt"} 1100`,
		`matchmaking_ai_tokens_total{kind="completion"} 220`,
	)

	if _, err := NewApp(reg); err == nil {
		t.Fatal("registering the app metrics twice on one registry succeeded")
	}
}

func TestNilAppIsNoOp(t *testing.T) {
	var app *App
	app.BatchCommitted("ev", 1)
	app.SetQueueDepth("ev", 1)
	app.ObserveStep("claim", time.Second)
	app.AIUsage("ev", 1, 1, 1, 1)
	app.InsightFallbacks("timeout", 1)

	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptorT{app.ActivityInterceptor(map[string]string{"ClaimBatch": "claim"})}})
	env.RegisterActivityWithOptions(echo, activityOptions("ClaimBatch"))
	if _, err := env.ExecuteActivity("ClaimBatch", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestActivityInterceptorTimesSteps(t *testing.T) {
	reg := prometheus.NewRegistry()
	app, err := NewApp(reg)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]string{"ClaimBatch": "claim", "CommitBatch": "commit"}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptorT{app.ActivityInterceptor(steps)}})
	env.RegisterActivityWithOptions(echo, activityOptions("ClaimBatch"))
	env.RegisterActivityWithOptions(func(context.Context) error { return errors.New("boom") }, activityOptions("CommitBatch"))
	env.RegisterActivityWithOptions(echo, activityOptions("Unrelated"))

	for range 2 {
		if _, err := env.ExecuteActivity("ClaimBatch", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.ExecuteActivity("CommitBatch"); err == nil {
		t.Fatal("CommitBatch did not fail")
	}
	if _, err := env.ExecuteActivity("Unrelated", "x"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(app.stepDuration); n != 2 {
		t.Errorf("%d step series, want 2 (claim, commit)", n)
	}
	requireLines(t, scrape(t, reg),
		`matchmaking_batch_duration_seconds_count{step="claim"} 2`,
		`matchmaking_batch_duration_seconds_count{step="commit"} 1`,
	)
}

func TestServe(t *testing.T) {
	reg := NewRegistry()
	app, err := NewApp(reg)
	if err != nil {
		t.Fatal(err)
	}
	sdk, err := NewSDKHandler(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	app.BatchCommitted("ev1", 10)
	sdk.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := Serve(ctx, "127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/metrics") {
		t.Fatalf("URL %q", srv.URL())
	}
	text := get(t, srv.URL())
	requireLines(t, text,
		`matchmaking_batches_total{event_id="ev1"} 1`,
		`temporal_request_total{namespace="default"} 1`,
	)
	if !strings.Contains(text, "\ngo_goroutines ") || !strings.Contains(text, "\nprocess_start_time_seconds ") {
		t.Fatalf("runtime or process metrics missing:\n%s", text)
	}

	// The port is taken now: a second endpoint there is refused at once.
	if _, err := Serve(ctx, srv.Addr(), reg, nil); err == nil {
		t.Fatal("second Serve on a taken port succeeded")
	}

	cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the endpoint did not shut down")
	}
	if _, err := http.Get(srv.URL()); err == nil {
		t.Fatal("the endpoint still answers after shutdown")
	}
}

// TestRetainEventsDropsDisabledEvents: an event no longer enabled stops
// being exported; the others keep every series.
func TestRetainEventsDropsDisabledEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	app, err := NewApp(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"kept", "gone"} {
		app.BatchCommitted(id, 3)
		app.SetQueueDepth(id, 2)
		app.SetQuarantined(id, 1)
		app.ListsDeferred(id, 1)
		app.AIUsage(id, 4, 1, 10, 5)
		app.SetAISpend(id, 0.25)
	}
	if n := app.RetainEvents(map[string]bool{"kept": true}); n != 1 {
		t.Errorf("RetainEvents dropped %d events, want 1", n)
	}
	text := scrape(t, reg)
	if strings.Contains(text, `event_id="gone"`) {
		t.Errorf("the disabled event is still exported:\n%s", text)
	}
	requireLines(t, text,
		`matchmaking_batches_total{event_id="kept"} 1`,
		`matchmaking_queue_depth{event_id="kept"} 2`,
		`matchmaking_quarantined_members{event_id="kept"} 1`,
		`matchmaking_ai_spend_usd{event_id="kept"} 0.25`,
	)
	// An event enabled again gets its series back.
	app.SetQueueDepth("gone", 5)
	requireLines(t, scrape(t, reg), `matchmaking_queue_depth{event_id="gone"} 5`)
	var nilApp *App
	if nilApp.RetainEvents(nil) != 0 {
		t.Error("a nil App retained something")
	}
}
