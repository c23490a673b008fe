package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

// TestTwoWorkersMatchLikeOne runs the same event once with one worker and
// once with two on the same task queue, in batches of 60 (above the 50 that
// run wholly as local activities, so scoring and insights are regular
// activities either worker may take), and requires identical lists. Which
// worker takes which activity is Temporal's choice; that the shards of a
// large batch do spread is TestOneEventAcrossThreeWorkers.
func TestTwoWorkersMatchLikeOne(t *testing.T) {
	t.Parallel()
	members := demodata.Generate(83, 300)
	run := func(workers int) (map[string]string, []string) {
		e := newEnv(t, map[string]string{"BATCH_SIZE": "60"})
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
			n := strings.Count(logs, `msg="scored batch"`) + strings.Count(logs, `msg="wrote insights"`)
			if n > 0 {
				busy = append(busy, fmt.Sprintf("worker %d: %d activities", i+1, n))
			}
		}
		return lists, busy
	}
	one, _ := run(1)
	two, busy := run(2)
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
