package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// The server's histograms that split the age of what the clients receive.
const (
	publishAgeMetric = "tickstream_publish_age_seconds"
	writeWaitMetric  = "tickstream_write_wait_seconds"
)

// serverHistograms are the histograms a step reads from the server before
// and after its window.
var serverHistograms = []string{schedMetric, publishAgeMetric, writeWaitMetric}

// AgeSplit is where the age of what the clients received was spent during
// a window, as far as the server can tell: before the engine (the feed:
// producer, brokers, ingest) and in it (waiting for a writer and for the
// write). The rest of the clients' latency was spent after the write: in
// the kernel's socket buffers and in the client reading them.
type AgeSplit struct {
	// AtPublish is the age of the changes when the server published them
	// (tickstream_publish_age_seconds, one change in 16).
	AtPublish Quantiles `json:"atPublish"`
	// InEngine is how long the oldest message of each write waited in the
	// engine (tickstream_write_wait_seconds).
	InEngine Quantiles `json:"inEngine"`
}

// Quantiles summarizes a server histogram over a window, interpolated
// within its buckets (whose bounds grow twofold for the ages); -1 for a quantile past
// the last bound.
type Quantiles struct {
	Count int64         `json:"count"`
	P50   time.Duration `json:"p50"`
	P99   time.Duration `json:"p99"`
}

// ageSplit computes the split between two scrapes of serverHistograms, nil
// when the server does not export both histograms.
func ageSplit(h0, h1 map[string]*histSample) *AgeSplit {
	pub, wait := quantiles(h0[publishAgeMetric], h1[publishAgeMetric]), quantiles(h0[writeWaitMetric], h1[writeWaitMetric])
	if pub == nil || wait == nil {
		return nil
	}
	return &AgeSplit{AtPublish: *pub, InEngine: *wait}
}

// quantiles computes the p50 and p99 of the observations between s0 and
// s1, nil without both.
func quantiles(s0, s1 *histSample) *Quantiles {
	if s0 == nil || s1 == nil {
		return nil
	}
	bounds := slices.Sorted(maps.Keys(s1.buckets))
	total := s1.buckets[math.Inf(1)] - s0.buckets[math.Inf(1)]
	q := &Quantiles{Count: int64(total)}
	if total <= 0 {
		return q
	}
	at := func(p float64) time.Duration {
		rank := p * total
		lo, below := 0.0, 0.0
		for _, b := range bounds {
			n := s1.buckets[b] - s0.buckets[b]
			if n >= rank {
				if math.IsInf(b, 1) {
					return -1
				}
				return time.Duration((lo + (rank-below)/(n-below)*(b-lo)) * float64(time.Second))
			}
			lo, below = b, n
		}
		return -1
	}
	q.P50, q.P99 = at(0.50), at(0.99)
	return q
}

// ageLine describes a step's age split beside the clients' latency for
// WriteSummary.
func ageLine(a *AgeSplit, clients Latency) string {
	q := func(d time.Duration) string {
		if d < 0 {
			return "over 1 s"
		}
		return fmt.Sprintf("%.3g ms", ms(d))
	}
	return fmt.Sprintf("where the age was spent: before the engine p50 %s, p99 %s (%s: producer, brokers, ingest); in the engine p50 %s, p99 %s (%s); at the clients p50 %.3g ms, p99 %.3g ms, the rest after the write (socket buffers, the client reading)",
		q(a.AtPublish.P50), q(a.AtPublish.P99), publishAgeMetric, q(a.InEngine.P50), q(a.InEngine.P99), writeWaitMetric, ms(clients.P50), ms(clients.P99))
}
