package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	noTemporalFile(t)
	c, err := Load()
	if err != nil {
		t.Fatalf("Load with defaults: %v", err)
	}
	if c.TaskQueue != "matchmaking" || c.TopN != 3 || c.TemporalAddress != "localhost:7233" || c.TemporalNamespace != "default" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.MaxRuntime() != 45*time.Second {
		t.Fatalf("MaxRuntime = %s", c.MaxRuntime())
	}
	if c.FanOutMinPairs != 10_000_000_000 {
		t.Fatalf("FanOutMinPairs = %d", c.FanOutMinPairs)
	}
	if c.BatchSize != 50000 {
		t.Fatalf("BatchSize = %d", c.BatchSize)
	}
}

func TestBatchSizeBounds(t *testing.T) {
	for value, ok := range map[string]bool{"1": true, "1000000": true, "0": false, "1000001": false} {
		t.Run(value, func(t *testing.T) {
			t.Setenv("BATCH_SIZE", value)
			_, err := Load()
			if ok && err != nil {
				t.Fatalf("BATCH_SIZE=%s: %v", value, err)
			}
			if !ok && (err == nil || !strings.Contains(err.Error(), "BATCH_SIZE")) {
				t.Fatalf("BATCH_SIZE=%s: error %v, want one naming BATCH_SIZE", value, err)
			}
		})
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	cases := map[string]string{
		"BATCH_SIZE":        "lots",
		"MAX_RUNTIME_MS":    "5",
		"TOP_N":             "0",
		"MAX_APPEARANCES":   "2", // below the default TOP_N of 3
		"FAN_OUT_MIN_PAIRS": "-1",
		"IDLE_POLL":         "soon",
		"METRICS_ADDR":      "9464",
		"LOG_LEVEL":         "verbose",
		"LOG_FORMAT":        "xml",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			_, err := Load()
			if err == nil {
				t.Fatalf("%s=%q accepted", name, value)
			}
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name %s", err, name)
			}
		})
	}
}

func TestObservabilityDefaults(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatalf("Load with defaults: %v", err)
	}
	if c.MetricsAddr != "127.0.0.1:9464" || c.LogLevel != "info" || c.LogFormat != "text" {
		t.Fatalf("unexpected defaults: METRICS_ADDR=%q LOG_LEVEL=%q LOG_FORMAT=%q", c.MetricsAddr, c.LogLevel, c.LogFormat)
	}
}

func TestMetricsAddrEmptyDisables(t *testing.T) {
	t.Setenv("METRICS_ADDR", "")
	c, err := Load()
	if err != nil {
		t.Fatalf("METRICS_ADDR=\"\": %v", err)
	}
	if c.MetricsAddr != "" {
		t.Fatalf("METRICS_ADDR=\"\" gave %q, want empty (disabled)", c.MetricsAddr)
	}
}

func TestObservabilityGoodValues(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"METRICS_ADDR", ":9464"},
		{"METRICS_ADDR", "0.0.0.0:9100"},
		{"METRICS_ADDR", "[::1]:9464"},
		{"METRICS_ADDR", "127.0.0.1:0"},
		{"LOG_LEVEL", "debug"},
		{"LOG_LEVEL", "WARN"},
		{"LOG_LEVEL", "error"},
		{"LOG_FORMAT", "json"},
		{"LOG_FORMAT", "Text"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			if _, err := Load(); err != nil {
				t.Fatalf("%s=%q rejected: %v", tc.name, tc.value, err)
			}
		})
	}
}

func TestObservabilityBadValues(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"METRICS_ADDR", "localhost"},
		{"METRICS_ADDR", "localhost:metrics"},
		{"METRICS_ADDR", "127.0.0.1:70000"},
		{"METRICS_ADDR", "127.0.0.1:-1"},
		{"LOG_LEVEL", "trace"},
		{"LOG_LEVEL", "warning "},
		{"LOG_FORMAT", "logfmt"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			_, err := Load()
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.name, tc.value)
			}
			if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), strings.TrimSpace(tc.value)) {
				t.Fatalf("error %q does not name %s and the bad value", err, tc.name)
			}
		})
	}
}

func TestBlankStringsRejected(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OPENAI_MODEL", " "},
		{"OPENAI_MODEL", "\t\n"},
		{"DATABASE_URL", " "},
		{"DATABASE_URL", "\t"},
		{"TEMPORAL_ADDRESS", "  "},
		{"TEMPORAL_NAMESPACE", " "},
		{"TEMPORAL_TASK_QUEUE", "\n"},
		{"OPENAI_API_KEY", " "},
		{"OPENAI_API_KEY", "\t \n"},
	} {
		t.Run(tc.name+"="+strconv.Quote(tc.value), func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			_, err := Load()
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.name, tc.value)
			}
			if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), "blank") {
				t.Fatalf("error %q does not say %s is blank", err, tc.name)
			}
		})
	}
}

func TestAPIKeyUnsetOrSet(t *testing.T) {
	for _, tc := range []struct {
		value   string
		enabled bool
	}{
		{"", false}, // env treats "" as unset: fallback insights
		{"sk-test", true},
	} {
		t.Run(strconv.Quote(tc.value), func(t *testing.T) {
			t.Setenv("OPENAI_API_KEY", tc.value)
			c, err := Load()
			if err != nil {
				t.Fatalf("OPENAI_API_KEY=%q rejected: %v", tc.value, err)
			}
			if c.AIEnabled() != tc.enabled {
				t.Fatalf("OPENAI_API_KEY=%q: AIEnabled() = %v, want %v", tc.value, c.AIEnabled(), tc.enabled)
			}
		})
	}
}

func TestListenURL(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenURL() != c.DatabaseURL || c.ListenVar() != "DATABASE_URL" {
		t.Fatalf("unset DATABASE_LISTEN_URL: %q from %s, want DATABASE_URL's %q", c.ListenURL(), c.ListenVar(), c.DatabaseURL)
	}
	t.Setenv("DATABASE_URL", "postgres://u@pooler:6543/db")
	t.Setenv("DATABASE_LISTEN_URL", "postgres://u@db:5432/db")
	if c, err = Load(); err != nil {
		t.Fatal(err)
	}
	if c.ListenURL() != "postgres://u@db:5432/db" || c.ListenVar() != "DATABASE_LISTEN_URL" || c.DatabaseURL != "postgres://u@pooler:6543/db" {
		t.Fatalf("DATABASE_LISTEN_URL set: listen %q from %s, queries %q", c.ListenURL(), c.ListenVar(), c.DatabaseURL)
	}
	t.Setenv("DATABASE_LISTEN_URL", " \t")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "DATABASE_LISTEN_URL") {
		t.Fatalf("blank DATABASE_LISTEN_URL: %v", err)
	}
}

// noTemporalFile hides the developer's own Temporal client config file
// (os.UserConfigDir()/temporalio/temporal.toml) from the test.
func noTemporalFile(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	for _, v := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE"} {
		t.Setenv(v, "") // env and envconfig both take "" as unset here
	}
}

func writeTemporalFile(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// The address and namespace follow Temporal's tools: the variable, else
// the profile, else localhost:7233 and default. A profile's address is
// never replaced by the default.
func TestTemporalAddressAndNamespacePrecedence(t *testing.T) {
	file := writeTemporalFile(t, `
[profile.default]
address = "profile-default:7233"
namespace = "ns-default"

[profile.cloud]
address = "ns1.a2b3c.tmprl.cloud:7233"
namespace = "ns1.a2b3c"
api_key = "secret-key-never-in-config"

[profile.addressonly]
address = "addressonly:7233"
`)
	for _, tc := range []struct {
		name        string
		env         map[string]string
		address, ns string
	}{
		{"no file", map[string]string{}, "localhost:7233", "default"},
		{"default profile", map[string]string{"TEMPORAL_CONFIG_FILE": file}, "profile-default:7233", "ns-default"},
		{"named profile", map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud"}, "ns1.a2b3c.tmprl.cloud:7233", "ns1.a2b3c"},
		{"profile without namespace", map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "addressonly"}, "addressonly:7233", "default"},
		{"variables beat the profile", map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud",
			"TEMPORAL_ADDRESS": "other:7233", "TEMPORAL_NAMESPACE": "other"}, "other:7233", "other"},
		{"empty variables are unset", map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_ADDRESS": "", "TEMPORAL_NAMESPACE": ""},
			"profile-default:7233", "ns-default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noTemporalFile(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if c.TemporalAddress != tc.address || c.TemporalNamespace != tc.ns {
				t.Errorf("address %q namespace %q, want %q and %q", c.TemporalAddress, c.TemporalNamespace, tc.address, tc.ns)
			}
		})
	}
}

func TestTemporalProfileErrors(t *testing.T) {
	file := writeTemporalFile(t, "[profile.default]\naddress = \"x:1\"\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"file missing", map[string]string{"TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml"},
			"configuration: TEMPORAL_CONFIG_FILE: stat /nonexistent/temporal.toml: no such file or directory"},
		{"profile missing", map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "prod"},
			`configuration: TEMPORAL_PROFILE "prod": TEMPORAL_CONFIG_FILE ` + file + " has no such profile (it has: default)"},
		{"profile with no file", map[string]string{"TEMPORAL_PROFILE": "prod"}, `TEMPORAL_PROFILE "prod"`},
		{"blank address", map[string]string{"TEMPORAL_ADDRESS": " "}, "TEMPORAL_ADDRESS must not be empty or blank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noTemporalFile(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestLoadWithOverrides: a command line's settings win over the
// environment, and --database-url replaces the LISTEN URL too; what it
// leaves empty comes from the environment.
func TestLoadWithOverrides(t *testing.T) {
	noTemporalFile(t)
	t.Setenv("DATABASE_URL", "postgres://env@db/env")
	t.Setenv("DATABASE_LISTEN_URL", "postgres://env@db/listen")
	t.Setenv("TEMPORAL_ADDRESS", "env:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "env-ns")
	t.Setenv("TEMPORAL_TASK_QUEUE", "env-queue")

	c, err := LoadWith(Overrides{DatabaseURL: "postgres://flag@db/flag", TemporalAddress: "flag:7233"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://flag@db/flag" || c.ListenURL() != "postgres://flag@db/flag" {
		t.Errorf("database %q, listen %q; want the flag's for both", c.DatabaseURL, c.ListenURL())
	}
	if c.TemporalAddress != "flag:7233" || c.TemporalNamespace != "env-ns" || c.TaskQueue != "env-queue" {
		t.Errorf("address %q, namespace %q, task queue %q; want the flag's address and the environment's rest",
			c.TemporalAddress, c.TemporalNamespace, c.TaskQueue)
	}

	c, err = LoadWith(Overrides{TemporalNamespace: "flag-ns", TaskQueue: "flag-queue"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenURL() != "postgres://env@db/listen" || c.TemporalAddress != "env:7233" ||
		c.TemporalNamespace != "flag-ns" || c.TaskQueue != "flag-queue" {
		t.Errorf("%+v: want the environment's database and address, the flags' namespace and task queue", c)
	}
}

func TestSpendLimitNeedsAPricedModel(t *testing.T) {
	noTemporalFile(t)
	t.Setenv("OPENAI_MODEL", "my-llama")
	t.Setenv("AI_MAX_SPEND_USD_PER_EVENT", "5")
	_, err := Load()
	if err == nil {
		t.Fatal("a spend limit with an unpriced model was accepted")
	}
	for _, want := range []string{"AI_MAX_SPEND_USD_PER_EVENT", `"my-llama"`, "AI_PRICES"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}

	t.Setenv("AI_PRICES", "my-llama=0.5/1.5")
	c, err := Load()
	if err != nil {
		t.Fatalf("with the model priced: %v", err)
	}
	if p, ok := c.ModelPrice(); !ok || p.InputPerMillion != 0.5 || p.OutputPerMillion != 1.5 {
		t.Errorf("price %+v %v", p, ok)
	}

	// Without a spend limit, an unpriced model is fine.
	t.Setenv("AI_PRICES", "")
	t.Setenv("AI_MAX_SPEND_USD_PER_EVENT", "0")
	if _, err := Load(); err != nil {
		t.Errorf("no spend limit: %v", err)
	}
}

func TestAIBatchAndPriceValues(t *testing.T) {
	noTemporalFile(t)
	for _, tc := range []struct{ name, value string }{
		{"AI_PRICES", "gpt-4o-mini=cheap/0.6"},
		{"AI_MAX_SPEND_USD_PER_EVENT", "-1"},
		{"AI_BATCH_MIN_BACKLOG", "0"},
		{"AI_BATCH_POLL", "10ms"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			if _, err := Load(); err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("%s=%q: error %v, want one naming the variable", tc.name, tc.value, err)
			}
		})
	}
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.AIBatchAPI || c.AIBatchMinBacklog != 2000 || c.AIBatchPoll != time.Minute || c.AIMaxSpendUSDPerEvent != 0 {
		t.Errorf("batch and spend defaults: %+v", c)
	}
}

func TestMaxAppearances(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{}, 6},
		{map[string]string{"TOP_N": "5"}, 10},
		{map[string]string{"MAX_APPEARANCES": ""}, 6},
		{map[string]string{"MAX_APPEARANCES": "0"}, 0},
		{map[string]string{"MAX_APPEARANCES": "3"}, 3},
		{map[string]string{"TOP_N": "4", "MAX_APPEARANCES": "9"}, 9},
	} {
		t.Run(fmt.Sprint(tc.env), func(t *testing.T) {
			for name, value := range tc.env {
				t.Setenv(name, value)
			}
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxAppearances != tc.want {
				t.Fatalf("MaxAppearances = %d, want %d", c.MaxAppearances, tc.want)
			}
		})
	}
	for _, bad := range []string{"-1", "2", "many"} {
		t.Setenv("MAX_APPEARANCES", bad)
		if _, err := Load(); err == nil || !strings.Contains(err.Error(), "MAX_APPEARANCES") {
			t.Fatalf("MAX_APPEARANCES=%s: got %v", bad, err)
		}
	}
}
