package metrics

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// TimerBuckets are the histogram buckets, in seconds, of the SDK's timers:
// from a fast RPC to a long poll and beyond. OpenTelemetry's default
// buckets (0 to 10,000) are meant for milliseconds.
var TimerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// NewSDKHandler returns the client.MetricsHandler (for
// client.Options.MetricsHandler) that records the Temporal Go SDK's
// metrics in reg: the SDK's own OpenTelemetry handler
// (go.temporal.io/sdk/contrib/opentelemetry) over a MeterProvider whose
// reader is OpenTelemetry's Prometheus exporter.
//
// The names come out as Temporal's SDK dashboards query them: counters
// are monotonic and get _total, and timers, which the handler records in
// unit "s", get _seconds (temporal_request_total,
// temporal_request_latency_seconds_bucket). The exporter adds no
// otel_scope_* labels and no target_info, so each series has the SDK's
// tags alone as labels.
//
// A metric the meter refuses is logged and not recorded; the contrib
// handler's default would panic.
func NewSDKHandler(reg prometheus.Registerer, logger *slog.Logger) (client.MetricsHandler, error) {
	if logger == nil {
		logger = slog.Default()
	}
	exporter, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("exporter of the Temporal SDK's metrics to Prometheus: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exporter),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: TimerBuckets}},
		)),
	)
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		OnError: func(err error) {
			logger.Warn("a Temporal SDK metric is not recorded", "error", err)
		},
	}), nil
}
