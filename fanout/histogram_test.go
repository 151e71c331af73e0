package fanout

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0},
		{time.Microsecond, 0},
		{time.Microsecond + 1, 1},
		{4 * time.Microsecond, 1},
		{time.Millisecond, 5},
		{1 << 20 * time.Microsecond, 10},
		{time.Hour, 11},
	}
	for _, tt := range tests {
		var h histogram
		h.observe(tt.d)
		s := h.load()
		if s.Counts[tt.bucket] != 1 || s.Count != 1 || s.Sum != tt.d {
			t.Errorf("%v: %+v, want bucket %d", tt.d, s, tt.bucket)
		}
	}
}

// TestPublishTimeSampled checks that the hub times one change in
// PublishSample of those the store tells it of.
func TestPublishTimeSampled(t *testing.T) {
	store, hub := newTestHub(t, Config{})
	for i := range 3 * PublishSample {
		store.Apply(quote("AAPL", float64(i+1)))
	}
	s := hub.Stats()
	var n uint64
	for _, c := range s.PublishTime.Counts {
		n += c
	}
	if s.Published != 3*PublishSample || s.PublishTime.Count != 3 || n != 3 {
		t.Fatalf("published %d, timed %d (buckets %d), want %d and 3", s.Published, s.PublishTime.Count, n, 3*PublishSample)
	}
}
