package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLevels(t *testing.T) {
	cases := []struct {
		level string
		want  []string // messages that get through, of debug/info/warn/error
	}{
		{"debug", []string{"d", "i", "w", "e"}},
		{"info", []string{"i", "w", "e"}},
		{"INFO", []string{"i", "w", "e"}},
		{"warn", []string{"w", "e"}},
		{"error", []string{"e"}},
	}
	for _, tc := range cases {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(tc.level, "json", &buf)
			if err != nil {
				t.Fatalf("New(%q): %v", tc.level, err)
			}
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("line %q is not JSON: %v", line, err)
				}
				got = append(got, rec["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("level %s logged %v, want %v", tc.level, got, tc.want)
			}
		})
	}
}

func TestJSONFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := New("info", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("committed batch", "event_id", "e1", "workflow_id", "matchmaking-e1", "users", 3)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("output %q is not one JSON object: %v", buf.String(), err)
	}
	if rec["msg"] != "committed batch" || rec["level"] != "INFO" || rec["event_id"] != "e1" ||
		rec["workflow_id"] != "matchmaking-e1" || rec["users"] != float64(3) {
		t.Fatalf("unexpected record %v", rec)
	}
}

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := New("info", "TEXT", &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("committed batch", "event_id", "e1", "users", 3)
	out := buf.String()
	for _, want := range []string{"level=INFO", `msg="committed batch"`, "event_id=e1", "users=3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("text output %q lacks %q", out, want)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Fatalf("text output looks like JSON: %q", out)
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct{ level, format, wantInErr string }{
		{"verbose", "text", `"verbose"`},
		{"", "text", "log level"},
		{"warning", "json", `"warning"`},
		{"info", "xml", `"xml"`},
		{"info", "", "log format"},
	} {
		l, err := New(tc.level, tc.format, &bytes.Buffer{})
		if err == nil || l != nil {
			t.Fatalf("New(%q, %q) = %v, %v; want an error", tc.level, tc.format, l, err)
		}
		if !strings.Contains(err.Error(), tc.wantInErr) {
			t.Fatalf("New(%q, %q) error %q lacks %s", tc.level, tc.format, err, tc.wantInErr)
		}
	}
}
