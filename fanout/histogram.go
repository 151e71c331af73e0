package fanout

import (
	"sync/atomic"
	"time"
)

// PublishSample is the share of changes whose Publish is timed: one in
// PublishSample.
const PublishSample = 16

// PublishBuckets are the upper bounds of the publish-time histogram's
// buckets, 1µs to about 1s by factors of 4.
var PublishBuckets = [11]time.Duration{
	1 << 0 * time.Microsecond, 1 << 2 * time.Microsecond, 1 << 4 * time.Microsecond,
	1 << 6 * time.Microsecond, 1 << 8 * time.Microsecond, 1 << 10 * time.Microsecond,
	1 << 12 * time.Microsecond, 1 << 14 * time.Microsecond, 1 << 16 * time.Microsecond,
	1 << 18 * time.Microsecond, 1 << 20 * time.Microsecond,
}

// AgeBuckets are the upper bounds of the buckets of the age histograms
// (PublishAge, WriteWait), 1ms to about 1s by factors of 2: ages are read
// against budgets of tens of milliseconds, which factors of 4 blur.
var AgeBuckets = [11]time.Duration{
	1 << 0 * time.Millisecond, 1 << 1 * time.Millisecond, 1 << 2 * time.Millisecond,
	1 << 3 * time.Millisecond, 1 << 4 * time.Millisecond, 1 << 5 * time.Millisecond,
	1 << 6 * time.Millisecond, 1 << 7 * time.Millisecond, 1 << 8 * time.Millisecond,
	1 << 9 * time.Millisecond, 1 << 10 * time.Millisecond,
}

// Histogram is a copy of a duration histogram.
type Histogram struct {
	// Bounds are the upper bounds of the buckets (PublishBuckets or
	// AgeBuckets).
	Bounds [11]time.Duration
	// Counts holds the observations at most Bounds[i] and more than the
	// bound before it; Counts[len(Bounds)] those over the last bound.
	Counts [12]uint64
	Count  uint64        // observations
	Sum    time.Duration // of every observation
}

// histogram counts durations with atomics: the partitions' appliers
// observe it without sharing a lock. bounds is set before its first use.
type histogram struct {
	bounds *[11]time.Duration
	counts [12]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Int64 // ns
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
	h.count.Add(1)
}

func (h *histogram) load() Histogram {
	s := Histogram{Bounds: *h.bounds}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Count = h.count.Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}
