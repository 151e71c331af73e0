package fanout

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
	"github.com/tickstream/tickstream/snapshot"
)

// discardConn is a Transport that only counts what it is given: the
// benchmarks measure the engine, not a client's decoder.
type discardConn struct {
	frames, bytes atomic.Int64
}

func (d *discardConn) WriteFrame(p []byte) error {
	d.frames.Add(1)
	d.bytes.Add(int64(len(p)))
	return nil
}

func (d *discardConn) Close(codec.CloseCode, string) {}

// changeChain hands out changes of one symbol whose states follow each
// other, as the store would produce them, so that a benchmark can call
// Hub.Publish without the store's own allocation per update.
type changeChain struct {
	sym    *snapshot.Symbol
	prev   *snapshot.State
	states []snapshot.State
	next   int
}

func newChangeChain(sym *snapshot.Symbol) *changeChain {
	return &changeChain{sym: sym, prev: sym.Load()}
}

// refill prepares n more states; it allocates and runs outside the timer.
func (c *changeChain) refill(n int) {
	c.states = make([]snapshot.State, n)
	c.next = 0
	p := c.prev
	for i := range c.states {
		st := &c.states[i]
		*st = *p
		st.Seq = p.Seq + 1
		st.Values[codec.FieldBid] = p.Values[codec.FieldBid] + 0.01
		st.Values[codec.FieldTS] = p.Values[codec.FieldTS] + 1
		p = st
	}
}

func (c *changeChain) change() snapshot.Change {
	next := &c.states[c.next]
	c.next++
	ch := snapshot.Change{Symbol: c.sym, Prev: c.prev, Next: next, Mask: 1<<codec.FieldBid | 1<<codec.FieldTS}
	c.prev = next
	return ch
}

// applyQuote gives sym its first state in store, so that it is a feed
// symbol that clients subscribe to.
func applyQuote(store *snapshot.Store, sym string) {
	u := &codec.Update{Sym: []byte(sym)}
	u.Set(codec.FieldTS, 1)
	u.Set(codec.FieldBid, 100)
	_ = store.Apply(u)
}

// publishChain publishes b.N changes of chain on the clock, refilling the
// chain off it.
func publishChain(b *testing.B, hub *Hub, chain *changeChain) {
	const chunk = 1 << 14
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%chunk == 0 {
			b.StopTimer()
			chain.refill(chunk)
			b.StartTimer()
		}
		hub.Publish(chain.change())
	}
	b.StopTimer()
}

// BenchmarkPublish measures Hub.Publish of one quote change to n binary
// subscribers of the same symbol, each with the default (all fields)
// projection: the encode-once path. ns/sub is the cost per subscriber,
// including the writer that hands the frame to the transport.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			store := snapshot.New()
			hub := startHub(b, store, Config{Heartbeat: time.Hour})
			applyQuote(store, "AAPL")
			opts := codec.DefaultSubOptions()
			for range n {
				c := hub.Register(&discardConn{}, ClientOptions{Format: codec.Binary})
				c.Subscribe(1, []string{"AAPL"}, opts)
			}
			chain := newChangeChain(store.Lookup([]byte("AAPL")))
			// The first changes to so many clients allocate the outbound
			// buffers that a steady stream then cycles through the hub's
			// pool: a warm-up off the clock, waited for, fills it.
			const warmUp = 200
			chain.refill(warmUp)
			for range warmUp {
				hub.Publish(chain.change())
			}
			waitIdle(b, hub)
			publishChain(b, hub, chain)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sub")
		})
	}
}

// BenchmarkPublishBesideStuck measures Hub.Publish of one change to 2
// reading subscribers of a symbol beside n clients whose socket takes
// nothing (a write that never returns), as clients that stopped reading
// are once their socket buffer is full. A stuck client's subscriptions are
// parked off the publish path after SoftLag, so the time per change should
// not grow with n.
func BenchmarkPublishBesideStuck(b *testing.B) {
	for _, n := range []int{0, 400} {
		b.Run(fmt.Sprintf("stuck=%d", n), func(b *testing.B) {
			store := snapshot.New()
			hub := startHub(b, store, Config{Heartbeat: 40 * time.Millisecond, SoftLag: 10 * time.Millisecond, SlowGrace: time.Hour})
			applyQuote(store, "AAPL")
			opts := codec.DefaultSubOptions()
			for range 2 {
				hub.Register(&discardConn{}, ClientOptions{Format: codec.Binary}).Subscribe(1, []string{"AAPL"}, opts)
			}
			var stuck []*stuckConn
			for range n {
				sc := newStuckConn()
				stuck = append(stuck, sc)
				hub.Register(sc, ClientOptions{Format: codec.Binary}).Subscribe(1, []string{"AAPL"}, opts)
			}
			defer func() {
				for _, sc := range stuck {
					sc.Close(codec.CloseGoingAway, "")
				}
			}()
			chain := newChangeChain(store.Lookup([]byte("AAPL")))
			// Feed the stuck clients until their writes count as stuck.
			chain.refill(1000)
			for range 1000 {
				hub.Publish(chain.change())
				time.Sleep(100 * time.Microsecond)
			}
			publishChain(b, hub, chain)
		})
	}
}

// BenchmarkDeliver runs the simulator's realistic stream through the store
// and the engine to clients that each subscribe to syms of the market's
// symbols, and reports delivered messages per second and the wire bytes of
// an average DELTA. Each b.N is one ingested update.
func BenchmarkDeliver(b *testing.B) {
	cases := []struct {
		clients, syms, symbols int
		format                 codec.Format
		flush                  time.Duration
	}{
		{1000, 20, 500, codec.Binary, 0},
		{10000, 20, 500, codec.Binary, 0},
		{10000, 20, 500, codec.Binary, time.Millisecond},
		{10000, 20, 500, codec.JSON, time.Millisecond},
	}
	for _, tc := range cases {
		b.Run(fmt.Sprintf("clients=%d/syms=%d/%s/flush=%s", tc.clients, tc.syms, tc.format, tc.flush), func(b *testing.B) {
			store := snapshot.New()
			hub := startHub(b, store, Config{Heartbeat: time.Hour, FlushDelay: tc.flush})
			market := sim.NewMarket(sim.Config{Symbols: tc.symbols, Seed: 1})
			now := time.Now()
			var u codec.Update
			for i := range tc.symbols {
				market.Initial(now, i, &u)
				store.Apply(&u)
			}
			names := market.Symbols()
			opts := codec.DefaultSubOptions()
			opts.Snap = false
			conns := make([]*discardConn, tc.clients)
			for i := range conns {
				conns[i] = &discardConn{}
				c := hub.Register(conns[i], ClientOptions{Format: tc.format})
				pick := make([]string, tc.syms)
				for j := range pick {
					// A spread over the whole list: every symbol has
					// subscribers, the popular ones as many as the rest.
					pick[j] = names[(i*7+j*13)%len(names)]
				}
				c.Subscribe(1, pick, opts)
			}
			waitIdle(b, hub)
			before := hub.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				now = now.Add(time.Microsecond)
				market.Next(now, &u)
				store.Apply(&u)
			}
			waitIdle(b, hub)
			b.StopTimer()
			after := hub.Stats()
			delivered := float64(after.Messages - before.Messages)
			b.ReportMetric(delivered/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(delivered/float64(b.N), "msgs/update")
			if delivered > 0 {
				b.ReportMetric(float64(after.Bytes-before.Bytes)/delivered, "B/msg")
				b.ReportMetric(delivered/float64(after.Frames-before.Frames), "msgs/frame")
			}
		})
	}
}

// waitIdle waits until every client's writer has handed its buffer to the
// transport, so that the figures count what was delivered.
func waitIdle(b *testing.B, h *Hub) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		busy := false
		for _, c := range h.clientList() {
			c.mu.Lock()
			busy = c.wstate == writerBusy || c.out != nil
			c.mu.Unlock()
			if busy {
				break
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("writers still busy after a minute")
		}
		time.Sleep(time.Millisecond)
	}
}
