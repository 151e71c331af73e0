package server

import (
	"testing"
	"time"
)

// TestRequestLimiter checks the request buckets: the burst goes through,
// then RequestRate a second; the refused requests are a flood once they
// exceed their own bucket (floodFactor times as large and as fast).
func TestRequestLimiter(t *testing.T) {
	l := &Limits{RequestRate: 2, RequestBurst: 3}
	const sec = int64(time.Second)
	r := newRequestLimiter(l, 0)
	type want struct{ ok, flood bool }
	steps := []struct {
		at   int64
		n    int
		want want
	}{
		{0, 3, want{ok: true}},        // the burst
		{0, 30, want{}},               // refused, within the refused bucket
		{0, 1, want{flood: true}},     // the refused bucket is empty: a flood
		{sec / 2, 1, want{ok: true}},  // a token a half second
		{sec / 2, 1, want{}},          // and not two; the refused bucket got 10
		{10 * sec, 3, want{ok: true}}, // refilled to the burst, not beyond
		{10 * sec, 1, want{}},
		{10*sec + sec/4, 1, want{}},         // half a token
		{10*sec + sec/2, 1, want{ok: true}}, // now a whole one
	}
	for i, st := range steps {
		for j := range st.n {
			ok, flood := r.admit(l, st.at)
			if got := (want{ok, flood}); got != st.want {
				t.Fatalf("step %d, request %d at %v: %+v, want %+v", i, j+1, time.Duration(st.at), got, st.want)
			}
		}
	}
}
