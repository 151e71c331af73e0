package server

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
)

// churnClient is a benchmark connection: it notes when each ACK arrives,
// counts refused symbols, and keeps the latency (now - ts) of every DELTA.
type churnClient struct {
	gws.BuiltinEventHandler
	mu       sync.Mutex
	acks     map[uint64]time.Time
	refused  int
	latency  []time.Duration
	measured bool // keep latencies
}

func (c *churnClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	now := time.Now()
	var msg codec.Message
	_ = codec.Binary.DecodeMessages(m.Bytes(), &msg, func(msg *codec.Message) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch msg.Op {
		case codec.OpAck:
			c.acks[msg.ID] = now
		case codec.OpError:
			c.refused += len(msg.Syms)
		case codec.OpDelta:
			if c.measured && msg.Mask.Has(codec.FieldTS) {
				c.latency = append(c.latency, now.Sub(time.UnixMicro(int64(msg.Values[codec.FieldTS]))))
			}
		}
		return nil
	})
}

func dialChurn(b *testing.B, addr, query string) (*churnClient, *gws.Conn) {
	b.Helper()
	c := &churnClient{acks: map[uint64]time.Time{}}
	ws, _, err := gws.NewClient(c, &gws.ClientOption{Addr: "ws://" + addr + "/ws" + query,
		RequestHeader: http.Header{"Sec-WebSocket-Protocol": []string{codec.Binary.String()}}})
	if err != nil {
		b.Fatal(err)
	}
	go ws.ReadLoop()
	return c, ws
}

// BenchmarkSubUnsubChurnWire is issue 10's churn over WebSocket, next to
// the embedded feed (500 symbols, 2000 updates/s) and a bystander
// subscribed to 20 of them: one connection SUBs then UNSUBs 1000 ever new
// made-up names per round, 100 rounds (100 000 names) per op. It reports
// the time from sending a SUB to its ACK in the first and last ten rounds
// (medians), the feed's symbols after the run, the process's RSS and heap
// growth over it, and the bystander's p99 latency (event time to receipt)
// during it. The server, broker and clients share this process.
func BenchmarkSubUnsubChurnWire(b *testing.B) {
	const rounds, perSub = 100, 1000
	s := startNode(b, setup{Config: Config{Limits: Limits{RequestRate: 10000, RequestBurst: 10000}}}).Server
	deadline := time.Now().Add(30 * time.Second)
	for !s.node.Ingest().Ready() || s.node.Store().Len() < 500 {
		if time.Now().After(deadline) {
			b.Fatalf("server not ready: %d symbols", s.node.Store().Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	names, _ := s.node.Store().Names("", 20)
	bystander, bws := dialChurn(b, s.Addr(), "?symbols="+strings.Join(names, ","))
	defer bws.WriteClose(1000, nil)
	churner, cws := dialChurn(b, s.Addr(), "")
	defer cws.WriteClose(1000, nil)
	time.Sleep(time.Second)

	heap0, rss0 := heapInUse(), processRSS()
	bystander.mu.Lock()
	bystander.measured = true
	bystander.mu.Unlock()
	var acks []time.Duration
	batch := make([]string, perSub)
	round := 0
	for b.Loop() {
		for range rounds {
			round++
			for i := range batch {
				batch[i] = fmt.Sprintf("M%dX%d", round, i)
			}
			id := uint64(round)
			start := time.Now()
			if err := cws.WriteMessage(gws.OpcodeBinary, codec.Binary.AppendSub(nil, id, batch, nil)); err != nil {
				b.Fatal(err)
			}
			for {
				churner.mu.Lock()
				at, ok := churner.acks[id]
				churner.mu.Unlock()
				if ok {
					acks = append(acks, at.Sub(start))
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			if err := cws.WriteMessage(gws.OpcodeBinary, codec.Binary.AppendUnsub(nil, id, batch)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	bystander.mu.Lock()
	bystander.measured = false
	lat := slices.Clone(bystander.latency)
	bystander.mu.Unlock()
	churner.mu.Lock()
	if churner.refused > 0 {
		b.Errorf("%d names refused", churner.refused)
	}
	churner.mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	median := func(d []time.Duration) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return ms(d[len(d)/2])
	}
	b.ReportMetric(median(acks[:10]), "ack-first-ms")
	b.ReportMetric(median(acks[len(acks)-10:]), "ack-last-ms")
	b.ReportMetric(float64(s.node.Store().Len()), "symbols")
	b.ReportMetric(float64(heapInUse()-heap0)/(1<<20), "heap-growth-MB")
	if r := processRSS(); r > 0 {
		b.ReportMetric(float64(r-rss0)/(1<<20), "rss-growth-MB")
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)*99/100]), "bystander-p99-ms")
	}
}

// heapInUse returns the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// processRSS returns this process's resident set size, or 0 where /proc
// does not tell it.
func processRSS() int64 {
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
