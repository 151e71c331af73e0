package fanout

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// gatedConn is a fakeConn whose writes wait until the gate opens: a client
// that does not read, until it does. Close releases a waiting write with
// an error, as closing a socket does.
type gatedConn struct {
	*fakeConn
	gate      chan struct{}
	closing   chan struct{}
	openOnce  sync.Once
	closeOnce sync.Once
}

func newGatedConn(t testing.TB, f codec.Format) *gatedConn {
	return &gatedConn{fakeConn: newFakeConn(t, f), gate: make(chan struct{}), closing: make(chan struct{})}
}

func (g *gatedConn) open() { g.openOnce.Do(func() { close(g.gate) }) }

func (g *gatedConn) WriteFrame(p []byte) error {
	select {
	case <-g.gate:
		return g.fakeConn.WriteFrame(p)
	case <-g.closing:
		return fmt.Errorf("connection closed")
	}
}

func (g *gatedConn) Close(code codec.CloseCode, reason string) {
	g.fakeConn.Close(code, reason)
	g.closeOnce.Do(func() { close(g.closing) })
}

func (g *gatedConn) closeCode() codec.CloseCode {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func symbols(n int) []string {
	syms := make([]string, n)
	for i := range syms {
		syms[i] = fmt.Sprintf("S%03d", i)
	}
	return syms
}

// TestSnapFloodStaysBounded holds the backlog of a client that does not
// read and asks for the snapshots of its 500 symbols again and again (the
// hostile client of issue 10) to the hard limit and one message: the
// snapshots it asks for while congested are put off and sent once, with
// the newest state, when its socket takes data again. The client then
// holds every symbol's current state, with no ordering violation.
func TestSnapFloodStaysBounded(t *testing.T) {
	const soft, hard = 64 << 10, 256 << 10
	store, hub := newTestHub(t, Config{SoftLimit: soft, HardLimit: hard, SoftLag: 20 * time.Millisecond,
		SlowGrace: time.Minute, Heartbeat: 50 * time.Millisecond})
	conn := newGatedConn(t, codec.JSON)
	c := hub.Register(conn, ClientOptions{Format: codec.JSON})
	syms := symbols(500)
	conn.subscribe(c, 1, syms, codec.DefaultSubOptions())
	r := rand.New(rand.NewPCG(10, 3))
	for _, s := range syms {
		store.Apply(randomUpdate(r, s))
	}
	snap := codec.JSON.AppendSnap(nil, 2, syms)
	// The largest message: one full JSON SNAPSHOT, well under 1 KiB.
	const maxMessage = 1 << 10
	peak := 0
	for i := range 400 {
		conn.send(c, snap)
		for range 20 {
			store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
		}
		c.mu.Lock()
		peak = max(peak, c.backlog())
		c.mu.Unlock()
		if i%50 == 0 {
			time.Sleep(5 * time.Millisecond) // let the hub's clock and the soft lag move
		}
	}
	t.Logf("peak backlog %d bytes after 400 SNAPs of 500 symbols (soft limit %d, hard limit %d)", peak, soft, hard)
	if peak > hard+maxMessage {
		t.Errorf("backlog reached %d bytes, over the hard limit %d and one message", peak, hard)
	}
	if code := conn.closeCode(); code != 0 {
		t.Fatalf("closed with %d: a SNAP flood's snapshots must be conflated, not held to the hard limit", code)
	}

	conn.open()
	waitCurrent(t, conn, store, syms)
	for _, s := range syms {
		st := store.Lookup([]byte(s)).Load()
		if got, ok := conn.book.Entry(s); !ok || got.Mask != st.Mask || got.Values != st.Values {
			t.Fatalf("%s: client holds %v (mask %b), store %v (mask %b)", s, got.Values, got.Mask, st.Values, st.Mask)
		}
	}
}

// TestRepliesOverHardLimit checks the bound for the replies that are never
// merged: a client that sends PINGs and reads nothing is closed with 4008
// once its backlog would pass the hard limit, long before SlowGrace, and
// its backlog never passes the hard limit by more than one message.
func TestRepliesOverHardLimit(t *testing.T) {
	const hard = 16 << 10
	_, hub := newTestHub(t, Config{SoftLimit: 4 << 10, HardLimit: hard, SlowGrace: time.Minute})
	conn := newGatedConn(t, codec.Binary)
	c := hub.Register(conn, ClientOptions{Format: codec.Binary})
	var ping []byte
	for i := range 50 {
		ping = codec.Binary.AppendPing(ping, uint64(i+1), 0)
	}
	peak := 0
	for range 200 {
		conn.send(c, ping)
		c.mu.Lock()
		peak = max(peak, c.backlog())
		c.mu.Unlock()
	}
	t.Logf("peak backlog %d bytes, hard limit %d", peak, hard)
	// A PONG is about 30 bytes.
	if peak > hard+64 {
		t.Errorf("backlog reached %d bytes, over the hard limit %d and one message", peak, hard)
	}
	waitFor(t, "the close", func() bool { return conn.closeCode() != 0 })
	if code := conn.closeCode(); code != codec.CloseSlowConsumer {
		t.Fatalf("closed with %d, want %d", code, codec.CloseSlowConsumer)
	}
	if st := hub.Stats(); st.SlowCloses != 1 || st.Dropped == 0 {
		t.Errorf("stats %+v: want one slow close and dropped messages", st)
	}
}

// TestCloseAfterFlush checks the flood close: the replies queued before
// it reach the client, in order, before the close; requests after it get
// no answer; and a client that does not read is closed anyway after
// SlowGrace.
func TestCloseAfterFlush(t *testing.T) {
	t.Run("reading client", func(t *testing.T) {
		_, hub := newTestHub(t, Config{SlowGrace: time.Minute})
		conn := newGatedConn(t, codec.Binary)
		c := hub.Register(conn, ClientOptions{Format: codec.Binary})
		for i := range 20 {
			conn.send(c, codec.Binary.AppendPing(nil, uint64(i+1), 0))
		}
		c.CloseAfterFlush(1008, "request flood")
		conn.send(c, codec.Binary.AppendPing(nil, 99, 0))
		if code := conn.closeCode(); code != 0 {
			t.Fatalf("closed with %d before the queued replies were written", code)
		}
		conn.open()
		waitFor(t, "the close", func() bool { return conn.closeCode() != 0 })
		conn.mu.Lock()
		defer conn.mu.Unlock()
		if conn.closed != 1008 {
			t.Errorf("closed with %d, want 1008", conn.closed)
		}
		// HELLO and the 20 PONGs; not the PING sent after the close.
		if conn.msgs != 21 {
			t.Errorf("%d messages before the close, want HELLO and 20 PONGs", conn.msgs)
		}
	})
	t.Run("client that does not read", func(t *testing.T) {
		_, hub := newTestHub(t, Config{SlowGrace: 100 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
		conn := newGatedConn(t, codec.Binary)
		c := hub.Register(conn, ClientOptions{Format: codec.Binary})
		conn.send(c, codec.Binary.AppendPing(nil, 1, 0))
		start := time.Now()
		c.CloseAfterFlush(1008, "request flood")
		waitFor(t, "the close", func() bool { return conn.closeCode() != 0 })
		t.Logf("closed %v after CloseAfterFlush (SlowGrace 100ms)", time.Since(start).Round(time.Millisecond))
		if code := conn.closeCode(); code != 1008 {
			t.Errorf("closed with %d, want 1008", code)
		}
	})
}

// TestStuckClientIsParked checks that a client whose socket takes nothing
// for SoftLag costs the publisher nothing: its subscriptions leave their
// topics' lists. When its socket takes data again they come back, and the
// client converges to the store's state with the ordering guarantees kept.
func TestStuckClientIsParked(t *testing.T) {
	store, hub := newTestHub(t, Config{SoftLag: 30 * time.Millisecond, SlowGrace: time.Minute, Heartbeat: 50 * time.Millisecond})
	conn := newGatedConn(t, codec.Binary)
	c := hub.Register(conn, ClientOptions{Format: codec.Binary})
	syms := symbols(50)
	conn.subscribe(c, 1, syms, codec.DefaultSubOptions())
	r := rand.New(rand.NewPCG(7, 7))
	var topics []*topic
	c.mu.Lock()
	for _, s := range c.subs {
		topics = append(topics, s.list())
	}
	c.mu.Unlock()
	listed := func() (n int) {
		for _, tp := range topics {
			if p := tp.subs.Load(); p != nil {
				n += len(*p)
			}
		}
		return n
	}
	waitFor(t, "the stuck client parked", func() bool {
		for range 20 {
			store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
		}
		time.Sleep(time.Millisecond)
		return listed() == 0
	})
	if n := hub.Stats().Stuck; n != 1 {
		t.Errorf("Stats.Stuck %d while parked, want 1", n)
	}
	for range 2000 {
		store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
	}
	conn.open()
	waitFor(t, "the subscriptions back on their topics", func() bool { return listed() == len(syms) })
	if n := hub.Stats().Stuck; n != 0 {
		t.Errorf("Stats.Stuck %d once unparked, want 0", n)
	}
	for range 2000 {
		store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
	}
	waitCurrent(t, conn, store, syms)
	for _, s := range syms {
		st := store.Lookup([]byte(s)).Load()
		if got, ok := conn.book.Entry(s); !ok || got.Values != st.Values {
			t.Fatalf("%s: client holds %v, store %v", s, got.Values, st.Values)
		}
	}
	if code := conn.closeCode(); code != 0 {
		t.Fatalf("closed with %d", code)
	}
}

// waitCurrent waits until conn has seen every symbol of syms at the store's
// seq, and checks that it got there within the contract.
func waitCurrent(t *testing.T, conn *gatedConn, store *snapshot.Store, syms []string) {
	t.Helper()
	waitFor(t, "every symbol's current state", func() bool {
		for _, s := range syms {
			if conn.seq(s) != store.Lookup([]byte(s)).Load().Seq {
				return false
			}
		}
		return true
	})
	conn.checkContract(t)
}
