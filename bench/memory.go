package bench

import (
	"context"
	"fmt"
)

// Go runtime metrics of the server (Prometheus' Go collector) that the
// memory per connection is read from: heap spans in use and goroutine
// stacks.
const (
	heapInuseMetric  = "go_memstats_heap_inuse_bytes"
	stackInuseMetric = "go_memstats_stack_inuse_bytes"
)

// memorySample is the server's memory at one moment.
type memorySample struct {
	rss int64 // resident set, from /proc; 0 when not measured
	// heap and stacks are the Go runtime's, from /metrics; -1 when not
	// read.
	heap, stacks int64
}

// serverMemory samples the server's memory.
func (r *runner) serverMemory(ctx context.Context) memorySample {
	s := memorySample{heap: -1, stacks: -1}
	if r.pid > 0 && !r.shared {
		if p, err := readProc(r.pid); err == nil {
			s.rss = p.rssBytes
		}
	}
	if m := r.scrapeMetrics(ctx, heapInuseMetric, stackInuseMetric); m != nil {
		if h, ok := m[heapInuseMetric]; ok {
			s.heap = int64(h)
		}
		if st, ok := m[stackInuseMetric]; ok {
			s.stacks = int64(st)
		}
	}
	return s
}

// MemoryStats is the server's memory per open connection: the growth from
// before the connections opened to the end of the first measured window,
// when every connection is subscribed and the feed runs, divided by the
// connections open then. It includes what the server spends for the feed
// at the step's rate, and, with Config.SlowConns, the slow connections'
// memory too.
type MemoryStats struct {
	Conns int `json:"conns"`
	// RSSBefore and RSSAfter are the server's resident set (from /proc,
	// 0 when the server is not on this machine or shares the benchmark's
	// process); RSSPerConn their difference per connection.
	RSSBefore  int64   `json:"rssBefore"`
	RSSAfter   int64   `json:"rssAfter"`
	RSSPerConn float64 `json:"rssPerConn"`
	// HeapPerConn and StackPerConn are the growth of the Go heap in use
	// (go_memstats_heap_inuse_bytes: live objects and garbage not yet
	// collected) and of goroutine stacks (go_memstats_stack_inuse_bytes)
	// per connection, from the server's /metrics; -1 when not read.
	HeapPerConn  float64 `json:"heapPerConn"`
	StackPerConn float64 `json:"stackPerConn"`
}

// memoryPerConn computes the memory per connection from the samples
// before the connections opened and after, with conns open.
func memoryPerConn(before, after memorySample, conns int) *MemoryStats {
	m := &MemoryStats{Conns: conns, RSSBefore: before.rss, RSSAfter: after.rss, HeapPerConn: -1, StackPerConn: -1}
	if conns <= 0 {
		return m
	}
	n := float64(conns)
	if before.rss > 0 && after.rss > 0 {
		m.RSSPerConn = float64(after.rss-before.rss) / n
	}
	if before.heap >= 0 && after.heap >= 0 {
		m.HeapPerConn = float64(after.heap-before.heap) / n
	}
	if before.stacks >= 0 && after.stacks >= 0 {
		m.StackPerConn = float64(after.stacks-before.stacks) / n
	}
	return m
}

// memoryLine describes m for WriteSummary.
func memoryLine(m *MemoryStats) string {
	line := fmt.Sprintf("%d connections open", m.Conns)
	if m.RSSPerConn != 0 {
		line += fmt.Sprintf("; RSS %s -> %s, %.1f KB per connection", bytesText(m.RSSBefore), bytesText(m.RSSAfter), m.RSSPerConn/1024)
	}
	if m.HeapPerConn >= 0 {
		line += fmt.Sprintf("; Go heap %.1f KB + stacks %.1f KB per connection", m.HeapPerConn/1024, m.StackPerConn/1024)
	}
	return line
}
