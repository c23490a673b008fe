package telemetry

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// clearEnv unsets every variable Start reads, for the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol} {
		t.Setenv(v, "")
	}
}

// TestOffByDefault: without an endpoint Start installs nothing, so the
// Temporal client, the pool and the model's client are built as without
// tracing.
func TestOffByDefault(t *testing.T) {
	clearEnv(t)
	// Set, but without an endpoint it means nothing.
	t.Setenv(EnvProtocol, "grpc")
	stop, err := Start(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if Enabled() || installed.Load() != nil {
		t.Fatal("tracing is on without an endpoint")
	}
	if is, err := TemporalInterceptors(); err != nil || is != nil {
		t.Errorf("TemporalInterceptors() = %v, %v; want none", is, err)
	}
	if tr := QueryTracer(); tr != nil {
		t.Errorf("QueryTracer() = %T, want nil", tr)
	}
	base := http.DefaultTransport
	if rt := HTTPTransport(base); rt != base {
		t.Errorf("HTTPTransport wrapped the transport: %T", rt)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestOnWithAnEndpoint: either endpoint variable turns tracing on until
// stop, with the exporter the protocol variables name.
func TestOnWithAnEndpoint(t *testing.T) {
	for _, tc := range []struct{ variable, value, protocolVar, protocol string }{
		{EnvEndpoint, "http://127.0.0.1:4318", EnvProtocol, ""},
		{EnvTracesEndpoint, "http://127.0.0.1:4318/v1/traces", EnvProtocol, "http/protobuf"},
		{EnvEndpoint, "http://127.0.0.1:4317", EnvTracesProtocol, "grpc"},
	} {
		t.Run(tc.variable+"_"+tc.protocol, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.variable, tc.value)
			t.Setenv(tc.protocolVar, tc.protocol)
			stop, err := Start(context.Background(), "test")
			if err != nil {
				t.Fatal(err)
			}
			if installed.Load() == nil {
				t.Fatal("Start installed no tracer provider")
			}
			if is, err := TemporalInterceptors(); err != nil || len(is) != 1 {
				t.Errorf("TemporalInterceptors() = %v, %v; want one", is, err)
			}
			if QueryTracer() == nil {
				t.Error("QueryTracer() = nil")
			}
			if rt := HTTPTransport(http.DefaultTransport); rt == http.DefaultTransport {
				t.Error("HTTPTransport did not wrap the transport")
			}
			// Nothing was traced, so there is nothing to send to the
			// collector, which does not exist.
			if err := stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
			if installed.Load() != nil {
				t.Error("stop left the tracer provider installed")
			}
		})
	}
}

func TestUnknownProtocolIsRefused(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvEndpoint, "http://127.0.0.1:4318")
	t.Setenv(EnvTracesProtocol, "http/json")
	_, err := Start(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), EnvTracesProtocol) {
		t.Fatalf("Start = %v, want an error naming %s", err, EnvTracesProtocol)
	}
	if installed.Load() != nil {
		t.Error("a refused configuration installed a tracer provider")
	}
}
