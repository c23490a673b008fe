package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatalf("Load with defaults: %v", err)
	}
	if c.TaskQueue != "matchmaking" || c.TopN != 3 || c.TemporalAddress != "localhost:7233" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.MaxRuntime() != 45*time.Second {
		t.Fatalf("MaxRuntime = %s", c.MaxRuntime())
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	cases := map[string]string{
		"BATCH_SIZE":     "lots",
		"MAX_RUNTIME_MS": "5",
		"TOP_N":          "0",
		"IDLE_POLL":      "soon",
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
