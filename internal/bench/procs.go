package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
)

// process is a child the bench started. Its output goes to a log file in
// the bench's work directory; stop ends it (SIGTERM, then SIGKILL) and is
// safe to call more than once.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	exitErr error
}

func startProcess(name, logPath string, env []string, bin string, args ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitForLog waits until the process's log matches re and returns the
// first submatch (or the whole match).
func (p *process) waitForLog(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(p.logPath)
		if m := re.FindSubmatch(data); m != nil {
			return string(m[len(m)-1]), nil
		}
		if p.exited() {
			return "", fmt.Errorf("%s exited (%v) before it was ready:\n%s", p.name, p.exitErr, p.logTail(20))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not ready after %s:\n%s", p.name, timeout, p.logTail(20))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logTail is the last lines of the log, indented, for error messages.
func (p *process) logTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	return "    " + strings.ReplaceAll(lastLines(string(data), lines), "\n", "\n    ") + "\n    (full log: " + p.logPath + ")"
}

// runCommand runs a short-lived command (starter, go) and returns its
// stdout; a failure carries its stderr.
func runCommand(ctx context.Context, env []string, dir, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.SysProcAttr = childAttr()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "),
			err, strings.TrimSpace(errOut.String()+" "+lastLines(out.String(), 5)))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var workerReady = regexp.MustCompile(`msg="worker started".*metrics=(http://\S+)`)

// startWorker starts bin/worker with the run's environment and returns it
// with its metrics URL once it has logged that it started.
func (b *bench) startWorker(ctx context.Context, name string, env []string) (*process, string, error) {
	p, err := startProcess("worker", filepath.Join(b.workDir, name+"-worker.log"), env, b.bin("worker"))
	if err != nil {
		return nil, "", err
	}
	url, err := p.waitForLog(ctx, workerReady, 60*time.Second)
	if err != nil {
		p.stop()
		return nil, "", err
	}
	return p, url, nil
}

// vmHWM is the peak resident set size of a running process, in bytes.
func vmHWM(pid int) (int64, error) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	status, err := proc.NewStatus()
	return int64(status.VmHWM), err
}

// startTemporal starts bin/temporal's dev server, in memory on a free port,
// with the SDK's helper, as the e2e tests do; its output goes to the work
// directory. The caller stops it.
func (b *bench) startTemporal(ctx context.Context) (*testsuite.DevServer, error) {
	logFile, err := os.Create(filepath.Join(b.workDir, "temporal.log"))
	if err != nil {
		return nil, err
	}
	// The server writes to the file itself; the bench's copy is not needed.
	defer logFile.Close()
	warnings := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	server, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  b.bin("temporal"),
		ClientOptions: &client.Options{Logger: tlog.NewStructuredLogger(warnings)},
		LogLevel:      "error",
		Stdout:        logFile,
		Stderr:        logFile,
	})
	if err != nil {
		return nil, fmt.Errorf("start the Temporal dev server (log: %s): %w", logFile.Name(), err)
	}
	server.Client().Close() // the worker and the starter dial it themselves
	return server, nil
}
