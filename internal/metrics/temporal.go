package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// TimerBuckets are the histogram buckets, in seconds, of the SDK's timers:
// from a fast RPC to a long poll and beyond.
var TimerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// NewTemporalHandler returns a client.MetricsHandler (for
// client.Options.MetricsHandler) that records the Temporal SDK's metrics in
// reg: counters as counters, gauges as gauges and timers as histograms in
// seconds. Each metric's collector is created on first use, with the tag
// keys as label names; names and keys are made valid for Prometheus.
//
// Names follow Temporal's Prometheus naming, the one the SDK's contrib/tally
// gives with its Prometheus naming scope and Temporal's SDK dashboards
// query: counters end in _total and timers in _seconds
// (temporal_request_total, temporal_request_latency_seconds_bucket).
// contrib/tally itself is not used: its Prometheus reporter wants one label
// set per name, and the SDK tags some names differently from call to call,
// which this handler merges into one family.
//
// The SDK does not always emit one metric name with the same tag keys, so
// there is a collector per name and key set. They are registered unchecked
// and the registry merges them into one metric family at scrape time.
func NewTemporalHandler(reg prometheus.Registerer) client.MetricsHandler {
	return &temporalHandler{vecs: &vecSet{reg: reg, kinds: map[string]kind{}, vecs: map[vecKey]prometheus.Collector{}}}
}

type kind int

const (
	kindCounter kind = iota + 1
	kindGauge
	kindTimer
)

// vecSet holds the collectors created so far, shared by every handler
// derived from one NewTemporalHandler through WithTags.
type vecSet struct {
	reg   prometheus.Registerer
	mu    sync.RWMutex
	kinds map[string]kind // by sanitized name: what it was first used as
	vecs  map[vecKey]prometheus.Collector
}

type vecKey struct {
	name   string
	labels string // sorted label names joined by ","
}

type temporalHandler struct {
	vecs   *vecSet
	tags   map[string]string // sanitized key → value
	keys   []string          // sorted keys of tags
	values []string          // values in keys' order
	keyID  string
}

// WithTags implements client.MetricsHandler.
func (h *temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	maps.Copy(merged, h.tags)
	// In sorted order, so that two keys that sanitize alike resolve the
	// same way every time.
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		merged[labelName(k)] = strings.ToValidUTF8(tags[k], "\uFFFD")
	}
	keys := slices.Sorted(maps.Keys(merged))
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = merged[k]
	}
	return &temporalHandler{vecs: h.vecs, tags: merged, keys: keys, values: values, keyID: strings.Join(keys, ",")}
}

// Counter implements client.MetricsHandler.
func (h *temporalHandler) Counter(name string) client.MetricsCounter {
	vec, ok := h.vecs.get(kindCounter, withSuffix(name, "_total"), h.keys, h.keyID).(*prometheus.CounterVec)
	if !ok {
		return client.MetricsNopHandler.Counter(name)
	}
	return counter{vec.WithLabelValues(h.values...)}
}

// Gauge implements client.MetricsHandler.
func (h *temporalHandler) Gauge(name string) client.MetricsGauge {
	vec, ok := h.vecs.get(kindGauge, name, h.keys, h.keyID).(*prometheus.GaugeVec)
	if !ok {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gauge{vec.WithLabelValues(h.values...)}
}

// Timer implements client.MetricsHandler.
func (h *temporalHandler) Timer(name string) client.MetricsTimer {
	vec, ok := h.vecs.get(kindTimer, withSuffix(name, "_seconds"), h.keys, h.keyID).(*prometheus.HistogramVec)
	if !ok {
		return client.MetricsNopHandler.Timer(name)
	}
	return timer{vec.WithLabelValues(h.values...)}
}

// withSuffix is name ending in suffix, as Temporal's Prometheus naming
// has it (contrib/tally's NewPrometheusNamingScope).
func withSuffix(name, suffix string) string {
	if strings.HasSuffix(name, suffix) {
		return name
	}
	return name + suffix
}

type counter struct{ c prometheus.Counter }

// Inc implements client.MetricsCounter. Prometheus counters only go up, so
// a negative delta (which the SDK does not send) is dropped.
func (c counter) Inc(d int64) {
	if d > 0 {
		c.c.Add(float64(d))
	}
}

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

// get returns the collector for name and label set, creating and
// registering it on first use; nil when name is already used as another
// kind of metric, or the registry refuses it.
func (s *vecSet) get(k kind, rawName string, labels []string, labelsID string) prometheus.Collector {
	name := metricName(rawName)
	key := vecKey{name, labelsID}
	s.mu.RLock()
	vec, ok := s.vecs[key]
	s.mu.RUnlock()
	if ok {
		return vec
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if vec, ok := s.vecs[key]; ok {
		return vec
	}
	if first, seen := s.kinds[name]; seen && first != k {
		s.vecs[key] = nil
		return nil
	}
	help := "Temporal Go SDK metric " + name
	switch k {
	case kindCounter:
		vec = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	case kindGauge:
		vec = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	case kindTimer:
		vec = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help + ", in seconds",
			Buckets: TimerBuckets}, labels)
	}
	if err := s.reg.Register(unchecked{vec}); err != nil {
		vec = nil
	}
	s.kinds[name] = k
	s.vecs[key] = vec
	return vec
}

// unchecked registers a collector without describing it, so that one
// metric name can have collectors with different label sets.
type unchecked struct{ prometheus.Collector }

func (unchecked) Describe(chan<- *prometheus.Desc) {}

// metricName makes s a valid Prometheus metric name:
// [a-zA-Z_:][a-zA-Z0-9_:]*, other characters becoming '_'.
func metricName(s string) string {
	return sanitize(s, true)
}

// labelName makes s a valid Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*,
// not starting with "__" (reserved) and not "le" (histograms' own label).
func labelName(s string) string {
	s = sanitize(s, false)
	if strings.HasPrefix(s, "__") {
		s = "tag" + s
	}
	if s == "le" {
		s = "tag_le"
	}
	return s
}

func sanitize(s string, colonOK bool) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', colonOK && r == ':':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
