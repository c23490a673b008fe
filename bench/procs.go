package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
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
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "    " + strings.Join(all, "\n    ") + "\n    (full log: " + p.logPath + ")"
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
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts asks the kernel for n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// startTemporal starts `temporal server start-dev --headless` on free
// ports, in memory, and waits until its frontend answers.
func (b *bench) startTemporal(ctx context.Context) (*process, string, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, "", err
	}
	address := fmt.Sprintf("127.0.0.1:%d", ports[0])
	p, err := startProcess("Temporal dev server", filepath.Join(b.workDir, "temporal.log"), os.Environ(),
		b.bin("temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", fmt.Sprint(ports[0]), "--http-port", fmt.Sprint(ports[1]), "--metrics-port", fmt.Sprint(ports[2]),
		"--log-level", "error")
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := runCommand(ctx, os.Environ(), "", b.bin("temporal"),
			"operator", "cluster", "health", "--address", address, "--command-timeout", "2s")
		if err == nil {
			return p, address, nil
		}
		if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			return nil, "", fmt.Errorf("the Temporal dev server did not come up at %s (%v):\n%s", address, err, p.logTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
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

// startFakeModel builds and starts the fake OpenAI-compatible server.
func (b *bench) startFakeModel(ctx context.Context) (*process, string, error) {
	bin := filepath.Join(b.workDir, "fakeopenai")
	if _, err := runCommand(ctx, os.Environ(), "", b.opts.goCmd, "build", "-o", bin, "./internal/fakeopenai/cmd/fakeopenai"); err != nil {
		return nil, "", err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	p, err := startProcess("fake model", filepath.Join(b.workDir, "fakeopenai.log"), os.Environ(),
		bin, "-addr", addr, "-latency", aiLatency.String())
	if err != nil {
		return nil, "", err
	}
	if _, err := p.waitForLog(ctx, regexp.MustCompile(`fakeopenai: serving`), 10*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, "http://" + addr + "/v1", nil
}

// vmHWM is the peak resident set size of a running process, in bytes.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmHWM(string(data))
}

func parseVmHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kB int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kB); err != nil {
				return 0, fmt.Errorf("VmHWM: %q", line)
			}
			return kB * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM line")
}
