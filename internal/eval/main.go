// Command eval measures the quality of the lists the matching package
// makes, and writes the figures into docs/QUALITY.md between the
// <!-- eval:begin --> and <!-- eval:end --> markers (the rest of the file is
// written by hand).
//
// It scores synthetic events (demodata.GeneratePlanted, seed EVAL_SEED, at
// each size of EVAL_SIZES) and, if EVAL_INPUT names one, an attendee file:
// a JSON array of objects with the fields
//
//	{"user_id": "…", "display_name": "…", "company": "…", "job_title": "…",
//	 "industry": "…", "interests": ["…"], "looking_for": ["…"],
//	 "offering": ["…"], "bio": "…", "group": "…"}
//
// all optional (a missing user_id becomes "row-<k>"). Members with the same
// non-empty group (say, people who registered together) count as planted
// partners. Lists are the engine's own: matching.NewPool, then the capped
// assignment (Pool.CappedLists, MAX_APPEARANCES, default 2 × TOP_N; 0 for
// none) or, without a cap, Pool.UpdateContext with every member claimed, as
// when an event is first matched.
//
//	make eval
//	EVAL_INPUT=attendees.json make eval
//	go run ./internal/eval -out /dev/stdout
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
)

const (
	beginMarker = "<!-- eval:begin -->"
	endMarker   = "<!-- eval:end -->"
)

// population is one event to measure.
type population struct {
	name    string
	members []attendee.Profile
	groups  [][]int
}

func main() {
	out := flag.String("out", "docs/QUALITY.md", "file to write the figures into (between the eval markers, or the whole file if it has none)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	n, err := envInt("TOP_N", 3)
	if err != nil {
		return err
	}
	maxAppearances, err := envInt("MAX_APPEARANCES", 2*n)
	if err != nil {
		return err
	}
	seed, err := envInt("EVAL_SEED", 1)
	if err != nil {
		return err
	}
	var populations []population
	for _, field := range strings.Split(envOr("EVAL_SIZES", "1000,10000"), ",") {
		size, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || size < 2 {
			return fmt.Errorf("EVAL_SIZES: %q is not a size of at least 2", field)
		}
		members, groups := demodata.GeneratePlanted(int64(seed), size)
		populations = append(populations, population{fmt.Sprintf("synthetic %d", size), members, groups})
	}
	if path := os.Getenv("EVAL_INPUT"); path != "" {
		p, err := readInput(path)
		if err != nil {
			return err
		}
		populations = append(populations, p)
	}

	results := make([]*quality, len(populations))
	for k, p := range populations {
		start := time.Now()
		q, err := measure(p.members, p.groups, n, maxAppearances)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		results[k] = q
		fmt.Fprintf(os.Stderr, "eval: %s measured in %.1f s\n", p.name, time.Since(start).Seconds())
	}
	table := render(populations, results, n, maxAppearances, seed)
	fmt.Print(table)
	return writeBetweenMarkers(out, table)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s: %q is not a positive integer", name, v)
	}
	return n, nil
}

// inputMember is one row of an EVAL_INPUT file.
type inputMember struct {
	UserID      string   `json:"user_id"`
	DisplayName string   `json:"display_name"`
	Company     string   `json:"company"`
	JobTitle    string   `json:"job_title"`
	Industry    string   `json:"industry"`
	Interests   []string `json:"interests"`
	LookingFor  []string `json:"looking_for"`
	Offering    []string `json:"offering"`
	Bio         string   `json:"bio"`
	Group       string   `json:"group"`
}

func readInput(path string) (population, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return population{}, fmt.Errorf("EVAL_INPUT: %w", err)
	}
	var rows []inputMember
	if err := json.Unmarshal(data, &rows); err != nil {
		return population{}, fmt.Errorf("EVAL_INPUT %s: %w", path, err)
	}
	p := population{name: "input (" + fmt.Sprint(len(rows)) + ")"}
	byGroup := map[string]int{}
	seen := map[string]bool{}
	for k, r := range rows {
		if r.UserID == "" {
			r.UserID = fmt.Sprintf("row-%d", k)
		}
		if seen[r.UserID] {
			return population{}, fmt.Errorf("EVAL_INPUT %s: user_id %q appears twice", path, r.UserID)
		}
		seen[r.UserID] = true
		p.members = append(p.members, attendee.Profile{
			UserID: r.UserID, DisplayName: r.DisplayName, Company: r.Company, JobTitle: r.JobTitle,
			Industry: r.Industry, Interests: r.Interests, LookingFor: r.LookingFor, Offering: r.Offering, Bio: r.Bio,
		})
		if r.Group == "" {
			continue
		}
		g, ok := byGroup[r.Group]
		if !ok {
			g = len(p.groups)
			byGroup[r.Group] = g
			p.groups = append(p.groups, nil)
		}
		p.groups[g] = append(p.groups[g], k)
	}
	// A group of one has no partner to find.
	groups := p.groups[:0]
	for _, g := range p.groups {
		if len(g) > 1 {
			groups = append(groups, g)
		}
	}
	p.groups = groups
	return p, nil
}

func render(populations []population, results []*quality, n, maxAppearances, seed int) string {
	var b strings.Builder
	capped := fmt.Sprintf("MAX_APPEARANCES = %d", maxAppearances)
	if maxAppearances == 0 {
		capped = "MAX_APPEARANCES = 0 (no cap)"
	}
	fmt.Fprintf(&b, "TOP_N = %d, %s; synthetic events are `demodata.GeneratePlanted` with seed %d. Generated by `make eval`.\n\n", n, capped, seed)
	b.WriteString("| |")
	for _, p := range populations {
		fmt.Fprintf(&b, " %s |", p.name)
	}
	b.WriteString("\n| --- |")
	for range populations {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	row := func(label string, cell func(q *quality) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, q := range results {
			fmt.Fprintf(&b, " %s |", cell(q))
		}
		b.WriteString("\n")
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }
	row("members in at least one list", func(q *quality) string { return pct(q.inAList) })
	row("most-listed member's appearances", func(q *quality) string { return strconv.Itoa(q.mostListed) })
	row("Gini of appearances", func(q *quality) string { return fmt.Sprintf("%.3f", q.gini) })
	row("… without the cap: in at least one list / most-listed / Gini", func(q *quality) string {
		return fmt.Sprintf("%s / %d / %.3f", pct(q.uncappedInAList), q.uncappedMostListed, q.uncappedGini)
	})
	row("reciprocity (entries whose other lists the viewer)", func(q *quality) string { return pct(q.reciprocity) })
	row("full lists", func(q *quality) string { return pct(q.fullLists) })
	row("total score kept vs unconstrained top-N", func(q *quality) string { return fmt.Sprintf("%.3f", q.scoreKept) })
	row("tag-stuffer's appearances / honest 90th percentile (cap off)", func(q *quality) string {
		return fmt.Sprintf("%d / %d", q.stufferAppears, q.honestP90)
	})
	row("first member plus every sought tag offered: appearances (cap off)", func(q *quality) string {
		return strconv.Itoa(q.offerStufferAppears)
	})
	row("list places decided by a tie", func(q *quality) string { return pct(q.tiePlaces) })
	row("… ties won by the smaller user ID", func(q *quality) string { return pct(q.tiesToSmallerID) })
	row("violations: members in more than MAX_APPEARANCES lists", func(q *quality) string { return strconv.Itoa(q.overCap) })
	for _, v := range violations {
		row("violations: "+v.name, func(q *quality) string { return strconv.Itoa(q.violations[v.name]) })
	}
	row("planted groups (members)", func(q *quality) string {
		if q.plantedGroups == 0 {
			return "none"
		}
		return fmt.Sprintf("%d (%d)", q.plantedGroups, q.planted)
	})
	plantedCell := func(v func(q *quality) float64) func(q *quality) string {
		return func(q *quality) string {
			if q.plantedGroups == 0 {
				return "–"
			}
			return pct(v(q))
		}
	}
	row(fmt.Sprintf("planted partners in the top %d: engine", n), plantedCell(func(q *quality) float64 { return q.plantedEngine }))
	row("… random lists (expected)", plantedCell(func(q *quality) float64 { return q.plantedRand }))
	row("… interests-Jaccard lists", plantedCell(func(q *quality) float64 { return q.plantedJaccard }))
	return b.String()
}

// writeBetweenMarkers puts table between the markers of path, keeping the
// rest; a file without them is written whole, markers included.
func writeBetweenMarkers(path, table string) error {
	generated := beginMarker + "\n" + table + endMarker + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	begin := bytes.Index(old, []byte(beginMarker))
	end := -1
	if begin >= 0 {
		if k := bytes.Index(old[begin:], []byte(endMarker)); k >= 0 {
			end = begin + k
		}
	}
	var out []byte
	if end >= 0 {
		out = append(out, old[:begin]...)
		out = append(out, generated...)
		out = append(out, bytes.TrimPrefix(old[end+len(endMarker):], []byte("\n"))...)
	} else {
		out = []byte("# List quality\n\n" + generated)
	}
	return os.WriteFile(path, out, 0o644)
}
