package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	t.Parallel()
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/eventmatch/matchmaker", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "4a212b3"}, {Key: "vcs.time", Value: "2026-12-02T03:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		},
	}
	got := describe("worker", info)
	want := "worker github.com/eventmatch/matchmaker (devel) (revision 4a212b3, modified, 2026-12-02T03:00:00Z) go1.26.8"
	if got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
	if got := describe("starter", &debug.BuildInfo{GoVersion: "go1.26.8"}); !strings.Contains(got, "unknown (revision unknown)") {
		t.Errorf("describe of an unstamped build = %q", got)
	}
}
