package fanout

import (
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
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
		h := histogram{bounds: &PublishBuckets}
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

// TestPublishAge checks the age the hub records for the changes it times:
// from the change's ts to the node's clock, 0 for a ts ahead of the clock,
// nothing for a change without a ts.
func TestPublishAge(t *testing.T) {
	tests := []struct {
		name   string
		ts     func() (float64, bool)
		bucket int // -1: not counted
	}{
		{"30ms old", func() (float64, bool) { return float64(time.Now().Add(-30 * time.Millisecond).UnixMicro()), true }, 5},
		{"an hour ahead", func() (float64, bool) { return float64(time.Now().Add(time.Hour).UnixMicro()), true }, 0},
		{"no ts", func() (float64, bool) { return 0, false }, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, hub := newTestHub(t, Config{})
			for i := range PublishSample {
				u := &codec.Update{Sym: []byte("AAPL")}
				u.Set(codec.FieldBid, float64(i+1))
				if ts, ok := tt.ts(); ok {
					u.Set(codec.FieldTS, ts)
				}
				if err := store.Apply(u); err != nil {
					t.Fatal(err)
				}
			}
			age := hub.Stats().PublishAge
			if tt.bucket < 0 {
				if age.Count != 0 {
					t.Fatalf("%d ages counted, want none: %+v", age.Count, age)
				}
				return
			}
			if age.Count != 1 || age.Counts[tt.bucket] != 1 {
				t.Fatalf("ages %+v, want one in bucket %d (≤ %v)", age, tt.bucket, AgeBuckets[tt.bucket])
			}
		})
	}
}
