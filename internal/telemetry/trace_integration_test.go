package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/connect"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/internal/telemetry"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// TestBatchSpanTree runs a worker built as the worker binary builds it
// (connect.Database, connect.Temporal, insight.New) against a dev server,
// with tracing into memory, matches a small event with AI insights and
// checks the trace: the workflow's span, the batch steps' activity spans
// under it, their SQL under them, the model call under the insight step,
// and no member's name or bio anywhere.
func TestBatchSpanTree(t *testing.T) {
	testenv.RequireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	telemetry.Install(tp)
	t.Cleanup(func() { telemetry.Install(nil) })

	server, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  testenv.TemporalCLI(t),
		ClientOptions: &client.Options{Logger: tlog.NewStructuredLogger(logger)},
		LogLevel:      "error",
	})
	if err != nil {
		t.Fatalf("start Temporal dev server: %v", err)
	}
	defer server.Stop()
	fake := fakeopenai.New(t, fakeopenai.Echo)
	dbURL, _ := testenv.Database(t)

	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("TEMPORAL_ADDRESS", server.FrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", "default")
	t.Setenv("TEMPORAL_TASK_QUEUE", "tracing")
	t.Setenv("OPENAI_API_KEY", "sk-test")
	t.Setenv("OPENAI_BASE_URL", fake.URL())
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}

	pool, err := connect.Database(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c, err := connect.Temporal(ctx, cfg, logger, workflows.SearchAttributes)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	model, err := insight.New(insight.Config{APIKey: cfg.OpenAIAPIKey, Model: cfg.OpenAIModel, BaseURL: cfg.OpenAIBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	acts := &activities.Activities{
		Store:      st,
		Insights:   &activities.AIWriter{Client: model, Store: st, Model: cfg.OpenAIModel, Concurrency: 2, Logger: logger},
		TopN:       cfg.TopN,
		BatchSize:  cfg.BatchSize,
		MaxRuntime: cfg.MaxRuntime(),
		Lease:      time.Minute,
		Logger:     logger,
		StartBackfill: func(ctx context.Context, eventID string) error {
			return workflows.WakeBackfill(ctx, c, cfg.TaskQueue, eventID, workflows.NewBackfillSettings(cfg.MaxRuntime(), cfg.IdlePoll))
		},
	}
	w := worker.New(c, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.EventMatchmaking)
	w.RegisterWorkflow(workflows.AIBackfill)
	w.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	members := demodata.Generate(7, 5)
	// First names no SQL text or ID could hold by chance: the model's
	// answers address members by them.
	for i := range members {
		members[i].DisplayName = fmt.Sprintf("Tracecheck%c Member", 'A'+i)
	}
	ev, err := st.EnsureEvent(ctx, "traced", "Traced event")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.InsertMembers(ctx, ev.ID, members); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnableEvent(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	settings := workflows.NewSettings(cfg.BatchSize, cfg.MaxRuntime(), cfg.IdlePoll)
	if _, err := workflows.Wake(ctx, c, cfg.TaskQueue, workflows.EventRef{ID: ev.ID}, settings); err != nil {
		t.Fatal(err)
	}
	// Matched, and every match upgraded to AI text by the backfill.
	for {
		var depth, matches, ai int
		if err := pool.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM matchmaking_queue WHERE event_id = $1),
			       count(*), count(*) FILTER (WHERE insight_source = 'ai')
			FROM matches WHERE event_id = $1`, ev.ID).Scan(&depth, &matches, &ai); err != nil {
			t.Fatal(err)
		}
		if depth == 0 && matches > 0 && ai == matches {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the event was not matched: %d members queued, %d of %d matches with AI text", depth, ai, matches)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Disabling ends the workflow, and with it its span.
	handle, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.WorkflowID(ev.ID), UpdateName: workflows.UpdateDisable,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, nil)
	}
	if err != nil {
		t.Fatalf("disable: %v", err)
	}
	if err := c.GetWorkflow(ctx, workflows.WorkflowID(ev.ID), "").Get(ctx, nil); err != nil {
		t.Fatalf("the workflow did not finish: %v", err)
	}

	tree := newSpanTree(exporter.GetSpans())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("spans:\n%s", tree)
		}
	})
	runs := tree.named("RunWorkflow:EventMatchmaking")
	if len(runs) != 1 {
		t.Fatalf("%d RunWorkflow:EventMatchmaking spans, want 1", len(runs))
	}
	run := runs[0]
	if starts := tree.named("SignalWithStartWorkflow:EventMatchmaking"); len(starts) != 1 || !tree.isAncestor(starts[0], run) {
		t.Errorf("the workflow's span is not under the signal-with-start that started it")
	}
	for _, step := range []struct {
		activity string
		sql      bool
		model    bool
	}{
		{"ClaimBatch", true, false},
		{"ScoreBatch", true, false},
		{"WriteInsights", true, false},
		{"CommitBatch", true, false},
	} {
		spans := tree.named("RunActivity:" + step.activity)
		if len(spans) == 0 {
			t.Errorf("no RunActivity:%s span", step.activity)
			continue
		}
		for _, s := range spans {
			if !tree.isAncestor(run, s) {
				t.Errorf("RunActivity:%s is not under the workflow's span", step.activity)
			}
		}
		if step.sql && !tree.anyUnder(spans, isSQL) {
			t.Errorf("no SQL span under RunActivity:%s", step.activity)
		}
		if step.model && !tree.anyUnder(spans, isModelCall) {
			t.Errorf("no model call span under RunActivity:%s", step.activity)
		}
	}

	// The model is called by the event's AI backfill, which a commit
	// started: its start is a child of CommitBatch, and its rounds' SQL
	// and model calls are children of the rounds. (Its run span is not
	// checked: the backfill outlives the test.)
	if !tree.anyUnder(tree.named("RunActivity:CommitBatch"), func(s tracetest.SpanStub) bool { return s.Name == "SignalWithStartWorkflow:AIBackfill" }) {
		t.Errorf("no start of the AI backfill under RunActivity:CommitBatch")
	}
	rounds := tree.named("RunActivity:BackfillRound")
	switch {
	case len(rounds) == 0:
		t.Errorf("no RunActivity:BackfillRound span")
	case !tree.anyUnder(rounds, isModelCall):
		t.Errorf("no model call span under RunActivity:BackfillRound")
	case !tree.anyUnder(rounds, isSQL):
		t.Errorf("no SQL span under RunActivity:BackfillRound")
	}

	// Neither names, bios nor the model's answers reach a span (query
	// parameters and bodies are not recorded).
	private := []string{}
	for _, m := range members {
		private = append(private, strings.Fields(m.DisplayName)[0], m.Bio[:min(len(m.Bio), 40)])
	}
	rows, err := pool.Query(ctx, `SELECT insight FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	answers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) == 0 {
		t.Fatal("no AI insight was stored")
	}
	private = append(private, answers...)
	for _, s := range tree.spans {
		texts := []string{s.Name, s.Status.Description}
		texts = append(texts, attributeTexts(s.Attributes)...)
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			texts = append(texts, attributeTexts(e.Attributes)...)
		}
		for _, p := range private {
			for _, text := range texts {
				if strings.Contains(text, p) {
					t.Errorf("span %s carries a member's profile or insight %q: %q", s.Name, p, text)
				}
			}
		}
	}
}

func isSQL(s tracetest.SpanStub) bool {
	return hasAttribute(s.Attributes, "db.system.name", "postgresql") && attributeValue(s.Attributes, "db.query.text") != ""
}

func isModelCall(s tracetest.SpanStub) bool {
	return strings.HasSuffix(attributeValue(s.Attributes, "url.full"), "/chat/completions")
}

func attributeValue(attrs []attribute.KeyValue, key string) string {
	for _, kv := range attrs {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func hasAttribute(attrs []attribute.KeyValue, key, value string) bool {
	return attributeValue(attrs, key) == value
}

func attributeTexts(attrs []attribute.KeyValue) []string {
	texts := make([]string, 0, len(attrs))
	for _, kv := range attrs {
		texts = append(texts, kv.Value.String())
	}
	return texts
}

// spanTree indexes ended spans by their IDs.
type spanTree struct {
	spans []tracetest.SpanStub
	byID  map[string]int
}

func newSpanTree(spans tracetest.SpanStubs) *spanTree {
	t := &spanTree{spans: spans, byID: map[string]int{}}
	for i, s := range spans {
		t.byID[s.SpanContext.SpanID().String()] = i
	}
	return t
}

func (t *spanTree) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range t.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// isAncestor reports whether a is s's parent, or its parent's, and so on.
func (t *spanTree) isAncestor(a, s tracetest.SpanStub) bool {
	for {
		parent := s.Parent.SpanID()
		if !s.Parent.IsValid() {
			return false
		}
		if parent == a.SpanContext.SpanID() {
			return true
		}
		i, ok := t.byID[parent.String()]
		if !ok {
			return false
		}
		s = t.spans[i]
	}
}

// anyUnder reports whether a span below one of roots satisfies match.
func (t *spanTree) anyUnder(roots []tracetest.SpanStub, match func(tracetest.SpanStub) bool) bool {
	for _, s := range t.spans {
		if !match(s) {
			continue
		}
		for _, r := range roots {
			if t.isAncestor(r, s) {
				return true
			}
		}
	}
	return false
}

func (t *spanTree) String() string {
	var b strings.Builder
	for _, s := range t.spans {
		fmt.Fprintf(&b, "%s parent=%s %s\n", s.SpanContext.SpanID(), s.Parent.SpanID(), s.Name)
	}
	return b.String()
}
