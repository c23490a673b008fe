// Package buildinfo says which build a binary is, for --version: the
// module's version and the VCS revision Go stamped into the binary.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// String is "<binary> <module version> (revision <rev>[, modified], <time>) <go version>",
// with "unknown" for what the build did not record (a binary built outside
// a git checkout, or by go run).
func String(binary string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("%s unknown build %s", binary, runtime.Version())
	}
	return describe(binary, info)
}

func describe(binary string, info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "unknown"
	}
	revision, when, modified := "unknown", "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	vcs := "revision " + revision
	if modified {
		vcs += ", modified"
	}
	if when != "" {
		vcs += ", " + when
	}
	return fmt.Sprintf("%s %s %s (%s) %s", binary, info.Main.Path, version, vcs, info.GoVersion)
}
