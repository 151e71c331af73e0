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

// Histogram is a copy of a duration histogram over PublishBuckets.
type Histogram struct {
	// Counts holds the observations at most PublishBuckets[i] and more
	// than the bound before it; Counts[len(PublishBuckets)] those over the
	// last bound.
	Counts [len(PublishBuckets) + 1]uint64
	Count  uint64        // observations
	Sum    time.Duration // of every observation
}

// histogram counts durations with atomics: the partitions' appliers
// observe it without sharing a lock.
type histogram struct {
	counts [len(PublishBuckets) + 1]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Int64 // ns
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(PublishBuckets) && d > PublishBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
	h.count.Add(1)
}

func (h *histogram) load() Histogram {
	var s Histogram
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Count = h.count.Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}
