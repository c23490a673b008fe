package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

// previousRelease is the commit whose worker TestUpgradeFromThePreviousRelease
// starts an event on: the last release before this one's workflow changes.
// Move it forward when a release lands (workflows/testdata/README.md says
// which release recorded which history).
const previousRelease = "9662217"

// TestUpgradeFromThePreviousRelease is a deploy in the middle of an event:
// the previous release's worker starts matching it and is stopped as a
// rollout stops it (SIGTERM), this release's worker takes over the same
// workflow run (replaying the old worker's history) and finishes the event,
// whose lists then equal a from-scratch top-N.
func TestUpgradeFromThePreviousRelease(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	oldWorker, err := previousWorker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, map[string]string{"BATCH_SIZE": "20"})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "upgrade", demodata.Generate(29, 400))
	old := e.startWorkerFrom(oldWorker)
	if out, errOut, code := e.starter("enable", "upgrade"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	waitFor(t, 60*time.Second, "a few batches committed by the previous release", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1 AND committed_at IS NOT NULL`, eventID) >= 3
	})
	old.stop(syscall.SIGTERM)
	if left := queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID); left == 0 {
		t.Fatalf("the previous release finished the event before the deploy; make the event larger")
	}
	oldRuns := runsOfBatches(t, pool, eventID)

	e.startWorker()
	waitFor(t, 3*time.Minute, "this release to finish the event", func() bool {
		return fullyMatched(pool, eventID)
	})
	checkInvariants(t, pool, eventID, topN)
	checkTrueTopN(t, pool, eventID)

	// The batches after the deploy carry the old run's ID in their tokens
	// (runID/n) unless the run continued as new: the new worker replayed
	// the old one's history rather than starting over.
	newRuns := runsOfBatches(t, pool, eventID)
	if !replayedOldRun(oldRuns, newRuns) {
		t.Errorf("no run of the previous release went on under this release: before %v, after %v", oldRuns, newRuns)
	}
}

// runsOfBatches counts the event's committed batches per workflow run,
// from their tokens (runID/n).
func runsOfBatches(t *testing.T, pool *pgxpool.Pool, eventID string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT token FROM matchmaking_batches WHERE event_id = $1 AND committed_at IS NOT NULL`, eventID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	runs := map[string]int{}
	for rows.Next() {
		var token string
		if err := rows.Scan(&token); err != nil {
			t.Fatal(err)
		}
		run, _, _ := strings.Cut(token, "/")
		runs[run]++
	}
	return runs
}

func replayedOldRun(before, after map[string]int) bool {
	for run, n := range before {
		if after[run] > n {
			return true
		}
	}
	return false
}

// previousWorker builds the worker of previousRelease once, into dir on the
// first call (TestMain makes it early, in the background), and returns its
// path; later calls wait for that build.
var previousWorker = func() func(dir string) (string, error) {
	var once sync.Once
	var bin string
	var err error
	return func(dir string) (string, error) {
		once.Do(func() { bin, err = buildWorkerAt(dir, previousRelease) })
		return bin, err
	}
}()

// buildWorkerAt builds the worker of commit from this repository's history
// (git archive, so the working tree is untouched) into dir and returns its
// path.
func buildWorkerAt(dir, commit string) (string, error) {
	src := filepath.Join(dir, "src-"+commit)
	if err := os.Mkdir(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("git", "archive", "--format=tar", commit)
	archive.Dir = testenv.RepoRoot()
	var tarball, stderr bytes.Buffer
	archive.Stdout, archive.Stderr = &tarball, &stderr
	if err := archive.Run(); err != nil {
		return "", fmt.Errorf("git archive %s: %w: %s (the upgrade test needs the repository's history; in a shallow clone run `git fetch --unshallow`)",
			commit, err, strings.TrimSpace(stderr.String()))
	}
	untar := exec.Command("tar", "-x", "-C", src)
	untar.Stdin = &tarball
	if out, err := untar.CombinedOutput(); err != nil {
		return "", fmt.Errorf("unpack %s: %w: %s", commit, err, out)
	}
	bin := filepath.Join(dir, "worker-"+commit)
	build := exec.Command("go", "build", "-o", bin, "./worker")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the worker of %s: %w\n%s", commit, err, out)
	}
	return bin, nil
}
