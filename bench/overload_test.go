package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestRunOverload runs the overload judgement against a real server: the
// step carries the server's conflation counters and the summary reports
// them, and the final state check still runs.
func TestRunOverload(t *testing.T) {
	url, brokers := testServer(t)
	cfg := shortConfig(url, brokers)
	cfg.Overload, cfg.P99Limit = true, time.Hour
	res, err := Run(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	out := summary(t, res)
	t.Log("\n" + out)
	if !res.Passed || res.Final.Skipped != "" || res.Final.Checked == 0 {
		t.Fatalf("run failed or skipped its final check: %v %q", res.Failures, res.Final.Skipped)
	}
	o := res.Steps[0].Overload
	switch {
	case o == nil:
		t.Fatal("no overload figures")
	case o.ServerMessages <= 0 || o.ServerShare < 0 || o.OfferedPerSec <= 0:
		t.Errorf("overload figures %+v: want the server's messages and share read from /metrics", o)
	case !strings.Contains(out, "overload: p99 age") || !strings.Contains(out, "fresh"):
		t.Errorf("summary lacks the overload line or the fresh verdict")
	}
	if w, self := res.Steps[0].SchedWait, res.Steps[0].BenchSchedWait; w == nil || w.Waits <= 0 || self == nil || self.Waits <= 0 ||
		!strings.Contains(out, "waited runnable for a CPU: server") || !strings.Contains(out, "; bench ") {
		t.Errorf("scheduler waits %+v, %+v: want the server's and the benchmark's over the window, in the summary", w, self)
	}
	if m := res.Memory; m == nil || m.Conns != cfg.Conns || m.HeapPerConn == -1 || !strings.Contains(out, "server memory:") {
		t.Errorf("memory %+v: want the server's Go memory per connection of %d, in the summary", m, cfg.Conns)
	}
}

func TestOverloadStats(t *testing.T) {
	st := &Step{Duration: 2 * time.Second, Deliveries: 300, Conflated: 100}
	m0 := map[string]float64{conflatedMetric: 10, messagesMetric: 1000, startsSeries("staleness"): 1, startsSeries("backlog"): 0}
	m1 := map[string]float64{conflatedMetric: 110, messagesMetric: 1300, startsSeries("staleness"): 5, startsSeries("backlog"): 2, conflatingMetric: 3}
	o := overloadStats(st, m0, m1)
	want := OverloadStats{OfferedPerSec: 200, ClientShare: 0.25, ServerConflated: 100, ServerMessages: 300, ServerShare: 0.25,
		Starts: map[string]int64{"staleness": 4, "backlog": 2}, Conflating: 3}
	if o.OfferedPerSec != want.OfferedPerSec || o.ClientShare != want.ClientShare || o.ServerConflated != want.ServerConflated ||
		o.ServerMessages != want.ServerMessages || o.ServerShare != want.ServerShare || o.Conflating != want.Conflating ||
		len(o.Starts) != 2 || o.Starts["staleness"] != 4 || o.Starts["backlog"] != 2 {
		t.Errorf("overloadStats = %+v, want %+v", *o, want)
	}
	// A server without the newer counters, and one whose metrics could
	// not be read.
	old := overloadStats(st, map[string]float64{conflatedMetric: 0, messagesMetric: 0}, map[string]float64{conflatedMetric: 0, messagesMetric: 400})
	if old.Starts != nil || old.Conflating != -1 || old.ServerShare != 0 {
		t.Errorf("without the newer counters: %+v, want no starts, conflating -1, share 0", *old)
	}
	if none := overloadStats(st, nil, m1); none.ServerShare != -1 || none.OfferedPerSec != 0 || none.ClientShare != 0.25 {
		t.Errorf("without metrics: %+v, want server share -1 and the clients' share", *none)
	}
}

func TestJudgeOverload(t *testing.T) {
	r := &runner{cfg: Config{Overload: true, P99Limit: 100 * time.Millisecond}}
	tests := []struct {
		name   string
		st     Step
		errs   int64
		ok     bool
		reason string
	}{
		{"fresh, mostly conflated", Step{Rate: 100, Produced: 100, Duration: time.Second, Deliveries: 10, Conflated: 90,
			Latency: Latency{P99: 80 * time.Millisecond}}, 0, true, ""},
		{"stale", Step{Rate: 100, Produced: 100, Duration: time.Second, Deliveries: 100,
			Latency: Latency{P99: 2 * time.Second}}, 0, false, "p99 age 2s over 100ms"},
		{"feed short", Step{Rate: 100, Produced: 50, Duration: time.Second, Deliveries: 100}, 0, false, "producer reached only 50 of 100"},
		{"errors", Step{Duration: time.Second, Deliveries: 100}, 2, false, "2 errors"},
		{"nothing", Step{Duration: time.Second}, 0, false, "nothing delivered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := r.judge(&tt.st, tt.errs)
			if ok != tt.ok || !strings.Contains(reason, tt.reason) {
				t.Errorf("judge = %t %q, want %t with %q", ok, reason, tt.ok, tt.reason)
			}
		})
	}
}

func TestMemoryPerConn(t *testing.T) {
	before := memorySample{rss: 100 << 20, heap: 20 << 20, stacks: 1 << 20}
	after := memorySample{rss: 100<<20 + 4000*10240, heap: 20<<20 + 4000*6144, stacks: 1<<20 + 4000*4096}
	m := memoryPerConn(before, after, 4000)
	if m.Conns != 4000 || m.RSSPerConn != 10240 || m.HeapPerConn != 6144 || m.StackPerConn != 4096 {
		t.Errorf("memoryPerConn = %+v, want 10240 B RSS, 6144 B heap, 4096 B stacks per connection", *m)
	}
	if got := memoryLine(m); !strings.Contains(got, "10.0 KB per connection") || !strings.Contains(got, "Go heap 6.0 KB + stacks 4.0 KB") {
		t.Errorf("memoryLine = %q", got)
	}
	// Without /proc (a remote or in-process server) or /metrics.
	none := memoryPerConn(memorySample{heap: -1, stacks: -1}, memorySample{heap: -1, stacks: -1}, 10)
	if none.RSSPerConn != 0 || none.HeapPerConn != -1 || none.StackPerConn != -1 || memoryLine(none) != "10 connections open" {
		t.Errorf("without figures: %+v, %q", *none, memoryLine(none))
	}
}

func TestSchedWait(t *testing.T) {
	inf := math.Inf(1)
	s0 := &histSample{buckets: map[float64]float64{1e-6: 10, 1e-3: 20, 0.1: 20, inf: 20}, sum: 0.5}
	s1 := &histSample{buckets: map[float64]float64{1e-6: 50, 1e-3: 920, 0.1: 1020, inf: 1020}, sum: 1.5}
	w := schedWait(s0, s1)
	if w.Waits != 1000 || w.Mean != time.Millisecond || w.P99 != 100*time.Millisecond {
		t.Errorf("schedWait = %+v, want 1000 waits, mean 1ms, p99 at most 100ms", *w)
	}
	s1.buckets[inf] = 1200 // 180 waits over the last bound
	if w := schedWait(s0, s1); w.P99 != -1 || !strings.Contains(schedLine(w, nil), "over the last bucket") {
		t.Errorf("schedWait = %+v, want p99 in the open bucket", *w)
	}
	if schedWait(nil, s1) != nil || schedWait(s0, nil) != nil {
		t.Error("schedWait without both samples is not nil")
	}
	if w := schedWait(s0, s0); w.Waits != 0 {
		t.Errorf("schedWait of no waits = %+v", *w)
	}
}

func TestSelfSchedLatencies(t *testing.T) {
	s0 := selfSchedLatencies()
	done := make(chan struct{})
	for range 100 {
		go func() { done <- struct{}{} }()
		<-done
	}
	s1 := selfSchedLatencies()
	if s0 == nil || s1 == nil {
		t.Fatal("no /sched/latencies:seconds in this runtime")
	}
	w := schedWait(s0, s1)
	if w.Waits <= 0 || w.Mean < 0 || w.P99 == 0 {
		t.Errorf("waits of 100 goroutines started: %+v, want some sampled with a mean and a p99", *w)
	}
	line := schedLine(nil, w)
	if !strings.HasPrefix(line, "goroutines waited runnable for a CPU: bench ") || strings.Contains(line, "server") {
		t.Errorf("schedLine(nil, w) = %q", line)
	}
}

func TestQuantiles(t *testing.T) {
	inf := math.Inf(1)
	s0 := &histSample{buckets: map[float64]float64{0.001: 10, 0.004: 10, 0.016: 10, inf: 10}}
	tests := []struct {
		name     string
		s1       map[float64]float64
		p50, p99 time.Duration
	}{
		// 100 new observations: 50 up to 1 ms, 50 in (1, 4] ms.
		{"two buckets", map[float64]float64{0.001: 60, 0.004: 110, 0.016: 110, inf: 110}, time.Millisecond, 3940 * time.Microsecond},
		// All 100 in (4, 16] ms: p50 halfway, p99 near the bound.
		{"one bucket", map[float64]float64{0.001: 10, 0.004: 10, 0.016: 110, inf: 110}, 10 * time.Millisecond, 15880 * time.Microsecond},
		{"past the last bound", map[float64]float64{0.001: 10, 0.004: 10, 0.016: 10, inf: 110}, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := quantiles(s0, &histSample{buckets: tt.s1})
			near := func(got, want time.Duration) bool { return got-want < time.Microsecond && want-got < time.Microsecond }
			if q.Count != 100 || !near(q.P50, tt.p50) || !near(q.P99, tt.p99) {
				t.Errorf("quantiles %+v, want 100 observations, p50 %v, p99 %v", q, tt.p50, tt.p99)
			}
		})
	}
	if quantiles(nil, s0) != nil || ageSplit(nil, map[string]*histSample{publishAgeMetric: s0}) != nil {
		t.Error("a missing scrape or histogram should give nil")
	}
}
