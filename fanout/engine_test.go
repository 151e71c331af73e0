package fanout

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConn is a Transport that feeds every frame to a client.Book, which
// checks the protocol's contract as a client does and rebuilds each
// symbol's state. The test's requests go through subscribe and send, which
// tell the Book what to expect; fakeConn itself only records what the
// tests ask about besides (ACKs, ERRORs, the close).
type fakeConn struct {
	t      testing.TB
	format codec.Format
	delay  time.Duration // per frame: a slow reader
	book   *client.Book

	mu     sync.Mutex
	closed codec.CloseCode // close code, 0 while open
	msgs   int
	acks   int
	sids   map[string]uint32 // every sid an ACK gave, by symbol
	errors []codec.Message
}

func newFakeConn(t testing.TB, f codec.Format) *fakeConn {
	return &fakeConn{t: t, format: f, book: client.NewBook(), sids: map[string]uint32{}}
}

func (c *fakeConn) WriteFrame(p []byte) error {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.book.Feed(c.format, p, time.Now(), c.record)
}

// record notes what a message says beyond the state; c.mu is held.
func (c *fakeConn) record(m *codec.Message) {
	c.msgs++
	switch m.Op {
	case codec.OpAck:
		c.acks++
		for _, a := range m.Acks {
			c.sids[a.Sym] = a.SID
		}
	case codec.OpError:
		e := *m
		e.Syms = slices.Clone(m.Syms) // m's are reused
		c.errors = append(c.errors, e)
	}
}

func (c *fakeConn) Close(code codec.CloseCode, _ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == 0 {
		c.closed = code
	}
}

// subscribe has cl subscribe to syms as request id, as the server does for
// the symbols of the upgrade URL.
func (c *fakeConn) subscribe(cl *Client, id uint64, syms []string, opts codec.SubOptions) {
	c.book.NoteSub(id, syms, &opts)
	cl.Subscribe(id, syms, opts)
}

// send hands cl a frame of requests, as a socket would.
func (c *fakeConn) send(cl *Client, frame []byte) {
	var cmd codec.Command
	c.format.DecodeCommands(frame, &cmd, func(cmd *codec.Command, err error) {
		if err != nil {
			c.t.Fatalf("the test sent a broken request: %v", err)
		}
		syms := make([]string, len(cmd.Syms))
		for i, s := range cmd.Syms {
			syms[i] = string(s)
		}
		switch cmd.Op {
		case codec.OpSub:
			c.book.NoteSub(cmd.ID, syms, &cmd.Opts)
		case codec.OpUnsub:
			c.book.NoteUnsub(cmd.ID, syms)
		case codec.OpSnap:
			c.book.NoteSnap(cmd.ID, syms)
		}
	})
	cl.HandleFrame(frame)
}

// seq returns the seq of sym's last SNAPSHOT or DELTA, 0 when none came.
func (c *fakeConn) seq(sym string) uint64 {
	e, _ := c.book.Entry(sym)
	return e.Seq
}

// ackedSIDs returns the sids the client's ACKs gave, by symbol.
func (c *fakeConn) ackedSIDs() map[string]uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.sids)
}

// checkContract fails t if the Book saw a breach of the contract.
func (c *fakeConn) checkContract(t testing.TB) {
	t.Helper()
	if v := c.book.Violations(); len(v) > 0 {
		t.Errorf("%d contract violations, first: %v", c.book.Stats().Violations, v[:min(3, len(v))])
	}
}

func newTestHub(t testing.TB, cfg Config) (*snapshot.Store, *Hub) {
	store := snapshot.New()
	cfg.Heartbeat = max(cfg.Heartbeat, 50*time.Millisecond)
	return store, startHub(t, store, cfg)
}

// startHub returns a hub over store that is closed when the test ends.
func startHub(t testing.TB, store *snapshot.Store, cfg Config) *Hub {
	t.Helper()
	hub, err := NewHub(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close(codec.CloseGoingAway, "test over") })
	return hub
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randomUpdate(r *rand.Rand, sym string) *codec.Update {
	u := &codec.Update{Sym: []byte(sym)}
	for f := 0; f < codec.NumFields; f++ {
		if r.IntN(3) == 0 {
			u.Set(f, float64(r.IntN(20))+0.25*float64(r.IntN(4)))
		}
	}
	return u
}

type subState struct {
	fields codec.FieldMask
}

// TestProperty drives random publishes, subscribes, unsubscribes, SNAPs,
// maxHz, field projections and slow readers, and checks every client's
// view against the store once the feed stops.
func TestProperty(t *testing.T) {
	// A small soft limit makes the slow readers conflate.
	cfg := Config{SoftLimit: 2048, HardLimit: 1 << 20, SlowGrace: time.Minute, MaxFrameSize: 1024}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runProperty(t, seed, cfg, time.Millisecond) })
	}
}

// TestPropertyParking is TestProperty with slow readers whose every frame
// takes longer than the soft lag: they are parked off the publish path and
// put back again and again while they subscribe, unsubscribe and SNAP.
func TestPropertyParking(t *testing.T) {
	cfg := Config{SoftLimit: 2048, HardLimit: 1 << 20, SoftLag: 10 * time.Millisecond, SlowGrace: time.Minute,
		MaxFrameSize: 1024, Heartbeat: 50 * time.Millisecond}
	if stuck := runProperty(t, 4, cfg, 40*time.Millisecond); stuck == 0 {
		t.Error("no client was ever parked")
	}
}

// runProperty runs the property test and returns the most clients it saw
// parked (Stats.Stuck) at once.
func runProperty(t *testing.T, seed uint64, cfg Config, slowDelay time.Duration) (maxStuck int64) {
	r := rand.New(rand.NewPCG(seed, 99))
	store, hub := newTestHub(t, cfg)
	syms := make([]string, 20)
	for i := range syms {
		syms[i] = fmt.Sprintf("S%02d", i)
	}
	// Late symbols have no data until half the steps are done: their
	// subscribers hold reserved names that the feed then takes over.
	late := []string{"L0", "L1", "L2", "L3"}
	lateStart := make(chan struct{})
	subscribable := append(append([]string(nil), syms...), late...)
	type tclient struct {
		conn   *fakeConn
		client *Client
		subs   map[string]subState
		nextID uint64
	}
	var clients []*tclient
	for i := 0; i < 12; i++ {
		f := codec.Binary
		if i%4 == 3 {
			f = codec.JSON
		}
		fc := newFakeConn(t, f)
		if i%3 == 0 {
			fc.delay = slowDelay
		}
		clients = append(clients, &tclient{conn: fc, client: hub.Register(fc, ClientOptions{Format: f}), subs: map[string]subState{}})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			pr := rand.New(rand.NewPCG(seed, uint64(p)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Each publisher owns half the symbols, as a partition would.
				store.Apply(randomUpdate(pr, syms[2*pr.IntN(len(syms)/2)+p]))
				if pr.IntN(50) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}(p)
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		lr := rand.New(rand.NewPCG(seed, 7))
		select {
		case <-stop:
			return
		case <-lateStart:
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Each late symbol in turn first, so that every one gets data.
			sym := late[i%len(late)]
			if i >= len(late) {
				sym = late[lr.IntN(len(late))]
			}
			u := randomUpdate(lr, sym)
			u.Set(codec.FieldTS, float64(i+1)) // never an update that changes nothing
			store.Apply(u)
			if lr.IntN(20) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	frame := func(c *tclient, build func(f codec.Format, dst []byte) []byte) {
		c.conn.send(c.client, build(c.client.Format(), nil))
	}
	for step := 0; step < 400; step++ {
		maxStuck = max(maxStuck, hub.Stats().Stuck)
		if step == 200 {
			if store.Reserved() == 0 {
				t.Error("no late symbol subscribed before it had data: the test does not exercise reserved names")
			}
			close(lateStart)
		}
		c := clients[r.IntN(len(clients))]
		c.nextID++
		id := c.nextID
		pick := []string{subscribable[r.IntN(len(subscribable))], subscribable[r.IntN(len(subscribable))]}
		switch op := r.IntN(10); {
		case op < 5:
			opts := codec.DefaultSubOptions()
			if r.IntN(3) == 0 {
				opts.MaxHz = float64(20 + r.IntN(80))
			}
			if r.IntN(3) == 0 {
				opts.Fields = 1<<codec.FieldBid | 1<<codec.FieldAsk | 1<<codec.FieldTS
			}
			frame(c, func(f codec.Format, d []byte) []byte { return f.AppendSub(d, id, pick, &opts) })
			for _, s := range pick {
				c.subs[s] = subState{fields: opts.Fields}
			}
		case op < 7:
			frame(c, func(f codec.Format, d []byte) []byte { return f.AppendUnsub(d, id, pick) })
			for _, s := range pick {
				delete(c.subs, s)
			}
		case op < 9:
			var have []string
			for _, s := range pick {
				if _, ok := c.subs[s]; ok {
					have = append(have, s)
				}
			}
			if len(have) > 0 {
				frame(c, func(f codec.Format, d []byte) []byte { return f.AppendSnap(d, id, have) })
			}
		default:
			frame(c, func(f codec.Format, d []byte) []byte { return f.AppendPing(d, id, float64(step)) })
		}
		if step%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()

	for i, c := range clients {
		waitFor(t, fmt.Sprintf("client %d to converge", i), func() bool {
			for sym, sub := range c.subs {
				st := store.Lookup([]byte(sym)).Load()
				got, ok := c.conn.book.Entry(sym)
				if !ok {
					return false
				}
				want := st.Mask & sub.fields
				if got.Mask&sub.fields != want {
					return false
				}
				for f := 0; f < codec.NumFields; f++ {
					if want.Has(f) && got.Values[f] != st.Values[f] {
						return false
					}
				}
			}
			return true
		})
		c.conn.checkContract(t)
		c.conn.mu.Lock()
		if c.conn.closed != 0 {
			t.Errorf("client %d closed with %d", i, c.conn.closed)
		}
		if len(c.conn.errors) > 0 {
			t.Errorf("client %d: unexpected errors %+v", i, c.conn.errors)
		}
		c.conn.mu.Unlock()
		c.client.Close(codec.CloseNormal, "")
	}
	st := hub.Stats()
	t.Logf("published %d, messages %d, frames %d, conflated %d", st.Published, st.Messages, st.Frames, st.Conflated)
	if st.Conflated == 0 {
		t.Error("no update was conflated: the slow readers and maxHz did not exercise conflation")
	}
	if st.Clients != 0 || st.Subscriptions != 0 || st.Stuck != 0 {
		t.Fatalf("after close: %d clients, %d subscriptions, %d stuck", st.Clients, st.Subscriptions, st.Stuck)
	}
	return maxStuck
}

func TestTopicTableGrowsOnlyWhenNeeded(t *testing.T) {
	_, hub := newTestHub(t, Config{})
	for id := uint32(1); id <= 100; id++ {
		hub.topic(id, true)
	}
	if n := len(*hub.topics.Load()); n > 256 {
		t.Fatalf("topic table of %d entries for 100 topics", n)
	}
	for id := uint32(1); id <= 100; id++ {
		if hub.topic(id, false) == nil {
			t.Fatalf("topic %d lost", id)
		}
	}
}

// TestWriterPoolSharesWorkers checks that 300 busy clients are written by
// the pool's few workers, each client's deltas in order, and that a client
// is out of the pool's hands once written.
func TestWriterPoolSharesWorkers(t *testing.T) {
	store, hub := newTestHub(t, Config{})
	conns := make([]*fakeConn, 300)
	clients := make([]*Client, len(conns))
	for i := range conns {
		conns[i] = newFakeConn(t, codec.Binary)
		clients[i] = hub.Register(conns[i], ClientOptions{Format: codec.Binary})
		conns[i].subscribe(clients[i], 1, []string{"AAPL"}, codec.DefaultSubOptions())
	}
	most := 0
	for i := range 50 {
		u := &codec.Update{Sym: []byte("AAPL")}
		u.Set(codec.FieldBid, float64(i))
		store.Apply(u)
		hub.writers.mu.Lock()
		most = max(most, len(hub.writers.workers))
		hub.writers.mu.Unlock()
	}
	for i, fc := range conns {
		waitFor(t, "every delta", func() bool { return fc.seq("AAPL") == 50 })
		fc.checkContract(t)
		waitFor(t, "the client out of the pool", func() bool {
			clients[i].mu.Lock()
			defer clients[i].mu.Unlock()
			return clients[i].wstate == writerNone
		})
	}
	// A write that takes a clock tick (2ms; -race, a loaded machine)
	// counts as blocked and gets a worker started in its place, so the
	// bound is loose; a goroutine per busy client would be 300.
	t.Logf("at most %d workers for %d clients (%d cores)", most, len(conns), hub.writers.target)
	if most > len(conns)/10 {
		t.Errorf("%d workers for %d clients whose writes never block, want a few", most, len(conns))
	}
}

// TestWriterPoolBesideBlockedWrites holds a worker in the write of each of
// twice as many clients as the pool has workers, clients that never read:
// the clock tick starts workers in their place, so a client that reads
// still gets every delta.
func TestWriterPoolBesideBlockedWrites(t *testing.T) {
	store, hub := newTestHub(t, Config{SoftLag: time.Minute, SlowGrace: time.Minute})
	opts := codec.DefaultSubOptions()
	for range 2 * hub.writers.target {
		sc := newStuckConn()
		t.Cleanup(func() { sc.Close(codec.CloseGoingAway, "") })
		hub.Register(sc, ClientOptions{Format: codec.Binary}).Subscribe(1, []string{"AAPL"}, opts)
	}
	waitFor(t, "the workers blocked", func() bool { return int(hub.writers.inWrite.Load()) == 2*hub.writers.target })
	fc := newFakeConn(t, codec.Binary)
	fc.subscribe(hub.Register(fc, ClientOptions{Format: codec.Binary}), 1, []string{"AAPL"}, opts)
	for i := range 20 {
		u := &codec.Update{Sym: []byte("AAPL")}
		u.Set(codec.FieldBid, float64(i))
		store.Apply(u)
	}
	waitFor(t, "every delta to the client that reads", func() bool { return fc.seq("AAPL") == 20 })
	fc.checkContract(t)
}

// stuckConn is a Transport whose first write never completes until the
// connection is closed: a client that stopped reading.
type stuckConn struct {
	once    sync.Once
	closing chan struct{}
	mu      sync.Mutex
	code    codec.CloseCode
}

func newStuckConn() *stuckConn { return &stuckConn{closing: make(chan struct{})} }

func (s *stuckConn) WriteFrame([]byte) error {
	<-s.closing
	return fmt.Errorf("connection closed")
}

func (s *stuckConn) Close(code codec.CloseCode, _ string) {
	s.mu.Lock()
	if s.code == 0 {
		s.code = code
	}
	s.mu.Unlock()
	s.once.Do(func() { close(s.closing) })
}

func (s *stuckConn) closeCode() codec.CloseCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

// TestSlowConsumer checks the contract's guarantee 4 for a client that
// stops reading: past the soft limit its deltas are conflated (its backlog
// stops growing with the feed), and over the hard limit for the grace
// period it is closed with 4008; what it never got is counted as dropped,
// and a healthy client beside it gets everything.
func TestSlowConsumer(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"over the hard limit", Config{SoftLimit: 4096, HardLimit: 8192, SlowGrace: 200 * time.Millisecond, Heartbeat: 100 * time.Millisecond}},
		{"a write blocked for the grace", Config{SoftLimit: 1 << 20, HardLimit: 1 << 20, SlowGrace: 200 * time.Millisecond, Heartbeat: 100 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, hub := newTestHub(t, tc.cfg)
			stuck := newStuckConn()
			slow := hub.Register(stuck, ClientOptions{Format: codec.Binary})
			healthy := newFakeConn(t, codec.Binary)
			hc := hub.Register(healthy, ClientOptions{Format: codec.Binary})
			syms := make([]string, 200)
			for i := range syms {
				syms[i] = fmt.Sprintf("S%03d", i)
			}
			slow.Subscribe(1, syms, codec.DefaultSubOptions())
			healthy.subscribe(hc, 1, syms, codec.DefaultSubOptions())
			r := rand.New(rand.NewPCG(4, 2))
			deadline := time.Now().Add(10 * time.Second)
			for stuck.closeCode() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the stuck client was not closed within 10s")
				}
				for range 200 {
					store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
				}
				time.Sleep(time.Millisecond)
			}
			if code := stuck.closeCode(); code != codec.CloseSlowConsumer {
				t.Fatalf("closed with %d, want %d", code, codec.CloseSlowConsumer)
			}
			st := hub.Stats()
			if st.SlowCloses != 1 || st.Dropped == 0 {
				t.Errorf("stats %+v: want one slow close and dropped messages", st)
			}
			if tc.cfg.SoftLimit < tc.cfg.HardLimit && st.Conflated == 0 {
				t.Error("no update was conflated past the soft limit")
			}
			waitFor(t, "the healthy client's deltas", func() bool {
				for _, s := range syms {
					if sym := store.Lookup([]byte(s)); sym != nil && healthy.seq(s) != sym.Load().Seq {
						return false
					}
				}
				return true
			})
			healthy.checkContract(t)
		})
	}
}

// TestConflationOnStuckWrite checks that a client whose socket stops
// taking writes is conflated (then parked) after SoftLag, long before its
// backlog of small deltas would reach SoftLimit, and is not closed before
// SlowGrace.
func TestConflationOnStuckWrite(t *testing.T) {
	store, hub := newTestHub(t, Config{SoftLimit: 1 << 20, HardLimit: 1 << 20, SoftLag: 50 * time.Millisecond,
		SlowGrace: time.Minute, Heartbeat: 40 * time.Millisecond})
	stuck := newStuckConn()
	c := hub.Register(stuck, ClientOptions{Format: codec.Binary})
	syms := make([]string, 50)
	for i := range syms {
		syms[i] = fmt.Sprintf("S%02d", i)
	}
	c.Subscribe(1, syms, codec.DefaultSubOptions())
	r := rand.New(rand.NewPCG(5, 3))
	deadline := time.Now().Add(10 * time.Second)
	parked := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.parked
	}
	for hub.Stats().Conflated == 0 && !parked() {
		if time.Now().After(deadline) {
			t.Fatal("no update conflated 10s into a stuck write")
		}
		for range 50 {
			store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
		}
		time.Sleep(time.Millisecond)
	}
	for range 20_000 {
		store.Apply(randomUpdate(r, syms[r.IntN(len(syms))]))
	}
	c.mu.Lock()
	backlog := c.backlog()
	c.mu.Unlock()
	if backlog > 64<<10 {
		t.Errorf("backlog of %d bytes while conflating 50 symbols", backlog)
	}
	if code := stuck.closeCode(); code != 0 {
		t.Errorf("closed with %d before SlowGrace", code)
	}
}
