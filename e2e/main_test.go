// Package e2e runs the real binaries against a real PostgreSQL and a real
// Temporal dev server, and checks the results by SQL.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/eventmatch/matchmaker/internal/testenv"
)

// suite holds what TestMain starts once for all tests.
var suite struct {
	temporalAddress string
	temporal        client.Client
	workerBin       string
	starterBin      string
}

func TestMain(m *testing.M) {
	if os.Getenv("INTEGRATION") != "1" {
		fmt.Println("e2e: skipped; set INTEGRATION=1 (make test does) to run against PostgreSQL and Temporal")
		os.Exit(m.Run())
	}
	raiseParallel(e2eParallel)
	os.Exit(runWithInfrastructure(m))
}

// e2eParallel is how many parallel tests run at once here unless -parallel
// says otherwise. They spend their time waiting on worker processes, the
// dev server, the fake model and PostgreSQL, so more than go test's default
// (one per CPU) fit at once: on 2 cores, 8 took the package from 145 s to
// 115 s against 4. Every test has its own database, task queue, worker
// role and processes, so killing or stopping its workers touches no other
// test; only the churn test, whose timings are tight, stays serial.
const e2eParallel = 8

// raiseParallel sets -test.parallel to n when it was not given and its
// default is lower.
func raiseParallel(n int) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	p := flag.Lookup("test.parallel")
	if p == nil || given {
		return
	}
	if current, err := strconv.Atoi(p.Value.String()); err == nil && current < n {
		_ = p.Value.Set(strconv.Itoa(n))
	}
}

func runWithInfrastructure(m *testing.M) int {
	binDir, err := os.MkdirTemp("", "matchmaker-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	// The binaries build while the dev server starts: each takes seconds.
	built := make(chan error, 1)
	go func() {
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./worker", "./starter")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			built <- fmt.Errorf("build worker and starter: %w\n%s", err, out)
			return
		}
		built <- nil
	}()
	suite.workerBin = filepath.Join(binDir, "worker")
	suite.starterBin = filepath.Join(binDir, "starter")

	cli := os.Getenv("TEMPORAL_CLI")
	if cli == "" {
		cli = filepath.Join(testenv.RepoRoot(), "bin", "temporal")
	}
	if _, err := os.Stat(cli); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: Temporal CLI not found at %s: run `make temporal-cli` (make test does)\n", cli)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: cli,
		ClientOptions: &client.Options{
			Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		},
		LogLevel: "error",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start Temporal dev server:", err)
		return 1
	}
	defer server.Stop()
	if err := <-built; err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	suite.temporal = server.Client()
	suite.temporalAddress = server.FrontendHostPort()
	// The previous release's worker compiles for most of a minute; built
	// while the serial churn test runs, it is ready, or nearly, when the
	// upgrade test, a parallel one, starts after it.
	if willRun("TestUpgradeFromThePreviousRelease") {
		go previousWorker(binDir)
	}
	return m.Run()
}

// willRun reports whether -test.run selects the top-level test name (no
// -run selects every test).
func willRun(name string) bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	top, _, _ := strings.Cut(f.Value.String(), "/")
	re, err := regexp.Compile(top)
	return err != nil || re.MatchString(name)
}

// env is one test's database, task queue and settings for the binaries.
//
// The starter runs as the database's owner (the role that migrated: the
// operator). The worker runs as a role of its own, made for the env: it can
// log in, is neither superuser nor owner, and has only what `starter
// grant-worker` gave it, as in production. A test whose worker logs
// "permission denied" fails.
type env struct {
	t         *testing.T
	dbURL     string
	taskQueue string
	vars      map[string]string
	// workerRole is the worker's role, and workerURL dbURL as that role.
	workerRole string
	workerURL  string
	// workerVars are settings of the worker alone, over vars and
	// workerURL (the pooler test's DATABASE_URL and DATABASE_LISTEN_URL).
	workerVars map[string]string
}

var envCount atomic.Int64

func newEnv(t *testing.T, overrides map[string]string) *env {
	t.Helper()
	role := newRoleName(t)
	url, _ := testenv.Database(t)
	return setUpEnv(t, url, role, overrides)
}

// newRoleName names a worker role for the test and drops it when the test
// ends. Call it before the test's database is made: cleanups run last-in
// first-out, so the role goes after the database, and with it its grants.
func newRoleName(t *testing.T) string {
	t.Helper()
	testenv.RequireIntegration(t)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	role := fmt.Sprintf("mm_e2e_worker_%s", hex.EncodeToString(b))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, testenv.AdminURL())
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	return role
}

// setUpEnv makes the env of a migrated database: the worker's role,
// created with LOGIN (the test server trusts local connections) and given
// its grants by `starter grant-worker`.
func setUpEnv(t *testing.T, url, role string, overrides map[string]string) *env {
	t.Helper()
	e := &env{
		t:     t,
		dbURL: url,
		// Unique per env: a test may run several, each with its own database.
		taskQueue: fmt.Sprintf("mm-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), envCount.Add(1)),
		vars: map[string]string{
			"MAX_RUNTIME_MS": "5000",
			"BATCH_SIZE":     "50",
			"SAFETY_POLL":    "2s",
			"IDLE_POLL":      "30s",
			"WAKE_DEBOUNCE":  "50ms",
			"METRICS_ADDR":   "127.0.0.1:0",
			// The checks compare stored lists with per-member top-N; the
			// capped assignment has its own test (capped_test.go).
			"MAX_APPEARANCES": "0",
		},
		workerRole: role,
		workerURL:  asUser(t, url, role),
		workerVars: map[string]string{},
	}
	for k, v := range overrides {
		e.vars[k] = v
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatalf("create the worker's role: %v", err)
	}
	if out, errOut, code := e.starter("grant-worker", role); code != 0 {
		t.Fatalf("starter grant-worker %s exited %d: %s%s", role, code, out, errOut)
	}
	return e
}

// asUser is url with its user replaced.
func asUser(t *testing.T, raw, user string) string {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.User(user)
	return u.String()
}

// workerEnviron is the worker's environment: the env's, as its own role.
func (e *env) workerEnviron() []string {
	vars := append(e.environ(), "DATABASE_URL="+e.workerURL)
	for k, v := range e.workerVars {
		vars = append(vars, k+"="+v)
	}
	return vars // for a repeated name, exec uses the last value
}

func (e *env) environ() []string {
	vars := append(os.Environ(),
		"DATABASE_URL="+e.dbURL,
		"TEMPORAL_ADDRESS="+suite.temporalAddress,
		"TEMPORAL_NAMESPACE=default",
		"TEMPORAL_TASK_QUEUE="+e.taskQueue,
	)
	for k, v := range e.vars {
		vars = append(vars, k+"="+v)
	}
	return vars
}

// workerProcess is a running bin/worker.
type workerProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

func (e *env) startWorker() *workerProcess {
	e.t.Helper()
	return e.startWorkerFrom(suite.workerBin)
}

// startWorkerFrom starts the worker binary at bin (another release's, say)
// with the env's settings.
func (e *env) startWorkerFrom(bin string) *workerProcess {
	e.t.Helper()
	w := &workerProcess{cmd: exec.Command(bin), logs: &syncBuffer{}, done: make(chan struct{})}
	w.cmd.Env = e.workerEnviron()
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		e.t.Fatalf("start worker: %v", err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	e.t.Cleanup(func() {
		w.stop(syscall.SIGTERM)
		// The worker runs with only what grant-worker gives it: anything
		// it needs and was not given shows here.
		if strings.Contains(w.logs.String(), "permission denied") {
			e.t.Errorf("the worker (role %s, granted by starter grant-worker) logged \"permission denied\"", e.workerRole)
		}
		if e.t.Failed() {
			e.t.Logf("worker log:\n%s", w.logs.String())
		}
	})
	return w
}

// stop sends sig and waits for the process to exit.
func (w *workerProcess) stop(sig syscall.Signal) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// starter runs bin/starter and returns its stdout, stderr and exit code.
func (e *env) starter(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return runStarter(e.environ(), args...)
}

func runStarter(environ []string, args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(suite.starterBin, args...)
	cmd.Env = environ
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		code = -1
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
