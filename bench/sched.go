package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

// schedMetric is the Go runtime's histogram of the time goroutines wait
// runnable before they run (/sched/latencies:seconds), which the server
// exports from its Go collector.
const schedMetric = "go_sched_latencies_seconds"

// histSample is a histogram at one moment: the cumulative count of each
// bucket by upper bound (+Inf included), and the sum.
type histSample struct {
	buckets map[float64]float64
	sum     float64
}

// histograms reads the named Prometheus histograms from the server's
// /metrics in one scrape; a name the server does not export is absent
// from the result, which is nil when the scrape fails.
func (r *runner) histograms(ctx context.Context, names ...string) map[string]*histSample {
	out := map[string]*histSample{}
	err := r.scrapeSeries(ctx, func(series string, v float64) {
		for _, name := range names {
			switch {
			case series == name+"_sum":
				sampleOf(out, name).sum = v
			case strings.HasPrefix(series, name+`_bucket{le="`):
				le := strings.TrimSuffix(strings.TrimPrefix(series, name+`_bucket{le="`), `"}`)
				if b, err := strconv.ParseFloat(le, 64); err == nil {
					sampleOf(out, name).buckets[b] = v
				}
			}
		}
	})
	if err != nil {
		return nil
	}
	for name, s := range out {
		if len(s.buckets) == 0 {
			delete(out, name)
		}
	}
	return out
}

func sampleOf(m map[string]*histSample, name string) *histSample {
	s, ok := m[name]
	if !ok {
		s = &histSample{buckets: map[float64]float64{}}
		m[name] = s
	}
	return s
}

// selfSchedMetric is the runtime metric behind schedMetric.
const selfSchedMetric = "/sched/latencies:seconds"

// selfSchedLatencies reads the benchmark's own scheduler latencies, as a
// histSample whose sum is estimated from the buckets' midpoints (the
// runtime keeps no sum), nil when the runtime does not have the metric.
func selfSchedLatencies() *histSample {
	m := []metrics.Sample{{Name: selfSchedMetric}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	h := m[0].Value.Float64Histogram()
	s := &histSample{buckets: make(map[float64]float64, len(h.Counts))}
	var cum float64
	for i, n := range h.Counts {
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		cum += float64(n)
		s.buckets[hi] = cum
		switch {
		case math.IsInf(lo, -1):
			s.sum += float64(n) * hi
		case math.IsInf(hi, 1):
			s.sum += float64(n) * lo
		default:
			s.sum += float64(n) * (lo + hi) / 2
		}
	}
	s.buckets[math.Inf(1)] = cum
	return s
}

// SchedWait is how long the server's goroutines waited runnable for a CPU
// during a window (go_sched_latencies_seconds): time that is part of the
// age of what the clients receive but shows in no queue of the engine. On
// a machine short of CPU it is most of the latency.
type SchedWait struct {
	// Waits is the number of waits the runtime sampled.
	Waits int64 `json:"waits"`
	// Mean is their mean.
	Mean time.Duration `json:"mean"`
	// P99 is the upper bound of the histogram bucket that holds the 99th
	// percentile (the runtime's buckets grow about tenfold), -1 for the
	// open last bucket.
	P99 time.Duration `json:"p99"`
}

// schedWait computes the waits between two samples, nil without both.
func schedWait(s0, s1 *histSample) *SchedWait {
	if s0 == nil || s1 == nil {
		return nil
	}
	bounds := slices.Sorted(maps.Keys(s1.buckets))
	total := s1.buckets[math.Inf(1)] - s0.buckets[math.Inf(1)]
	if total <= 0 {
		return &SchedWait{}
	}
	w := &SchedWait{
		Waits: int64(total),
		Mean:  time.Duration((s1.sum - s0.sum) / total * float64(time.Second)),
		P99:   -1,
	}
	for _, b := range bounds {
		if s1.buckets[b]-s0.buckets[b] >= 0.99*total {
			if !math.IsInf(b, 1) {
				w.P99 = time.Duration(b * float64(time.Second))
			}
			break
		}
	}
	return w
}

// schedLine describes the waits of the server (w) and of the benchmark
// (self, either may be nil) for WriteSummary.
func schedLine(w, self *SchedWait) string {
	p99 := func(w *SchedWait) string {
		if w.P99 < 0 {
			return "over the last bucket"
		}
		return fmt.Sprintf("at most %.3g ms", ms(w.P99))
	}
	var parts []string
	if w != nil && w.Waits > 0 {
		parts = append(parts, fmt.Sprintf("server %.2f ms on average, p99 %s (%s, %d waits sampled)", ms(w.Mean), p99(w), schedMetric, w.Waits))
	}
	if self != nil && self.Waits > 0 {
		parts = append(parts, fmt.Sprintf("bench %.2f ms, p99 %s", ms(self.Mean), p99(self)))
	}
	return "goroutines waited runnable for a CPU: " + strings.Join(parts, "; ")
}
