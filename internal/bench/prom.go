package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics is one scrape of the worker's /metrics, by metric family name.
type metrics map[string]*dto.MetricFamily

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
	m, err := parseMetrics(body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return m, nil
}

// parseMetrics reads Prometheus' text exposition format.
func parseMetrics(text []byte) (metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(text))
}

// sum adds a metric over its series: counter and gauge values, and the
// sums of a histogram's observations.
func (m metrics) sum(name string) float64 { return m.byLabel(name, "")[""] }

// byLabel is sum per value of one label.
func (m metrics) byLabel(name, label string) map[string]float64 {
	return m.perLabel(name, label, func(s *dto.Metric) float64 {
		return s.GetCounter().GetValue() + s.GetGauge().GetValue() + s.GetUntyped().GetValue() + s.GetHistogram().GetSampleSum()
	})
}

// countByLabel is how many observations a histogram holds, per value of
// one label.
func (m metrics) countByLabel(name, label string) map[string]float64 {
	return m.perLabel(name, label, func(s *dto.Metric) float64 { return float64(s.GetHistogram().GetSampleCount()) })
}

func (m metrics) perLabel(name, label string, value func(*dto.Metric) float64) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m[name].GetMetric() {
		key := ""
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		out[key] += value(s)
	}
	return out
}
