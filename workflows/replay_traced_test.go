package workflows

import (
	"log/slog"
	"path/filepath"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/eventmatch/matchmaker/internal/telemetry"
)

// TestReplayWithTracing: a worker with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT
// set) replays the histories that workers without it recorded, so turning
// tracing on or off never breaks a run in flight.
func TestReplayWithTracing(t *testing.T) {
	telemetry.Install(sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter())))
	t.Cleanup(func() { telemetry.Install(nil) })
	clientInterceptors, err := telemetry.TemporalInterceptors()
	if err != nil {
		t.Fatal(err)
	}
	var interceptors []interceptor.WorkerInterceptor
	for _, i := range clientInterceptors {
		if wi, ok := i.(interceptor.WorkerInterceptor); ok {
			interceptors = append(interceptors, wi)
		}
	}
	if len(interceptors) == 0 {
		t.Fatal("tracing gives workers no interceptor")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{Interceptors: interceptors})
			if err != nil {
				t.Fatal(err)
			}
			replayer.RegisterWorkflow(EventMatchmaking)
			replayer.RegisterWorkflow(AIBackfill)
			logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(logger, file); err != nil {
				t.Fatalf("replay %s with tracing: %v", file, err)
			}
		})
	}
}
