package activities

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/store"
)

// BenchmarkCappedNewcomer is the worker's part of a newcomer's batch in a
// capped event, without the database: the cached view takes the member
// (advance), the assignment is repaired (assignments.assign), and the
// batch is planned and its rows built, one newcomer after another as a
// worker sees them. The setup matches the whole event first, which takes
// most of a minute at 50,000 members:
//
//	go test -run '^$' -bench 'CappedNewcomer/50000' -benchtime 20x ./activities/
//
// It reports the time per newcomer by step, the lists each rewrites, and
// the repair's proposals and scans of the event.
func BenchmarkCappedNewcomer(b *testing.B) {
	const topN, maxAppearances = 3, 6
	const maxNewcomers = 1000
	for _, size := range []int{10_000, 50_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			ctx := context.Background()
			profiles := demodata.Generate(1, size+maxNewcomers)
			view, err := (*eventView)(nil).advance(ctx, store.Snapshot{
				MembersVersion: 1, Version: 1, MembersLoaded: true, MatchesLoaded: true, Members: profiles[:size],
			})
			if err != nil {
				b.Fatal(err)
			}
			var running assignments
			var events eventCache
			capped, err := running.assign(ctx, "event", view, topN, maxAppearances, &events)
			if err != nil {
				b.Fatal(err)
			}
			view = view.withCapped(capped.state)
			view.lists = capped.state.Lists()

			var advancing, assigning, planning time.Duration
			rewritten, scans, proposals := 0, 0, 0
			b.ResetTimer()
			k := 0
			for ; b.Loop(); k++ {
				if k == maxNewcomers {
					b.Fatalf("ran out of newcomers: use -benchtime %dx or less", maxNewcomers)
				}
				started := time.Now()
				newcomer := profiles[size+k]
				next, err := view.advance(ctx, store.Snapshot{
					MembersVersion: view.membersVersion + 1, Version: view.listsVersion,
					Members: []attendee.Profile{newcomer}, ClaimedUsers: []string{newcomer.UserID},
				})
				if err != nil {
					b.Fatal(err)
				}
				advanced := time.Now()
				capped, err := running.assign(ctx, "event", next, topN, maxAppearances, &events)
				if err != nil {
					b.Fatal(err)
				}
				assigned := time.Now()
				plan, err := planBatch(ctx, next, []string{newcomer.UserID}, topN, maxAppearances, nil, &capped)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := plan.stagedRows(); err != nil {
					b.Fatal(err)
				}
				planned := time.Now()
				advancing += advanced.Sub(started)
				assigning += assigned.Sub(advanced)
				planning += planned.Sub(assigned)
				rewritten += len(plan.viewers)
				scans += capped.stats.Scans
				proposals += capped.stats.Proposals

				// The commit lands: the next batch's view holds the
				// lists this one wrote (eventCache.committed).
				view = next.writtenBy(plan)
				view.listsVersion++
			}
			perNewcomer := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(k) }
			b.ReportMetric(perNewcomer(advancing), "ms-view/op")
			b.ReportMetric(perNewcomer(assigning), "ms-assign/op")
			b.ReportMetric(perNewcomer(planning), "ms-plan/op")
			b.ReportMetric(float64(rewritten)/float64(k), "lists/op")
			b.ReportMetric(float64(scans)/float64(k), "scans/op")
			b.ReportMetric(float64(proposals)/float64(k), "proposals/op")
		})
	}
}
