package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

// TestTwoWorkersMatchLikeOne runs the same event once with one worker and
// once with two on the same task queue, in small batches so both workers
// take activities, and requires identical lists.
func TestTwoWorkersMatchLikeOne(t *testing.T) {
	members := demodata.Generate(83, 300)
	run := func(workers int) (map[string]string, []string) {
		e := newEnv(t, map[string]string{"BATCH_SIZE": "25"})
		pool := openPool(t, e.dbURL)
		eventID := loadEvent(t, pool, "scale", members)
		var procs []*workerProcess
		for range workers {
			procs = append(procs, e.startWorker())
		}
		e.mustStarter("enable", "scale", "--wait", "--timeout", "2m")
		checkInvariants(t, pool, eventID, topN)
		lists := map[string]string{}
		for viewer, list := range storedLists(t, pool, eventID) {
			lists[viewer] = fmt.Sprint(list)
		}
		var busy []string
		for i, w := range procs {
			w.stop(syscall.SIGTERM)
			logs := w.logs.String()
			n := strings.Count(logs, `msg="claimed batch"`) + strings.Count(logs, `msg="scored batch"`) +
				strings.Count(logs, `msg="committed batch"`)
			if n > 0 {
				busy = append(busy, fmt.Sprintf("worker %d: %d activities", i+1, n))
			}
		}
		return lists, busy
	}
	one, _ := run(1)
	two, busy := run(2)
	if len(busy) < 2 {
		t.Errorf("only one worker committed batches (%v); the event's activities were not spread", busy)
	}
	t.Logf("two workers: %v", busy)
	if len(one) != len(two) {
		t.Fatalf("%d lists with one worker, %d with two", len(one), len(two))
	}
	for viewer, list := range one {
		if two[viewer] != list {
			t.Errorf("member %s: one worker %s, two workers %s", viewer, list, two[viewer])
		}
	}
}
