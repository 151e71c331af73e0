package fanout

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// BenchmarkSubUnsubChurn is the churn of issue 10: one client SUBs then
// UNSUBs ever new made-up names, 1000 per request, next to a feed of 500
// symbols. One op is 100 rounds: 100 000 names. It reports what must stay
// flat: the feed's symbols and the topic table after the run, the growth
// of the heap (after GC) and of the process's RSS over the run, and the
// time to ACK (a SUB's handling, which queues its ACK) in the first and
// the last ten rounds, medians.
func BenchmarkSubUnsubChurn(b *testing.B) {
	const rounds, perSub = 100, 1000
	store := snapshot.New()
	hub := startHub(b, store, Config{Heartbeat: time.Hour})
	for i := range 500 {
		store.Apply(quote(fmt.Sprintf("FEED%d", i), 1))
	}
	churner := hub.Register(&discardConn{}, ClientOptions{Format: codec.Binary})
	names := make([]string, perSub)
	heap0, rss0 := heapInUse(), rss()
	var acks []time.Duration
	round := 0
	for b.Loop() {
		for range rounds {
			for i := range names {
				names[i] = fmt.Sprintf("M%dX%d", round, i)
			}
			round++
			sub := codec.Binary.AppendSub(nil, uint64(round), names, nil)
			start := time.Now()
			churner.HandleFrame(sub)
			acks = append(acks, time.Since(start))
			churner.HandleFrame(codec.Binary.AppendUnsub(nil, uint64(round), names))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	b.ReportMetric(median(acks[:10]), "ack-first-ms")
	b.ReportMetric(median(acks[len(acks)-10:]), "ack-last-ms")
	b.ReportMetric(float64(store.Len()), "symbols")
	b.ReportMetric(float64(len(*hub.topics.Load())), "topics")
	b.ReportMetric(float64(heapInUse()-heap0)/(1<<20), "heap-growth-MB")
	if r := rss(); r > 0 {
		b.ReportMetric(float64(r-rss0)/(1<<20), "rss-growth-MB")
	}
}

// heapInUse returns the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// rss returns the process's resident set size, or 0 where /proc does not
// tell it.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
