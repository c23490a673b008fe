// Package telemetry traces the matchmaking engine with OpenTelemetry: the
// Temporal client's workflows and activities (through the SDK's own
// interceptor), the SQL each activity runs and its model calls, exported
// over OTLP.
//
// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Off, nothing is installed:
// the Temporal client has no tracing interceptor, the pool no query tracer
// and the model's HTTP client no wrapper, so tracing costs nothing and
// Temporal's histories carry no tracing headers.
//
// Spans carry IDs, counts, SQL text and URLs, never profile text, prompts
// or answers: the query tracer records no query arguments, and the HTTP
// instrumentation no bodies.
package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// The standard OpenTelemetry variables Start reads. The exporters read
// these and the other OTEL_EXPORTER_OTLP_* variables (headers, timeout,
// TLS) themselves; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the
// service and OTEL_TRACES_SAMPLER samples.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// flushTimeout bounds how long stopping waits for the spans not yet
// exported.
const flushTimeout = 5 * time.Second

// installed is the tracer provider of the clients built from now on; nil
// while tracing is off.
var installed atomic.Pointer[sdktrace.TracerProvider]

// Enabled reports whether the environment asks for tracing.
func Enabled() bool {
	return os.Getenv(EnvEndpoint) != "" || os.Getenv(EnvTracesEndpoint) != ""
}

// Start turns tracing on when Enabled, exporting over OTLP in batches for
// service (the service.name, unless OTEL_SERVICE_NAME says otherwise). It
// must run before the Temporal client, the pool and the model's client are
// built. It returns stop, which exports the spans still buffered and ends
// tracing; the binaries call it on their way out. When tracing is off, Start
// installs nothing and stop does nothing.
func Start(ctx context.Context, service string) (stop func() error, err error) {
	if !Enabled() {
		return func() error { return nil }, nil
	}
	exporter, err := newExporter(ctx)
	if err != nil {
		return nil, err
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES come after the
	// default name, so they override it.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	Install(tp)
	return func() error {
		installed.CompareAndSwap(tp, nil)
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: export the last spans: %w", err)
		}
		return nil
	}, nil
}

// newExporter is the OTLP exporter the protocol variables ask for:
// http/protobuf (OpenTelemetry's default) or grpc.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	variable, protocol := EnvTracesProtocol, os.Getenv(EnvTracesProtocol)
	if protocol == "" {
		variable, protocol = EnvProtocol, os.Getenv(EnvProtocol)
	}
	var (
		exporter sdktrace.SpanExporter
		err      error
	)
	switch strings.TrimSpace(protocol) {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s=%q: want http/protobuf or grpc", variable, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exporter, nil
}

// Install makes tp the tracer provider of the Temporal clients, pools and
// model clients built from now on (nil turns tracing off for them). Start
// calls it; tests call it with a provider over an in-memory exporter. It
// leaves OpenTelemetry's global provider alone.
func Install(tp *sdktrace.TracerProvider) {
	installed.Store(tp)
}

// TemporalInterceptors are the interceptors that trace a Temporal client's
// calls and, on a worker built from that client, its workflows and
// activities: none while tracing is off.
func TemporalInterceptors() ([]interceptor.ClientInterceptor, error) {
	tp := installed.Load()
	if tp == nil {
		return nil, nil
	}
	// The SDK's interceptor creates workflow spans only outside replay, so
	// workflow code stays deterministic.
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{Tracer: tp.Tracer("temporal-sdk-go")})
	if err != nil {
		return nil, fmt.Errorf("tracing interceptor for Temporal: %w", err)
	}
	return []interceptor.ClientInterceptor{i}, nil
}

// QueryTracer is the pgx tracer that records each query a traced
// operation runs as a child span (statement text, no arguments); nil while
// tracing is off. Queries run outside a span, such as the listener's,
// start no trace of their own.
func QueryTracer() pgx.QueryTracer {
	tp := installed.Load()
	if tp == nil {
		return nil
	}
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(tp))
}

// HTTPTransport wraps base so each request is a child span of the
// operation that made it; base itself while tracing is off. No trace
// context is sent along: the model's provider is not part of our traces.
func HTTPTransport(base http.RoundTripper) http.RoundTripper {
	tp := installed.Load()
	if tp == nil {
		return base
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
	)
}
