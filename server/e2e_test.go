package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, kafkatest.LeakIgnores...)
}

// startServer runs a node and its edge (over the demo feed unless
// cfg.Node has brokers) on a loopback port until the test ends, and waits
// until it is ready.
func startServer(t *testing.T, cfg setup) *Server {
	t.Helper()
	s := startNode(t, cfg).Server
	waitReady(t, s)
	return s
}

// waitReady waits for s to answer /readyz with 200.
func waitReady(t *testing.T, s *Server) {
	t.Helper()
	waitUntil(t, 20*time.Second, "server ready", func() bool {
		resp, err := http.Get("http://" + s.Addr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type e2eClient struct {
	conn   *client.Conn
	fields map[string]codec.FieldMask // subscribed symbols and their projection
}

// TestEndToEnd runs the whole path — simulator, embedded broker, ingest,
// store, fanout, WebSocket — with 50 clients that subscribe, unsubscribe
// and resnapshot at random, some slowly, and checks that once the feed
// stops every client's rebuilt state equals the server's snapshot, with no
// ordering violation on the way.
func TestEndToEnd(t *testing.T) {
	const simFor = 4 * time.Second
	s := startServer(t, setup{Node: node.Config{Fanout: fanout.Config{SoftLimit: 8 << 10, HardLimit: 8 << 20, SlowGrace: time.Minute, Heartbeat: 500 * time.Millisecond}}, Demo: demo.Config{Symbols: 60, Rate: 3000, Duration: simFor}})
	started := time.Now()
	base := "http://" + s.Addr()
	var syms client.SymbolsResponse
	waitUntil(t, 10*time.Second, "the simulator's symbols", func() bool {
		getJSON(t, base+"/api/v1/symbols?limit=1000", &syms)
		return len(syms.Symbols) == 60
	})

	r := rand.New(rand.NewPCG(7, 7))
	pick := func(n int) []string {
		out := make([]string, 0, n)
		for range n {
			out = append(out, syms.Symbols[r.IntN(len(syms.Symbols))])
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var clients []*e2eClient
	for i := 0; i < 50; i++ {
		opts := client.Options{Compression: i%2 == 0, Logger: slog.Default().With("client", i, "json", i%5 == 0, "slow", i%7 == 0)}
		if i%5 == 0 {
			opts.Format = codec.JSON
		}
		if i%7 == 0 {
			opts.ReadDelay = 5 * time.Millisecond // a slow reader: conflated deltas
		}
		url := "ws://" + s.Addr() + "/ws"
		c := &e2eClient{fields: map[string]codec.FieldMask{}}
		if i%10 == 1 {
			first := pick(3)
			url += "?symbols=" + first[0] + "," + first[1] + "," + first[2]
			for _, sym := range first {
				c.fields[sym] = codec.AllFields
			}
		}
		conn, err := client.Dial(ctx, url, opts)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		c.conn = conn
		t.Cleanup(func() { conn.Close() })
		clients = append(clients, c)
	}

	subscribe := func(c *e2eClient) {
		set := pick(1 + r.IntN(8))
		opts := codec.DefaultSubOptions()
		if r.IntN(4) == 0 {
			opts.MaxHz = float64(1 + r.IntN(20))
		}
		if r.IntN(4) == 0 {
			opts.Fields = 1<<codec.FieldTS | 1<<codec.FieldBid | 1<<codec.FieldAsk | 1<<codec.FieldLast
		}
		if _, err := c.conn.Subscribe(set, &opts); err != nil {
			t.Fatal(err)
		}
		for _, sym := range set {
			c.fields[sym] = opts.Fields
		}
	}
	for _, c := range clients {
		subscribe(c)
	}
	// Churn while the feed runs.
	for time.Since(started) < simFor-time.Second {
		c := clients[r.IntN(len(clients))]
		switch r.IntN(4) {
		case 0, 1:
			subscribe(c)
		case 2:
			var gone []string
			for sym := range c.fields {
				if r.IntN(3) == 0 {
					gone = append(gone, sym)
				}
			}
			if len(gone) > 0 {
				if _, err := c.conn.Unsubscribe(gone); err != nil {
					t.Fatal(err)
				}
				for _, sym := range gone {
					delete(c.fields, sym)
				}
			}
		case 3:
			var have []string
			for sym := range c.fields {
				have = append(have, sym)
				break
			}
			if len(have) > 0 {
				if _, err := c.conn.Snap(have); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Once the simulator has stopped and ingest has applied everything,
	// the store no longer moves: every client must converge to it.
	var last client.SnapshotResponse
	waitUntil(t, 20*time.Second, "the feed to stop", func() bool {
		var now client.SnapshotResponse
		getJSON(t, base+"/api/v1/snapshot", &now)
		stable := time.Since(started) > simFor && fmt.Sprint(now) == fmt.Sprint(last)
		last = now
		if !stable {
			time.Sleep(300 * time.Millisecond)
		}
		return stable
	})
	for i, c := range clients {
		c := c
		var mismatch string
		// Generous: 50 clients drain their backlogs on two shared cores
		// under the race detector; a lost update never converges at all.
		waitUntil(t, 30*time.Second, fmt.Sprintf("client %d to converge", i), func() bool {
			mismatch = ""
			for sym, fields := range c.fields {
				want := last.Snapshots[sym]
				seq, got, ok := c.conn.Book().State(sym)
				if !ok {
					mismatch = sym + ": no state"
					return false
				}
				if seq > want.Seq {
					mismatch = fmt.Sprintf("%s: seq %d beyond the server's %d", sym, seq, want.Seq)
					return false
				}
				for f := 0; f < codec.NumFields; f++ {
					if !fields.Has(f) {
						continue
					}
					name := codec.FieldNames[f]
					w, wok := want.State[name]
					g, gok := got[name]
					if wok != gok || w != g {
						mismatch = fmt.Sprintf("%s.%s = %v (%v), server has %v (%v)", sym, name, g, gok, w, wok)
						return false
					}
				}
			}
			return true
		})
		if mismatch != "" {
			t.Errorf("client %d: %s", i, mismatch)
		}
		if v := c.conn.Book().Violations(); len(v) > 0 {
			t.Errorf("client %d: %d violations, first %v", i, len(v), v[0])
		}
		if st := c.conn.Book().Stats(); st.Violations > 0 {
			t.Errorf("client %d: stats count %d violations", i, st.Violations)
		}
	}
	st := s.node.Hub().Stats()
	t.Logf("published %d changes, %d messages in %d frames (%d bytes), %d conflated", st.Published, st.Messages, st.Frames, st.Bytes, st.Conflated)
	if st.Conflated == 0 {
		t.Error("no conflation happened: the slow readers and maxHz went untested")
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); c.conn.Close() }()
	}
	wg.Wait()
}
