package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

func TestGini(t *testing.T) {
	if g := gini([]int{3, 3, 3, 3}); g != 0 {
		t.Fatalf("equal counts: Gini %v, want 0", g)
	}
	if g := gini([]int{0, 0, 0, 8}); g != 0.75 {
		t.Fatalf("one member has all: Gini %v, want 0.75 (1 - 1/n)", g)
	}
}

func TestPercentile(t *testing.T) {
	counts := []int{5, 1, 2, 3, 4, 6, 7, 8, 9, 10}
	if p := percentile(counts, 0.9); p != 9 {
		t.Fatalf("90th percentile %d, want 9", p)
	}
}

// The figures of a small event follow from the lists: without a cap every
// list is full, the engine's lists are the unconstrained top-N, and nobody
// is listed by a colleague; with a cap nobody is over it, and the score
// kept falls below the unconstrained one while coverage does not fall.
func TestMeasureSmallEvent(t *testing.T) {
	members, groups := demodata.GeneratePlanted(5, 300)
	q, err := measure(members, groups, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if q.fullLists != 1 || q.scoreKept != 1 {
		t.Fatalf("full lists %v, score kept %v; want 1 and 1", q.fullLists, q.scoreKept)
	}
	if q.violations["same company"] != 0 {
		t.Fatalf("%d same-company entries", q.violations["same company"])
	}
	if q.plantedGroups != len(groups) || q.planted == 0 {
		t.Fatalf("planted %d groups (%d members), want %d", q.plantedGroups, q.planted, len(groups))
	}
	if q.plantedEngine <= q.plantedRand {
		t.Fatalf("planted partners found %v, no better than random lists %v", q.plantedEngine, q.plantedRand)
	}

	capped, err := measure(members, groups, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if capped.mostListed > 4 || capped.overCap != 0 {
		t.Fatalf("cap 4: most-listed %d, %d over the cap", capped.mostListed, capped.overCap)
	}
	if q.mostListed <= 4 {
		t.Fatalf("uncapped most-listed %d: this event does not test the cap", q.mostListed)
	}
	if capped.scoreKept >= 1 || capped.inAList < q.inAList || capped.uncappedGini != q.gini {
		t.Fatalf("cap 4: score kept %v, in a list %v (uncapped %v), uncapped Gini %v (want %v)",
			capped.scoreKept, capped.inAList, q.inAList, capped.uncappedGini, q.gini)
	}
}

func TestWriteBetweenMarkersKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "QUALITY.md")
	doc := "# Quality\n\nby hand\n\n" + beginMarker + "\nold\n" + endMarker + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeBetweenMarkers(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Quality\n\nby hand\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\nafter\n"
	if string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestReadInputGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.json")
	rows := `[{"user_id":"a","interests":["x"],"group":"g"},{"user_id":"b","group":"g"},{"group":"solo"},{}]`
	if err := os.WriteFile(path, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := readInput(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.members) != 4 || p.members[2].UserID != "row-2" || p.members[0].Interests[0] != "x" {
		t.Fatalf("members %+v", p.members)
	}
	if len(p.groups) != 1 || len(p.groups[0]) != 2 {
		t.Fatalf("groups %v, want one group of a and b", p.groups)
	}
	if !strings.HasPrefix(p.name, "input") {
		t.Fatalf("name %q", p.name)
	}
}
