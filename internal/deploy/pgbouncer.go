package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PgBouncer is a pgbouncer in transaction mode that a test started in front
// of a PostgreSQL server, as Supabase's pooler on port 6543 is.
type PgBouncer struct {
	Host string
	Port int
	log  *lockedBuffer
}

// URL is a connection string through the pooler for user and database,
// marked pgbouncer=true as a Supabase pooler URL is.
func (p *PgBouncer) URL(user, database string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable&pgbouncer=true", user, p.Host, p.Port, database)
}

// Log is what pgbouncer logged so far.
func (p *PgBouncer) Log() string { return p.log.String() }

// PgBouncerBinary finds Debian's pgbouncer, which lives in /usr/sbin (often
// not on a non-root PATH).
func PgBouncerBinary() (string, error) {
	if path, err := exec.LookPath("pgbouncer"); err == nil {
		return path, nil
	}
	for _, path := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", errors.New("pgbouncer not found on PATH or in /usr/sbin (apt-get install -y pgbouncer; .ci/run installs it)")
}

// StartPgBouncer runs pgbouncer with pool_mode = transaction on a free port
// of 127.0.0.1, in front of the server at upstreamHost:upstreamPort, for the
// given users (trust authentication, as the local test server has), with a
// server pool of poolSize connections per user and database, so that a
// client's transactions really do land on different server sessions. It
// stops when the test ends. Without the pgbouncer binary the test is
// skipped.
func StartPgBouncer(t testing.TB, upstreamHost string, upstreamPort, poolSize int, users ...string) *PgBouncer {
	t.Helper()
	bin, err := PgBouncerBinary()
	if err != nil {
		t.Skip(err.Error())
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("pgbouncer: %v", err)
	}
	dir := t.TempDir()
	var authFile strings.Builder
	for _, u := range users {
		fmt.Fprintf(&authFile, "%q \"\"\n", u)
	}
	// No logfile or pidfile: pgbouncer logs to stderr, which the test keeps,
	// and the process is ours to stop. No unix socket either: a second
	// pgbouncer of a parallel test would want the same one.
	config := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 200
`, upstreamHost, upstreamPort, port, filepath.Join(dir, "users.txt"), poolSize)
	for name, content := range map[string]string{"users.txt": authFile.String(), "pgbouncer.ini": config} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		// pgbouncer refuses to run as root ("PgBouncer should not run as
		// root"); -u makes it switch to that user once it has read its
		// configuration and auth file (which is why it has no logfile).
		runAs, err := unprivilegedUser()
		if err != nil {
			t.Skipf("pgbouncer will not run as root and %v", err)
		}
		args = append([]string{"-u", runAs}, args...)
	}
	p := &PgBouncer{Host: "127.0.0.1", Port: port, log: &lockedBuffer{}}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("pgbouncer log:\n%s", p.Log())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(p.Host, strconv.Itoa(port)), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return p
		}
		select {
		case <-done:
			t.Fatalf("pgbouncer exited at start:\n%s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer does not listen on %d after 10s:\n%s", port, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unprivilegedUser is the account pgbouncer runs as under root: postgres,
// which Debian's PostgreSQL and pgbouncer packages create, or nobody.
func unprivilegedUser() (string, error) {
	for _, name := range []string{"postgres", "nobody"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", errors.New("there is no postgres or nobody user to run it as")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
