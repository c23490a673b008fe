package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// machine describes where and on what the bench ran.
type machine struct {
	cpu       string
	cores     string
	memory    string
	goVersion string
	postgres  string
	temporal  string
	commit    string
	date      time.Time
	loadAvg   string // 1, 5 and 15 minute load averages when the bench began
}

func (b *bench) describeMachine(ctx context.Context) (machine, error) {
	m := machine{
		cpu:       procField("/proc/cpuinfo", "model name"),
		cores:     strconv.Itoa(runtime.NumCPU()),
		memory:    "unknown",
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		date:      time.Now().UTC(),
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			m.loadAvg = strings.Join(f[:3], " ")
		}
	}
	if out, err := runCommand(ctx, os.Environ(), "", "nproc"); err == nil {
		m.cores = strings.TrimSpace(out)
	}
	if kB, err := strconv.ParseFloat(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 64); err == nil {
		m.memory = fmt.Sprintf("%.1f GiB", kB/(1<<20))
	}
	if out, err := runCommand(ctx, os.Environ(), "", b.opts.GoCmd, "env", "GOVERSION"); err == nil {
		m.goVersion = strings.TrimSpace(out) + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	if out, err := runCommand(ctx, os.Environ(), "", b.bin("temporal"), "--version"); err == nil {
		m.temporal = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "temporal version "))
	}
	conn, err := pgx.ConnectConfig(ctx, b.admin)
	if err != nil {
		return m, err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&m.postgres); err != nil {
		return m, err
	}
	m.commit = gitCommit(ctx)
	return m, nil
}

// gitCommit is `git rev-parse --short HEAD`, plus "+dirty" when the work
// tree has changes. Both commands only read: status is told to take no
// optional locks, so it never writes the index under a concurrent git.
func gitCommit(ctx context.Context) string {
	env := append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	out, err := runCommand(ctx, env, "", "git", "rev-parse", "--short", "HEAD")
	if err != nil {
		return "unknown (not a git work tree?)"
	}
	commit := strings.TrimSpace(out)
	status, err := runCommand(ctx, env, "", "git", "--no-optional-locks", "status", "--porcelain")
	switch {
	case err != nil:
		commit += " (dirty state unknown)"
	case strings.TrimSpace(status) != "":
		commit += "+dirty"
	}
	return commit
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
