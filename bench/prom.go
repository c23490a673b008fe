package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one line of Prometheus' text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape of the worker's /metrics.
type metrics []sample

// scrape fetches and parses a /metrics endpoint; a copy of the text is
// saved to keep when it is not empty.
func scrape(ctx context.Context, url, keep string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %s, %v", url, resp.Status, err)
	}
	if keep != "" {
		_ = os.WriteFile(keep, body, 0o644)
	}
	return parseMetrics(string(body))
}

// parseMetrics reads the text format: comments and blank lines are skipped,
// every other line is `name{label="value",...} value [timestamp]`.
func parseMetrics(text string) (metrics, error) {
	var out metrics
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (sample, error) {
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return sample{}, fmt.Errorf("no metric name and value")
	}
	s := sample{name: line[:end], labels: map[string]string{}}
	rest := line[end:]
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], s.labels); err != nil {
			return sample{}, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return sample{}, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return sample{}, fmt.Errorf("value: %w", err)
	}
	s.value = v
	return s, nil
}

// parseLabels reads `a="x",b="y"}` into labels and returns what follows
// the closing brace. Values may hold \\, \" and \n escapes.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.Index(s, "=")
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", fmt.Errorf("bad label in %q", s)
		}
		name := strings.TrimSpace(s[:eq])
		var value strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					value.WriteByte('\n')
				default:
					value.WriteByte(s[i])
				}
				continue
			}
			value.WriteByte(s[i])
		}
		if i == len(s) {
			return "", fmt.Errorf("unterminated value of label %s", name)
		}
		labels[name] = value.String()
		s = s[i+1:]
	}
}

// sum adds the values of every series of a metric.
func (m metrics) sum(name string) float64 {
	total := 0.0
	for _, s := range m {
		if s.name == name {
			total += s.value
		}
	}
	return total
}

// byLabel sums a metric's series per value of one label.
func (m metrics) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.name == name {
			out[s.labels[label]] += s.value
		}
	}
	return out
}
