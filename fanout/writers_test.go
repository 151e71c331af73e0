package fanout

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// spinConn is a Transport whose writes take the core for a while without
// blocking, as writes to sockets that take them do.
type spinConn struct {
	spin   time.Duration
	frames *atomic.Int64
}

func (s spinConn) WriteFrame([]byte) error {
	for start := time.Now(); time.Since(start) < s.spin; {
	}
	s.frames.Add(1)
	return nil
}

func (spinConn) Close(codec.CloseCode, string) {}

// TestBusyWritersLetOthersRun holds the writer pool busy on one core and
// counts the frames written between a timer's due time and the moment its
// goroutine runs: the ingest, the hub's clock and the pacing timers wait
// like it behind a busy pool. Workers that never yield leave the core only
// when Go preempts them, after 10ms, some 500 frames of 20µs here.
func TestBusyWritersLetOthersRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// No HEARTBEATs: they would keep the pool busy all along.
	store, hub := newTestHub(t, Config{Heartbeat: time.Hour})
	const clients = 3000
	var frames atomic.Int64
	apply(t, store, "AAPL", 1)
	for i := range clients {
		c := hub.Register(spinConn{spin: 20 * time.Microsecond, frames: &frames}, ClientOptions{Format: codec.Binary})
		c.Subscribe(uint64(i+1), []string{"AAPL"}, codec.DefaultSubOptions())
	}
	waitFor(t, "the writers to finish the SNAPSHOTs", func() bool {
		n := frames.Load()
		time.Sleep(20 * time.Millisecond)
		return n >= clients && frames.Load() == n
	})

	// One change queues every client: 60ms of writes on the one core.
	frames.Store(0)
	apply(t, store, "AAPL", 2)
	armed := frames.Load()
	ran := make(chan int64)
	time.AfterFunc(time.Millisecond, func() { ran <- frames.Load() })
	behind := <-ran - armed
	t.Logf("%d frames written between arming a 1ms timer and its run (%d frames in all)", behind, clients)
	if behind > 250 {
		t.Errorf("a timer due in 1ms ran %d frames of 20µs later: the workers held the core", behind)
	}
	waitFor(t, "the change to every client", func() bool { return frames.Load() >= clients })
}

// apply gives sym a new bid.
func apply(t *testing.T, store *snapshot.Store, sym string, bid float64) {
	t.Helper()
	u := &codec.Update{Sym: []byte(sym)}
	u.Set(codec.FieldBid, bid)
	if err := store.Apply(u); err != nil {
		t.Fatalf("apply %s: %v", sym, err)
	}
}

// TestSurplusWorkersEnd checks that the workers started in place of
// blocked ones end once their writes are over, also while clients are
// queued: under overload the queue never empties.
func TestSurplusWorkersEnd(t *testing.T) {
	p := &writerPool{target: 2}
	p.wait.L = &p.mu
	for range 4 {
		p.workers = append(p.workers, &worker{})
	}
	c := &Client{}
	p.queue = []queued{{c: c}, {c: c}, {c: c}}
	for _, want := range []struct {
		client  *Client
		workers int
	}{{nil, 3}, {nil, 2}, {c, 2}} {
		got := p.next(p.workers[len(p.workers)-1])
		if got != want.client || len(p.workers) != want.workers {
			t.Fatalf("next = %p with %d workers left, want %p with %d", got, len(p.workers), want.client, want.workers)
		}
	}
	// A worker in a write counts as blocked: one more may write meanwhile.
	p.workers = append(p.workers, &worker{})
	p.inWrite.Store(1)
	if got := p.next(p.workers[2]); got != c || len(p.workers) != 3 {
		t.Fatalf("next = %p with %d workers, one in a write: want the client, 3 workers", got, len(p.workers))
	}
}
