package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/node"
	"github.com/tickstream/tickstream/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// testServer starts an embedded broker and a server consuming it on
// 127.0.0.1, and returns the server's WebSocket URL and the broker.
func testServer(t *testing.T) (string, []string) {
	t.Helper()
	return testServerWith(t, server.Config{}, node.Config{})
}

// testServerWith is testServer with the edge's settings cfg and the
// node's ncfg.
func testServerWith(t *testing.T, cfg server.Config, ncfg node.Config) (string, []string) {
	t.Helper()
	b, err := embedded.Start("ticks", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return testServerOn(t, b, cfg, ncfg), b.Addrs()
}

// testServerOn starts a server consuming broker b, and returns its
// WebSocket URL.
func testServerOn(t *testing.T, b *embedded.Broker, cfg server.Config, ncfg node.Config) string {
	t.Helper()
	cfg.Listen, cfg.Logger = "127.0.0.1:0", quiet
	ncfg.Brokers, ncfg.Logger = b.Addrs(), quiet
	n, err := node.New(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(n, cfg)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "ws://" + srv.Addr() + "/ws"
}

// shortConfig is a run of a few seconds against url.
func shortConfig(url string, brokers []string) Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.Brokers = url, brokers
	cfg.Conns, cfg.Symbols, cfg.SymbolsPerConn = 3, 8, 8
	cfg.Rate, cfg.Warmup, cfg.Duration = 200, 300*time.Millisecond, time.Second
	cfg.Interval = 200 * time.Millisecond
	cfg.ServerPID = -1
	return cfg
}

func summary(t *testing.T, res *Result) string {
	t.Helper()
	var b strings.Builder
	if err := WriteSummary(&b, res); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// serverSeqs reads the server's seq of syms from its REST API.
func serverSeqs(t *testing.T, wsURL string, syms []string) map[string]uint64 {
	t.Helper()
	u := "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws"), "/ws") + "/api/v1/snapshot?symbols=" + strings.Join(syms, ",")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Snapshots map[string]struct{ Seq uint64 } `json:"snapshots"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for s, v := range body.Snapshots {
		out[s] = v.Seq
	}
	return out
}

// TestRunCountsEveryDelivery runs against a fresh server whose delivery is
// known: every connection subscribes to every symbol before the feed starts
// (their snapshots have seq 0), so each connection must receive, as DELTAs
// or merged into them, exactly every seq the server reached.
func TestRunCountsEveryDelivery(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"msgpack", func(*Config) {}},
		{"json", func(c *Config) { c.JSON = true }},
		{"json compressed", func(c *Config) { c.JSON, c.Compression = true, true }},
		{"fields", func(c *Config) { c.Fields = []string{"bid", "ask"} }},
		{"two source addresses", func(c *Config) { c.SourceIPs = 2 }},
		{"the SDK's reader", func(c *Config) { c.SDKReader = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, brokers := testServer(t)
			cfg := shortConfig(url, brokers)
			tt.edit(&cfg)
			var progress []Progress
			cfg.Progress = func(p Progress) { progress = append(progress, p) }
			res, err := Run(t.Context(), cfg, quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + summary(t, res))
			if !res.Passed {
				t.Fatalf("run failed: %v", res.Failures)
			}
			seqs := serverSeqs(t, url, []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM"})
			var sum uint64
			for _, s := range seqs {
				sum += s
			}
			if sum == 0 {
				t.Fatal("the server ingested nothing")
			}
			if got, want := res.Totals.Deliveries+res.Totals.Conflated, int64(cfg.Conns)*int64(sum); got != want {
				t.Errorf("deliveries %d + conflated %d = %d, want %d connections × %d seqs = %d",
					res.Totals.Deliveries, res.Totals.Conflated, got, cfg.Conns, sum, want)
			}
			if res.Final.Checked != cfg.Conns*cfg.SymbolsPerConn || res.Final.Mismatches != 0 {
				t.Errorf("final check %+v, want %d states checked, none differing", res.Final, cfg.Conns*cfg.SymbolsPerConn)
			}
			st := res.Steps[0]
			// A latency in flight when the window closes may miss it.
			if st.Deliveries == 0 || st.Latency.Count > st.Deliveries || st.Latency.Count < st.Deliveries-int64(cfg.Conns) ||
				st.WireBytes == 0 || st.BytesPerDelivery == 0 {
				t.Errorf("step %+v: want deliveries, one latency per delivery, wire bytes", st)
			}
			if len(st.Series) == 0 || len(st.Distribution) == 0 {
				t.Error("no latency series or distribution")
			}
			if res.Connect.Ready != cfg.Conns || res.Closes[1000] != int64(cfg.Conns) {
				t.Errorf("connect %+v, closes %v: want %d ready and closed with 1000", res.Connect, res.Closes, cfg.Conns)
			}
			if len(progress) == 0 || !slices.ContainsFunc(progress, func(p Progress) bool { return p.Phase == "measuring" }) {
				t.Errorf("progress %+v: want reports while measuring", progress)
			}
		})
	}
}

// TestRunSlowConns attaches connections that never read beside the
// measured ones: the server closes them (4008, seen through its sockets and
// its metrics) while the measured connections pass, and the server's
// publish time is read from its metrics.
func TestRunSlowConns(t *testing.T) {
	url, brokers := testServerWith(t, server.Config{Limits: server.Limits{SocketSendBuffer: 4096}},
		node.Config{Fanout: fanout.Config{SoftLag: 100 * time.Millisecond, SlowGrace: 300 * time.Millisecond, Heartbeat: 200 * time.Millisecond}})
	cfg := shortConfig(url, brokers)
	cfg.Rate, cfg.Duration = 2000, 2*time.Second
	cfg.SlowConns = 3
	res, err := Run(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	out := summary(t, res)
	t.Log("\n" + out)
	if !res.Passed {
		t.Fatalf("run failed: %v", res.Failures)
	}
	s := res.Slow
	if s == nil || s.Conns != 3 || s.SymbolsPerConn != cfg.SymbolsPerConn || s.Dials != 3 || s.Failed != 0 || !s.Watched {
		t.Fatalf("slow figures %+v: want 3 connections dialed once, watched", s)
	}
	if s.ClosedByServer != 3 || s.SlowCloses != 3 || s.MaxSendQueue == 0 || s.Lifetime.Count != 3 {
		t.Errorf("slow figures %+v: want 3 closed by the server with 4008, send queues seen", s)
	}
	if res.Steps[0].PublishMean <= 0 || !strings.Contains(out, "slow connections:") || !strings.Contains(out, "publish time") {
		t.Errorf("no publish time or slow connections in the summary")
	}
}

func TestRunStormAndFindMax(t *testing.T) {
	url, brokers := testServer(t)
	cfg := shortConfig(url, brokers)
	cfg.Conns, cfg.SymbolsPerConn, cfg.Zipf = 6, 3, 1.2
	cfg.Storm, cfg.FindMax, cfg.MaxSteps, cfg.StepFactor = true, true, 2, 2
	// A limit no step can miss: both steps run. Whether a step is sustained
	// also depends on the producer reaching 90% of its rate, which a loaded
	// machine may deny a step, so the test holds the report to the steps'
	// own verdicts rather than to a step chosen in advance.
	cfg.P99Limit = time.Hour
	res, err := Run(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + summary(t, res))
	if !res.Passed {
		t.Fatalf("run failed: %v", res.Failures)
	}
	if res.Storm == nil || res.Storm.Ready != cfg.Conns {
		t.Errorf("storm %+v: want all %d reconnected", res.Storm, cfg.Conns)
	}
	if res.Closes[1000] != 2*int64(cfg.Conns) {
		t.Errorf("closes %v: want %d with 1000 (storm and end)", res.Closes, 2*cfg.Conns)
	}
	if len(res.Steps) != 2 || res.Steps[1].Rate != 2*res.Steps[0].Rate {
		t.Fatalf("steps %+v: want 2, the second at twice the rate", res.Steps)
	}
	var best *Step
	for i := range res.Steps {
		if res.Steps[i].Sustained {
			best = &res.Steps[i]
		}
	}
	switch {
	case best == nil:
		t.Errorf("steps %+v: no step sustained at a p99 limit of an hour", res.Steps)
	case res.MaxSustainedRate != best.Rate || res.MaxSustained != best.DeliveriesPerSec:
		t.Errorf("max sustained %v at %v, want the highest sustained step's, %v at %v", res.MaxSustained, res.MaxSustainedRate, best.DeliveriesPerSec, best.Rate)
	}
}

// fakeServer speaks enough of protocol v1 to feed the benchmark, breaking
// the ordering contract as its mode says: the test hook the benchmark must
// catch.
type fakeServer struct {
	mode string
	mu   sync.Mutex
	stop chan struct{}
	wg   sync.WaitGroup
}

func newFakeServer(t *testing.T, mode string) string {
	fs := &fakeServer{mode: mode, stop: make(chan struct{})}
	up := gws.NewUpgrader(fs, &gws.ServerOption{SubProtocols: []string{codec.SubprotocolBinary}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		_ = ws.WriteMessage(gws.OpcodeBinary, codec.Binary.AppendHello(nil, "fake", 1000))
		ws.ReadLoop()
	}))
	t.Cleanup(func() {
		close(fs.stop)
		fs.wg.Wait()
		srv.CloseClientConnections()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func (fs *fakeServer) OnOpen(*gws.Conn)         {}
func (fs *fakeServer) OnClose(*gws.Conn, error) {}
func (fs *fakeServer) OnPing(*gws.Conn, []byte) {}
func (fs *fakeServer) OnPong(*gws.Conn, []byte) {}
func (fs *fakeServer) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	var c codec.Command
	codec.Binary.DecodeCommands(m.Bytes(), &c, func(c *codec.Command, err error) {
		if err != nil || c.Op != codec.OpSub {
			return
		}
		acks := make([]codec.SymbolID, len(c.Syms))
		for i, s := range c.Syms {
			acks[i] = codec.SymbolID{Sym: string(s), SID: uint32(i + 1)}
		}
		fs.wg.Add(1)
		go fs.feed(ws, c.ID, acks)
	})
}

// feed answers a SUB and sends a DELTA for every symbol every 10ms until
// the test ends or the connection does.
func (fs *fakeServer) feed(ws *gws.Conn, id uint64, acks []codec.SymbolID) {
	defer fs.wg.Done()
	var vals [codec.NumFields]float64
	state := func(op codec.Op, sid uint32, seq uint64) []byte {
		vals[codec.FieldTS] = float64(time.Now().UnixMicro())
		return codec.Binary.AppendState(nil, op, sid, seq, 1<<codec.FieldTS, &vals)
	}
	frames := [][]byte{codec.Binary.AppendAck(nil, id, acks)}
	for _, a := range acks {
		if fs.mode == "delta before snapshot" && a.SID == 1 {
			frames = append(frames, state(codec.OpDelta, a.SID, 1))
		}
		frames = append(frames, state(codec.OpSnapshot, a.SID, 1))
	}
	seq := uint64(1)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for round := 0; round < 1000; round++ {
		for _, f := range frames {
			if ws.WriteMessage(gws.OpcodeBinary, f) != nil {
				return
			}
		}
		select {
		case <-fs.stop:
			return
		case <-t.C:
		}
		seq++
		if fs.mode == "conflated" {
			seq++ // every DELTA skips one seq, as a server conflating half its updates
		}
		frames = frames[:0]
		for _, a := range acks {
			s := seq
			if fs.mode == "seq goes back" && round == 20 && a.SID == 1 {
				s = seq - 2
			}
			frames = append(frames, state(codec.OpDelta, a.SID, s))
		}
	}
}

func TestRunDetectsBrokenOrdering(t *testing.T) {
	tests := []struct {
		mode string
		want string // in the violation samples; "" for a valid feed
	}{
		{"valid", ""},
		{"conflated", ""},
		{"seq goes back", "not above the previous"},
		{"delta before snapshot", "before the SNAPSHOT"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cfg := shortConfig(newFakeServer(t, tt.mode), nil)
			cfg.Rate, cfg.Symbols, cfg.SymbolsPerConn = 0, 3, 3
			res, err := Run(t.Context(), cfg, quiet)
			if err != nil {
				t.Fatal(err)
			}
			out := summary(t, res)
			if tt.want == "" {
				if !res.Passed || res.Violations != 0 {
					t.Fatalf("a valid feed failed:\n%s", out)
				}
				if res.Steps[0].Deliveries == 0 {
					t.Errorf("nothing delivered:\n%s", out)
				}
				wantConflated := int64(0)
				if tt.mode == "conflated" {
					wantConflated = res.Totals.Deliveries
				}
				if res.Totals.Conflated != wantConflated {
					t.Errorf("%d updates counted as conflated, want %d:\n%s", res.Totals.Conflated, wantConflated, out)
				}
				return
			}
			if res.Passed || res.Violations == 0 {
				t.Fatalf("broken ordering not detected:\n%s", out)
			}
			if !strings.Contains(strings.Join(res.ViolationSamples, "\n"), tt.want) || !strings.Contains(out, "FAIL") {
				t.Errorf("summary does not name the violation %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestRunRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := shortConfig("ws://"+addr+"/ws", nil)
	cfg.Rate = 0
	_, err = Run(t.Context(), cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %v, want one naming the refused connections", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{"default", func(*Config) {}, ""},
		{"http URL", func(c *Config) { c.URL = "http://127.0.0.1/ws" }, "want ws://"},
		{"bad broker", func(c *Config) { c.Brokers = []string{"nope"} }, "not host:port"},
		{"no conns", func(c *Config) { c.Conns = 0 }, "Conns 0"},
		{"K over S", func(c *Config) { c.SymbolsPerConn = c.Symbols + 1 }, "SymbolsPerConn"},
		{"flat Zipf", func(c *Config) { c.Zipf = 1 }, "Zipf 1"},
		{"maxHz", func(c *Config) { c.MaxHz = -1 }, "MaxHz -1"},
		{"rate without brokers", func(c *Config) { c.Brokers = nil }, "needs Brokers"},
		{"short duration", func(c *Config) { c.Duration = time.Millisecond }, "Duration 1ms"},
		{"measure only", func(c *Config) { c.Brokers, c.Rate = nil, 0 }, ""},
		{"find-max without feed", func(c *Config) { c.Rate, c.FindMax = 0, true }, "FindMax needs"},
		{"step factor", func(c *Config) { c.FindMax, c.StepFactor = true, 1 }, "StepFactor 1"},
		{"unknown field", func(c *Config) { c.Fields = []string{"bid", "color"} }, `unknown field "color"`},
		{"pid", func(c *Config) { c.ServerPID = -2 }, "ServerPID -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Brokers = []string{"127.0.0.1:9092"}
			tt.edit(&c)
			err := c.validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one with %q", err, tt.err)
			}
		})
	}
	c := DefaultConfig()
	c.Rate, c.Fields = 0, []string{"bid"}
	if err := c.validate(); err != nil || !slices.Equal(c.Fields, []string{"bid", "ts"}) {
		t.Errorf("fields %v (%v): want ts added", c.Fields, err)
	}
	for _, name := range Scenarios {
		c, err := Scenario(name)
		c.Brokers = []string{"127.0.0.1:9092"}
		if err == nil {
			err = c.validate()
		}
		if err != nil {
			t.Errorf("scenario %s: %v", name, err)
		}
	}
	if _, err := Scenario("nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestChooseSymbols(t *testing.T) {
	syms := make([]string, 100)
	for i := range syms {
		syms[i] = fmt.Sprint("S", i)
	}
	tests := []struct {
		name string
		k    int
		zipf float64
	}{
		{"uniform few", 5, 0},
		{"uniform most", 80, 0},
		{"all", 100, 0},
		{"zipf", 10, 1.1},
		{"steep zipf", 30, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slots := make([]*slot, 200)
			for i := range slots {
				slots[i] = &slot{idx: i}
			}
			chooseSymbols(slots, syms, tt.k, tt.zipf, 1)
			count := map[string]int{}
			for _, sl := range slots {
				if len(sl.syms) != tt.k {
					t.Fatalf("slot %d has %d symbols, want %d", sl.idx, len(sl.syms), tt.k)
				}
				seen := map[string]bool{}
				for _, s := range sl.syms {
					if seen[s] {
						t.Fatalf("slot %d chose %s twice", sl.idx, s)
					}
					seen[s] = true
					count[s]++
				}
			}
			if tt.zipf > 0 && count["S0"] <= 2*count["S99"] {
				t.Errorf("Zipf: the most popular symbol has %d subscribers, the least %d", count["S0"], count["S99"])
			}
		})
	}
}

func TestSourceAddr(t *testing.T) {
	tests := []struct {
		i, ips int
		want   string
	}{
		{0, 1, "127.0.0.1"}, {1, 1, "127.0.0.1"}, {1, 3, "127.0.0.2"}, {255, 300, "127.0.1.0"}, {70000, 100000, "127.1.17.113"},
	}
	for _, tt := range tests {
		if got := sourceAddr(tt.i, tt.ips).IP.String(); got != tt.want {
			t.Errorf("sourceAddr(%d, %d) = %s, want %s", tt.i, tt.ips, got, tt.want)
		}
	}
}

func TestDistribution(t *testing.T) {
	h := newHistogram()
	for _, v := range []int64{1, 2, 100, 100, 5000, 1_000_000} {
		_ = h.RecordValue(v)
	}
	d := distribution(h)
	var n int64
	for i, b := range d {
		n += b.Count
		if i > 0 && b.UpTo <= d[i-1].UpTo {
			t.Fatalf("buckets out of order: %v", d)
		}
	}
	if n != 6 {
		t.Errorf("buckets hold %d values, want 6: %v", n, d)
	}
	if l := summarize(h); l.Count != 6 || l.Max < time.Second || l.P50 != 100*time.Microsecond {
		t.Errorf("summary %+v", l)
	}
}

func TestProc(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil || s.rssBytes <= 0 {
		t.Fatalf("readProc(self) = %+v, %v", s, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := listenerPID(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || pid != os.Getpid() {
		t.Errorf("listenerPID = %d, %v; want %d", pid, err, os.Getpid())
	}
	if _, err := readProc(1 << 30); err == nil {
		t.Error("readProc of no process succeeded")
	}
}

func TestWritePlotAndJSON(t *testing.T) {
	res := &Result{Started: time.Now(), Steps: []Step{{Rate: 100, Duration: 2 * time.Second}}}
	h := newHistogram()
	for v := int64(100); v < 50_000; v += 37 {
		_ = h.RecordValue(v)
	}
	st := &res.Steps[0]
	st.Latency, st.Distribution = summarize(h), distribution(h)
	st.Series = []Point{{At: time.Second, P50: time.Millisecond, P99: 5 * time.Millisecond, P999: 9 * time.Millisecond, Max: 20 * time.Millisecond},
		{At: 2 * time.Second, P50: 2 * time.Millisecond, P99: 6 * time.Millisecond, P999: 8 * time.Millisecond, Max: 30 * time.Millisecond}}
	empty := &Result{Started: time.Now(), Steps: []Step{{Duration: time.Second}}}
	tests := []struct {
		name, file string
		res        *Result
		magic      string
	}{
		{"html", "x.html", res, "<!doctype html>"},
		{"png", "x.png", res, "\x89PNG"},
		{"empty html", "x.htm", empty, "<!doctype html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WritePlot(&b, tt.res, tt.file); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(b.String(), tt.magic) {
				t.Errorf("output starts %q, want %q", b.String()[:min(20, b.Len())], tt.magic)
			}
			if tt.magic != "\x89PNG" && strings.Count(b.String(), "<svg") != 2 {
				t.Error("HTML without its two SVG plots")
			}
		})
	}
	if _, err := PlotFormat("x.pdf"); err == nil {
		t.Error("PlotFormat accepted .pdf")
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Steps[0].Latency.P99 != st.Latency.P99 {
		t.Errorf("JSON round trip: %v, p99 %v want %v", err, back.Steps[0].Latency.P99, st.Latency.P99)
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		p    Progress
		want []string
	}{
		{Progress{Elapsed: 1500 * time.Millisecond, Phase: "connecting", Open: 5, Conns: 10}, []string{"1.5s", "connecting", "conns 5/10"}},
		{Progress{Phase: "measuring", Step: 2, Rate: 3000, Open: 10, Conns: 10, DeliveriesPerSec: 123456, P99: 3 * time.Millisecond},
			[]string{"step 2 @ 3000/s", "deliveries 123.5k/s", "p99 3.00 ms"}},
	}
	for _, tt := range tests {
		got := ProgressLine(tt.p)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("ProgressLine(%+v) = %q, want %q in it", tt.p, got, w)
			}
		}
	}
}
