package fanout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// testBars is the BarSource of the engine's tests: trade bars of every
// change that sets last (size lastSize), by event time, late trades into
// the newest bar — the rules of PROTOCOL.md §17 that the engine relies on,
// without the bars package's quotes-only and memory rules. It sits between
// the store and the hub as the node's bars store does.
type testBars struct {
	lens  []int64 // interval lengths in µs
	names []string
	hub   snapshot.Observer
	// hold, when set, is called before each change is applied: a test
	// holds the bars behind the store's state with it.
	hold func()

	mu     sync.Mutex
	series map[*snapshot.Symbol]*testSeries
}

type testSeries struct {
	bars    [][]codec.Bar // by interval
	seq     uint64        // the last change applied
	touched uint64        // the last change that moved the bars
}

func newTestBars() *testBars {
	return &testBars{lens: []int64{1e6, 60e6}, names: []string{"1s", "1m"}, series: map[*snapshot.Symbol]*testSeries{}}
}

// newBarsHub returns a store whose changes go through a testBars to a hub.
func newBarsHub(t testing.TB, cfg Config) (*snapshot.Store, *testBars, *Hub) {
	store := snapshot.New()
	src := newTestBars()
	cfg.Bars = src
	cfg.Heartbeat = max(cfg.Heartbeat, 50*time.Millisecond)
	hub := startHub(t, store, cfg)
	src.hub = hub
	store.SetObserver(src)
	return store, src, hub
}

func (b *testBars) Publish(c snapshot.Change) {
	if b.hold != nil {
		b.hold()
	}
	b.mu.Lock()
	s := b.series[c.Symbol]
	if s == nil {
		s = &testSeries{bars: make([][]codec.Bar, len(b.lens))}
		b.series[c.Symbol] = s
	}
	s.seq = c.Next.Seq
	if c.Mask.Has(codec.FieldLast) || c.Mask.Has(codec.FieldLastSize) {
		s.touched = c.Next.Seq
		px, size, ts := c.Next.Values[codec.FieldLast], c.Next.Values[codec.FieldLastSize], int64(c.Next.Values[codec.FieldTS])
		for i, l := range b.lens {
			bars := s.bars[i]
			t := ts - ts%l
			if n := len(bars); n > 0 && t <= bars[n-1].T {
				last := &bars[n-1]
				last.High, last.Low, last.Close = max(last.High, px), min(last.Low, px), px
				last.Volume += size
				last.Trades++
				continue
			}
			s.bars[i] = append(bars, codec.Bar{T: t, Open: px, High: px, Low: px, Close: px, Volume: size, Trades: 1})
		}
	}
	b.mu.Unlock()
	b.hub.Publish(c)
}

func (b *testBars) IntervalIndex(name string) (int, bool) {
	i := slices.Index(b.names, name)
	return i, i >= 0
}

func (b *testBars) IntervalNames() string { return strings.Join(b.names, ", ") }

func (b *testBars) AppendHistory(dst []codec.Bar, sym *snapshot.Symbol, i int, since int64, n int) ([]codec.Bar, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.series[sym]
	if s == nil {
		return dst, 0
	}
	bars := s.bars[i]
	from, _ := slices.BinarySearchFunc(bars, since, func(b codec.Bar, t int64) int { return int(b.T - t) })
	if n > 0 && len(bars)-from > n {
		from = len(bars) - n
	}
	return append(dst, bars[from:]...), s.seq
}

func (b *testBars) Last(sym *snapshot.Symbol, i int) (codec.Bar, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.series[sym]
	if s == nil || len(s.bars[i]) == 0 {
		return codec.Bar{}, 0, false
	}
	return s.bars[i][len(s.bars[i])-1], s.seq, true
}

func (b *testBars) Touched(c snapshot.Change) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.series[c.Symbol]
	return s != nil && s.touched == c.Next.Seq
}

// history returns every bar of sym at interval i.
func (b *testBars) history(store *snapshot.Store, sym string, i int) []codec.Bar {
	bars, _ := b.AppendHistory(nil, store.Lookup([]byte(sym)), i, 0, 0)
	return bars
}

// trade applies a trade of sym at event time ts (µs).
func trade(store *snapshot.Store, sym string, ts int64, px, size float64) {
	u := &codec.Update{Sym: []byte(sym)}
	u.Set(codec.FieldTS, float64(ts))
	u.Set(codec.FieldLast, px)
	u.Set(codec.FieldLastSize, size)
	if err := store.Apply(u); err != nil {
		panic(err)
	}
}

// bid applies a bid of sym: a change that moves no bar.
func bid(store *snapshot.Store, sym string, ts int64, bid float64) {
	u := &codec.Update{Sym: []byte(sym)}
	u.Set(codec.FieldTS, float64(ts))
	u.Set(codec.FieldBid, bid)
	if err := store.Apply(u); err != nil {
		panic(err)
	}
}

func barOpts(interval string, count int) codec.SubOptions {
	o := codec.DefaultSubOptions()
	o.Bars, o.BarCount = interval, count
	return o
}

// checkBars fails t unless the bars fc holds for sym are the source's from
// the first bar the client holds on, and, with all, every bar of the
// source.
func checkBars(t testing.TB, fc *fakeConn, store *snapshot.Store, src *testBars, sym string, all bool) {
	t.Helper()
	interval, _, got, ok := fc.book.Bars(sym)
	if !ok {
		if len(src.history(store, sym, 0)) > 0 || len(src.history(store, sym, 1)) > 0 {
			t.Errorf("%s: no bars held", sym)
		}
		return
	}
	want := src.history(store, sym, slices.Index(src.names, interval))
	if !all && len(got) > 0 {
		i := slices.IndexFunc(want, func(b codec.Bar) bool { return b.T >= got[0].T })
		want = want[max(i, 0):]
	}
	if !reflect.DeepEqual(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s %s: the client holds %d bars, the source %d; the first %d agree, then\n got %v\nwant %v",
			sym, interval, len(got), len(want), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
	}
}

// waitBars waits until fc holds the source's bars of sym (as checkBars
// compares them).
func waitBars(t testing.TB, fc *fakeConn, store *snapshot.Store, src *testBars, sym string, all bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ft := &recordingTB{TB: t}
		checkBars(ft, fc, store, src, sym, all)
		if !ft.failed {
			return
		}
		if time.Now().After(deadline) {
			checkBars(t, fc, store, src, sym, all)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordingTB notes a failure instead of reporting it, so that a check can
// be retried until it holds.
type recordingTB struct {
	testing.TB
	failed bool
}

func (r *recordingTB) Errorf(string, ...any) { r.failed = true }
func (r *recordingTB) Helper()               {}

// TestBarsRefused: a SUB whose bar options do not hold is refused whole
// with ERROR 400 and changes nothing — no ACK, the subscription it would
// have replaced keeps its options — whether the codec or the hub refuses
// it, and whether bars are on or off.
func TestBarsRefused(t *testing.T) {
	tests := []struct {
		name    string
		barsOff bool
		sub     string // JSON SUB of AAPL with id 2
		text    string
	}{
		{"unknown interval", false, `[1,2,["AAPL"],{"fields":["bid"],"bars":"5m","barCount":10}]`,
			`bad request: option bars: unknown interval "5m" (this server has 1s, 1m)`},
		{"barCount out of range", false, `[1,2,["AAPL"],{"fields":["bid"],"bars":"1m","barCount":10001}]`,
			"bad request: option barCount must be an integer from 1 to 10000"},
		{"barCount without bars", false, `[1,2,["AAPL"],{"fields":["bid"],"barCount":10}]`,
			"bad request: option barCount needs option bars"},
		{"barCount and barSince", false, `[1,2,["AAPL"],{"fields":["bid"],"bars":"1m","barCount":10,"barSince":0}]`,
			"bad request: options barCount and barSince exclude each other"},
		{"bars off", true, `[1,2,["AAPL"],{"fields":["bid"],"bars":"1m"}]`,
			"bad request: bars are off on this server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var store *snapshot.Store
			var hub *Hub
			if tt.barsOff {
				store, hub = newTestHub(t, Config{})
			} else {
				store, _, hub = newBarsHub(t, Config{})
			}
			fc := newFakeConn(t, codec.JSON)
			c := hub.Register(fc, ClientOptions{Format: codec.JSON})
			fc.subscribe(c, 1, []string{"AAPL"}, codec.DefaultSubOptions())
			trade(store, "AAPL", 1e6, 10, 1)
			waitFor(t, "the first DELTA", func() bool { return fc.seq("AAPL") == 1 })
			c.HandleFrame([]byte(tt.sub)) // not noted in the Book: it must change nothing the Book knows
			waitFor(t, "the ERROR", func() bool { fc.mu.Lock(); defer fc.mu.Unlock(); return len(fc.errors) == 1 })
			trade(store, "AAPL", 2e6, 11, 2)
			waitFor(t, "the next DELTA", func() bool { return fc.seq("AAPL") == 2 })
			fc.mu.Lock()
			e, acks := fc.errors[0], fc.acks
			fc.mu.Unlock()
			if e.ID != 2 || e.Code != 400 || e.Text != tt.text || len(e.Syms) != 0 {
				t.Errorf("ERROR %d %d %q %v, want 2 400 %q", e.ID, e.Code, e.Text, e.Syms, tt.text)
			}
			if acks != 1 {
				t.Errorf("%d ACKs: the refused SUB was acknowledged", acks)
			}
			// The subscription still has every field and no bars.
			if got, _ := fc.book.Entry("AAPL"); got.Mask != 1<<codec.FieldTS|1<<codec.FieldLast|1<<codec.FieldLastSize || got.Values[codec.FieldLast] != 11 {
				t.Errorf("state %+v: the subscription changed", got)
			}
			st := fc.book.Stats()
			if st.Messages[codec.OpBars]+st.Messages[codec.OpBar] != 0 {
				t.Errorf("bars sent to a refused SUB: %v", st.Messages)
			}
			fc.checkContract(t)
		})
	}
}

// TestBarsHistoryThenLive: a SUB with barCount gets its SNAPSHOT, then one
// BARS of the last bars, then a BAR after each DELTA of a trade and none
// for a quote; a rollover appends a bar. In both formats.
func TestBarsHistoryThenLive(t *testing.T) {
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		t.Run(f.String(), func(t *testing.T) {
			store, src, hub := newBarsHub(t, Config{})
			for i := range 5 {
				trade(store, "AAPL", int64(i)*1e6+500, 100+float64(i), 10)
			}
			var kinds []string
			fc := newFakeConn(t, f)
			book := fc.book
			c := hub.Register(recordOps(fc, &kinds), ClientOptions{Format: f})
			fc.subscribe(c, 1, []string{"AAPL"}, barOpts("1s", 3))
			waitFor(t, "the BARS", func() bool { _, _, _, ok := book.Bars("AAPL"); return ok })
			if _, seq, bars, _ := book.Bars("AAPL"); seq != 5 || len(bars) != 3 || bars[0].T != 2e6 {
				t.Fatalf("BARS seq %d, %v: want the last 3 bars at seq 5", seq, bars)
			}
			bid(store, "AAPL", 4e6+900, 99) // moves no bar
			trade(store, "AAPL", 4e6+950, 105, 5)
			trade(store, "AAPL", 5e6+1, 106, 1) // a new bar
			waitFor(t, "the last DELTA", func() bool { return fc.seq("AAPL") == 8 })
			waitBars(t, fc, store, src, "AAPL", false)
			fc.mu.Lock()
			got := strings.Join(kinds, " ")
			fc.mu.Unlock()
			if want := "HELLO ACK SNAPSHOT BARS DELTA DELTA BAR DELTA BAR"; got != want {
				t.Errorf("messages %s\nwant     %s", got, want)
			}
			if _, _, bars, _ := book.Bars("AAPL"); len(bars) != 4 || bars[2].Close != 105 || bars[2].Trades != 2 || bars[3].T != 5e6 {
				t.Errorf("bars %v", bars)
			}
			fc.checkContract(t)
		})
	}
}

// opRecorder is a Transport that notes the op of every message it passes
// on to its fakeConn.
type opRecorder struct {
	*fakeConn
	kinds *[]string
}

func recordOps(fc *fakeConn, kinds *[]string) *opRecorder {
	return &opRecorder{fakeConn: fc, kinds: kinds}
}

var opNames = map[codec.Op]string{codec.OpHello: "HELLO", codec.OpAck: "ACK", codec.OpSnapshot: "SNAPSHOT",
	codec.OpDelta: "DELTA", codec.OpBars: "BARS", codec.OpBar: "BAR", codec.OpError: "ERROR", codec.OpHeartbeat: "HEARTBEAT"}

func (r *opRecorder) WriteFrame(p []byte) error {
	var m codec.Message
	_ = r.format.DecodeMessages(p, &m, func(m *codec.Message) error {
		if m.Op != codec.OpHeartbeat {
			r.fakeConn.mu.Lock()
			*r.kinds = append(*r.kinds, opNames[m.Op])
			r.fakeConn.mu.Unlock()
		}
		return nil
	})
	return r.fakeConn.WriteFrame(p)
}

// TestBarsAfterPutOffSnapshot: on a congested connection a SUB's
// SNAPSHOTs are put off until the writer drains ("snapshot due"), and each
// BARS still comes right after its SNAPSHOT; the same for SNAP and for a
// SUB with snap false, whose BARS is put off alone.
func TestBarsAfterPutOffSnapshot(t *testing.T) {
	for _, snap := range []bool{true, false} {
		t.Run(fmt.Sprint("snap=", snap), func(t *testing.T) {
			store, src, hub := newBarsHub(t, Config{SoftLimit: 1024, HardLimit: 1 << 20, SlowGrace: time.Minute})
			syms := make([]string, 30)
			for i := range syms {
				syms[i] = fmt.Sprintf("S%02d", i)
				for k := range 40 {
					trade(store, syms[i], int64(k)*1e6, 100+float64(k%7), 1)
				}
			}
			gate := newGatedConn(t, codec.Binary)
			c := hub.Register(gate, ClientOptions{Format: codec.Binary})
			waitFor(t, "HELLO in flight", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.inflight > 0 })
			opts := barOpts("1s", 50) // every bar: those of now and those to come
			opts.Snap = snap
			gate.fakeConn.subscribe(c, 1, syms, opts)
			if snap {
				gate.fakeConn.send(c, codec.Binary.AppendSnap(nil, 2, syms[:10]))
			}
			c.mu.Lock()
			putOff := 0
			for _, s := range c.subs {
				if s.snapDue || s.bars.historyDue {
					putOff++
				}
			}
			c.mu.Unlock()
			if putOff == 0 {
				t.Fatal("no SNAPSHOT or BARS was put off: the test does not exercise congestion")
			}
			for k := range 5 { // trades while the history waits
				for _, s := range syms {
					trade(store, s, int64(40+k)*1e6, 90, 2)
				}
			}
			gate.open()
			for _, s := range syms {
				waitBars(t, gate.fakeConn, store, src, s, true)
			}
			t.Logf("%d of %d put off", putOff, len(syms))
			gate.fakeConn.checkContract(t)
		})
	}
}

// TestBarsProperty drives trades, quotes, late trades and bar rollovers
// into many clients with bars — history or live only, maxHz, slow readers
// that conflate and get parked, re-SUBs that change the interval, SNAPs —
// and checks with client.Book that guarantee 5 held throughout and that
// every client's bars equal the source's once the feed stops.
func TestBarsProperty(t *testing.T) {
	cfg := Config{SoftLimit: 2048, HardLimit: 1 << 20, SoftLag: 20 * time.Millisecond, SlowGrace: time.Minute,
		MaxFrameSize: 1024, Heartbeat: 50 * time.Millisecond}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runBarsProperty(t, seed, cfg) })
	}
}

func runBarsProperty(t *testing.T, seed uint64, cfg Config) {
	r := rand.New(rand.NewPCG(seed, 14))
	store, src, hub := newBarsHub(t, cfg)
	syms := []string{"A", "B", "C", "D", "E", "F"}
	type tclient struct {
		fc     *fakeConn
		c      *Client
		all    map[string]bool // subscribed symbols: whether they asked for every bar (barSince 0)
		nextID uint64
	}
	var clients []*tclient
	for i := range 10 {
		f := codec.Binary
		if i%3 == 2 {
			f = codec.JSON
		}
		fc := newFakeConn(t, f)
		switch i % 4 {
		case 1:
			fc.delay = time.Millisecond
		case 3:
			fc.delay = 30 * time.Millisecond // past SoftLag: parked and put back
		}
		clients = append(clients, &tclient{fc: fc, c: hub.Register(fc, ClientOptions{Format: f}), all: map[string]bool{}})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := rand.New(rand.NewPCG(seed, uint64(p)))
			ts := int64(1e9)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sym := syms[2*pr.IntN(len(syms)/2)+p] // each publisher owns half the symbols
				ts += int64(pr.IntN(300_000))         // bars of 1s roll over every few changes
				switch k := pr.IntN(10); {
				case k < 6:
					trade(store, sym, ts, float64(90+pr.IntN(20))+0.25*float64(pr.IntN(4)), float64(1+pr.IntN(50)))
				case k < 8:
					trade(store, sym, ts-int64(pr.IntN(3_000_000)), 100.5, 1) // late, often before the newest bar
				default:
					bid(store, sym, ts, float64(pr.IntN(1000)))
				}
				if pr.IntN(40) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	var maxStuck int64
	for step := range 600 {
		maxStuck = max(maxStuck, hub.Stats().Stuck)
		tc := clients[r.IntN(len(clients))]
		tc.nextID++
		id := tc.nextID
		pick := []string{syms[r.IntN(len(syms))], syms[r.IntN(len(syms))]}
		f := tc.c.Format()
		switch op := r.IntN(10); {
		case op < 6:
			opts := codec.DefaultSubOptions()
			opts.Bars = []string{"1s", "1m"}[r.IntN(2)]
			switch r.IntN(4) {
			case 0:
				opts.BarCount = 1 + r.IntN(20)
			case 1:
				opts.BarSince, opts.HasBarSince = 0, true
			case 2:
				opts.Bars, opts.BarCount, opts.HasBarSince = "", 0, false // a re-SUB may end the bars
			}
			if r.IntN(3) == 0 {
				opts.MaxHz = float64(20 + r.IntN(80))
			}
			if r.IntN(4) == 0 {
				opts.Snap = false
			}
			if r.IntN(4) == 0 {
				opts.Fields = 1 << codec.FieldBid // DELTAs filtered away: BARs go alone
			}
			tc.fc.send(tc.c, f.AppendSub(nil, id, pick, &opts))
			for _, s := range pick {
				if opts.Bars == "" {
					delete(tc.all, s)
				} else {
					tc.all[s] = opts.HasBarSince
				}
			}
		case op < 7:
			tc.fc.send(tc.c, f.AppendUnsub(nil, id, pick))
			for _, s := range pick {
				delete(tc.all, s)
			}
		default:
			var have []string
			for _, s := range pick {
				if _, ok := tc.all[s]; ok {
					have = append(have, s)
				}
			}
			if len(have) > 0 {
				tc.fc.send(tc.c, f.AppendSnap(nil, id, have))
			}
		}
		if step%10 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	var bars, msgs uint64
	for i, tc := range clients {
		for sym, all := range tc.all {
			// A subscription without history that never saw its bars move
			// holds none: there is nothing to compare.
			if _, _, _, ok := tc.fc.book.Bars(sym); ok || all {
				waitBars(t, tc.fc, store, src, sym, all)
			}
		}
		tc.fc.checkContract(t)
		if t.Failed() {
			t.Fatalf("client %d (delay %v) failed", i, tc.fc.delay)
		}
		st := tc.fc.book.Stats()
		bars += st.Messages[codec.OpBar]
		msgs += st.Messages[codec.OpBars]
		tc.c.Close(codec.CloseNormal, "")
	}
	st := hub.Stats()
	t.Logf("published %d, BARs %d, BARS %d, conflated %d, at most %d clients parked", st.Published, bars, msgs, st.Conflated, maxStuck)
	if bars == 0 || msgs == 0 || st.Conflated == 0 || maxStuck == 0 {
		t.Error("the run sent no BAR, no BARS, conflated nothing or parked no client: it does not exercise the bars")
	}
}

// TestBarsRaceTheSnapshot: a SUB that reads the symbol's state after a
// change and its bars before the source applied that change gets the
// change's bars as BARs anyway, though its DELTA is in the SNAPSHOT; and a
// change that comes before those BARs are sent waits for them, so that no
// bar is skipped.
func TestBarsRaceTheSnapshot(t *testing.T) {
	store, src, hub := newBarsHub(t, Config{})
	for k := range 3 {
		trade(store, "X", int64(k)*1e6, 10+float64(k), 1)
	}
	gate := newGatedConn(t, codec.Binary) // the writer waits: the BARs stay owed
	c := hub.Register(gate, ClientOptions{Format: codec.Binary})
	held, release := make(chan struct{}), make(chan struct{})
	src.hold = func() { close(held); <-release }
	done := make(chan struct{})
	go func() { defer close(done); trade(store, "X", 3e6, 13, 1) }() // seq 4: a new bar
	<-held
	src.hold = nil
	gate.fakeConn.subscribe(c, 1, []string{"X"}, barOpts("1s", 100)) // SNAPSHOT at seq 4, BARS at seq 3
	close(release)
	<-done
	trade(store, "X", 4e6, 14, 1) // seq 5: the bar after it
	gate.open()
	waitBars(t, gate.fakeConn, store, src, "X", true)
	gate.fakeConn.checkContract(t)
}

// TestBarsConflatedRollover: a subscription paced by maxHz that misses
// whole bars between two of its messages gets each of them once, final,
// oldest first, after the final state of the bar it held — no hole.
func TestBarsConflatedRollover(t *testing.T) {
	store, src, hub := newBarsHub(t, Config{})
	var kinds []string
	fc := newFakeConn(t, codec.JSON)
	c := hub.Register(recordOps(fc, &kinds), ClientOptions{Format: codec.JSON})
	opts := barOpts("1s", 10)
	opts.MaxHz = 2 // one message slot every 500 ms
	trade(store, "X", 1e6, 10, 1)
	fc.subscribe(c, 1, []string{"X"}, opts)
	waitFor(t, "the BARS", func() bool { _, _, _, ok := fc.book.Bars("X"); return ok })
	// Within one slot: the held bar changes, three later bars form.
	trade(store, "X", 1e6+5, 11, 1)
	trade(store, "X", 2e6, 12, 1)
	trade(store, "X", 3e6, 13, 1)
	trade(store, "X", 3e6+1, 14, 1)
	trade(store, "X", 4e6, 15, 1)
	waitBars(t, fc, store, src, "X", true)
	fc.mu.Lock()
	got := strings.Join(kinds, " ")
	fc.mu.Unlock()
	if want := "HELLO ACK SNAPSHOT BARS DELTA BAR BAR BAR BAR"; got != want {
		t.Errorf("messages %s\nwant     %s", got, want)
	}
	fc.checkContract(t)
}

// BenchmarkPublishTrade publishes trades of one symbol to 100 subscribers
// (half binary, half JSON) without and with bars (1m, history 5), through
// the store and the test's bar source: the difference is the cost of the
// BARs, which must add no allocation (the store's own are in both).
func BenchmarkPublishTrade(b *testing.B) {
	for _, withBars := range []bool{false, true} {
		b.Run(fmt.Sprint("bars=", withBars), func(b *testing.B) {
			store, _, hub := newBarsHub(b, Config{})
			for i := range 100 {
				c := hub.Register(&discardConn{}, ClientOptions{Format: codec.Format(i % 2)})
				opts := codec.DefaultSubOptions()
				if withBars {
					opts = barOpts("1m", 5)
				}
				c.Subscribe(1, []string{"X"}, opts)
				defer c.Close(codec.CloseNormal, "")
			}
			ts := 1e9
			u := &codec.Update{Sym: []byte("X")}
			b.ReportAllocs()
			for b.Loop() {
				ts += 1000 // a new 1m bar every 60 000 trades
				u.Set(codec.FieldTS, ts)
				u.Set(codec.FieldLast, math.Mod(ts, 7))
				if err := store.Apply(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBarsFloodStaysBounded: a client that does not read and asks again
// and again for the bar history of its 100 symbols (SNAPs, and SUBs with
// and without snap) keeps a backlog within the hard limit and one message: the
// history asked for while congested is put off and sent once, after the
// SNAPSHOT it follows. When it reads again it holds every bar, with no
// ordering violation.
func TestBarsFloodStaysBounded(t *testing.T) {
	const soft, hard = 64 << 10, 256 << 10
	store, src, hub := newBarsHub(t, Config{SoftLimit: soft, HardLimit: hard, SoftLag: 20 * time.Millisecond,
		SlowGrace: time.Minute, Heartbeat: 50 * time.Millisecond})
	syms := symbols(100)
	for k := range 200 {
		for i, s := range syms {
			trade(store, s, int64(k)*1e6+int64(i), 100+float64((k+i)%9), 1)
		}
	}
	conn := newGatedConn(t, codec.JSON)
	c := hub.Register(conn, ClientOptions{Format: codec.JSON})
	// The largest message: a BARS of 200 bars or so, about 12 KiB in JSON.
	const maxMessage = 16 << 10
	peak := 0
	for i := range 300 {
		// SUBs now and then only: their ACKs are replies, never merged,
		// and 300 of them alone would pass the hard limit.
		// First SUBs with snap false only, whose BARS follow the ACK,
		// then SNAPs and SUBs with snap, whose BARS follow the SNAPSHOT.
		switch {
		case i%15 == 0:
			opts := barOpts("1s", codec.MaxBarHistory)
			opts.Snap = i >= 150
			conn.send(c, codec.JSON.AppendSub(nil, uint64(i+1), syms, &opts))
		case i >= 150:
			conn.send(c, codec.JSON.AppendSnap(nil, uint64(i+1), syms))
		}
		for range 20 {
			s := rand.IntN(len(syms))
			trade(store, syms[s], int64(200+i)*1e6+int64(s), 95, 2)
		}
		c.mu.Lock()
		peak = max(peak, c.backlog())
		c.mu.Unlock()
		if i%50 == 0 {
			time.Sleep(5 * time.Millisecond) // let the hub's clock and the soft lag move
		}
	}
	t.Logf("peak backlog %d bytes after 300 requests for the history of 100 symbols (soft limit %d, hard limit %d)", peak, soft, hard)
	if peak > hard+maxMessage {
		t.Errorf("backlog reached %d bytes, over the hard limit %d and one message", peak, hard)
	}
	if code := conn.closeCode(); code != 0 {
		t.Fatalf("closed with %d: put-off history must be merged, not held to the hard limit", code)
	}
	conn.open()
	for _, s := range syms {
		waitBars(t, conn.fakeConn, store, src, s, true)
	}
	conn.checkContract(t)
}
