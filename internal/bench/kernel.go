package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// benchmark is one result line of `go test -bench`.
type benchmark struct {
	name       string // without the -GOMAXPROCS suffix
	iterations int64
	values     map[string]float64 // by unit: ns/op, B/op, allocs/op, pairs/s, ...
}

// kernelResults is the scoring kernel's Go benchmarks.
type kernelResults struct {
	cpu        string
	benchmarks []benchmark
}

func runKernelBenchmarks(ctx context.Context, goCmd string) (kernelResults, error) {
	out, err := runCommand(ctx, os.Environ(), "", goCmd, "test", "-run", "^$", "-bench", ".", "-benchmem", "./matching/")
	if err != nil {
		return kernelResults{}, fmt.Errorf("scoring kernel benchmarks: %w", err)
	}
	k, err := parseBenchOutput(out)
	if err == nil && len(k.benchmarks) == 0 {
		err = fmt.Errorf("scoring kernel benchmarks: no results in the output:\n%s", out)
	}
	return k, err
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBenchOutput reads `go test -bench` output: "cpu:" and the
// Benchmark lines, whose fields after the name and iteration count are
// value-unit pairs.
func parseBenchOutput(out string) (kernelResults, error) {
	var k kernelResults
	for _, line := range strings.Split(out, "\n") {
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			k.cpu = strings.TrimSpace(cpu)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		iterations, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue // a benchmark's own log line
		}
		b := benchmark{name: procsSuffix.ReplaceAllString(fields[0], ""), iterations: iterations, values: map[string]float64{}}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return k, fmt.Errorf("benchmark line %q: %w", line, err)
			}
			b.values[fields[i+1]] = v
		}
		k.benchmarks = append(k.benchmarks, b)
	}
	return k, nil
}

// pairsPerSecond is a benchmark's pairs rate, whatever its unit ends with
// (pairs/s, claimed-pairs/s); ok is false when it reports none.
func (b benchmark) pairsPerSecond() (float64, string, bool) {
	for unit, v := range b.values {
		if strings.HasSuffix(unit, "pairs/s") {
			return v, unit, true
		}
	}
	return 0, "", false
}
