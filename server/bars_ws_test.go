package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/barstest"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// TestBarsOverTheSocket: clients of both formats subscribe with bars —
// history by count and since a time, live only, maxHz, slow readers —
// while a known log is produced, half of it before they connect; midway
// some SNAP and some re-SUB to the other interval; once the
// node has read the log, every client's bars (client.Book, which checks
// guarantee 5 throughout) equal the bars computed from the log by an
// independent reference.
func TestBarsOverTheSocket(t *testing.T) {
	b := testBroker(t, 3)
	log := barstest.Log(barstest.LogConfig{Seed: 14, Records: 8000, Symbols: 8, Start: barsStart, Step: 400_000})
	ivs, err := bars.ParseIntervals("1s:3h,1m:24h")
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, setup{Node: node.Config{Brokers: b.Addrs(), Bars: bars.Config{Intervals: ivs}}})
	half := len(log) / 2
	kafkatest.Produce(t, b.Addrs(), "ticks", nil, log[:half])
	n.waitRead(t, uint64(half))
	ref := barstest.Replay(ivs, log)
	syms := ref.Symbols()
	slices.Sort(syms)

	type tclient struct {
		conn  *client.Conn
		opts  codec.SubOptions
		iv    int
		whole bool // asked for every bar
	}
	var clients []*tclient
	for i := range 12 {
		f := codec.Format(i % 2)
		opts := codec.DefaultSubOptions()
		tc := &tclient{iv: i / 2 % 2}
		opts.Bars = ivs[tc.iv].Name
		switch i / 4 {
		case 0:
			opts.BarSince, opts.HasBarSince, tc.whole = barsStart, true, true
		case 1:
			opts.BarCount = 50
		}
		if i%3 == 0 {
			opts.MaxHz = 5
		}
		var delay time.Duration
		if i%4 == 3 {
			delay = 2 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := client.Dial(ctx, "ws://"+n.Addr()+"/ws", client.Options{Format: f, ReadDelay: delay})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.Subscribe(syms, &opts); err != nil {
			t.Fatal(err)
		}
		tc.conn, tc.opts = conn, opts
		clients = append(clients, tc)
	}
	// Midway, some clients ask for their snapshots again (and their
	// history with them), and some switch to the other interval with a
	// history of every bar.
	third := half + (len(log)-half)/2
	kafkatest.Produce(t, b.Addrs(), "ticks", nil, log[half:third])
	for i, tc := range clients {
		switch i % 3 {
		case 1:
			if _, err := tc.conn.Snap(syms); err != nil {
				t.Fatal(err)
			}
		case 2:
			tc.iv = 1 - tc.iv
			tc.opts.Bars, tc.opts.BarCount = ivs[tc.iv].Name, 0
			tc.opts.BarSince, tc.opts.HasBarSince, tc.whole = 0, true, true
			if _, err := tc.conn.Subscribe(syms, &tc.opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	kafkatest.Produce(t, b.Addrs(), "ticks", nil, log[third:])
	n.waitRead(t, uint64(len(log)))

	var compared int
	for i, tc := range clients {
		book := tc.conn.Book()
		for _, sym := range syms {
			want := ref.Bars(sym, tc.iv)
			var got []codec.Bar
			deadline := time.Now().Add(30 * time.Second)
			for {
				var ok bool
				_, _, got, ok = book.Bars(sym)
				if ok && !tc.whole && len(got) > 0 {
					want = ref.Bars(sym, tc.iv)
					k := slices.IndexFunc(want, func(b codec.Bar) bool { return b.T >= got[0].T })
					want = want[max(k, 0):]
				}
				if ok && slices.Equal(got, want) || !ok && len(want) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !slices.Equal(got, want) {
				t.Errorf("client %d (%+v) %s: %d bars, the reference %d\n got %v\nwant %v",
					i, tc.opts, sym, len(got), len(want), tail(got), tail(want))
				continue
			}
			compared += len(got)
		}
		if v := book.Violations(); len(v) > 0 {
			t.Errorf("client %d (%+v): %d violations, first %v", i, tc.opts, book.Stats().Violations, v[0])
		}
	}
	t.Logf("%d bars compared over %d clients", compared, len(clients))
	if compared < 1000 {
		t.Errorf("only %d bars compared: the test does not exercise the bars", compared)
	}
	if c := metric(t, n.Server, "tickstream_conflated_total"); c == 0 {
		t.Error("nothing was conflated: maxHz did not merge the BARs")
	}
}

func tail(bs []codec.Bar) []codec.Bar { return bs[max(len(bs)-3, 0):] }

// TestBarsRefusedOverTheSocket: a SUB asking for bars a node does not
// keep, or any bars from a node whose bars are off, gets one ERROR 400 and
// nothing else; the connection's subscriptions are as they were.
func TestBarsRefusedOverTheSocket(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprint("off=", off), func(t *testing.T) {
			n := startNode(t, setup{Node: node.Config{BarsOff: off}})
			conn, err := client.Dial(context.Background(), "ws://"+n.Addr()+"/ws", client.Options{Format: codec.JSON})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			opts := codec.DefaultSubOptions()
			opts.Fields = 1 << codec.FieldBid
			if _, err := conn.Subscribe([]string{"AAPL"}, &opts); err != nil {
				t.Fatal(err)
			}
			want := `bad request: option bars: unknown interval "5m" (this server has 1s, 1m)`
			opts = codec.DefaultSubOptions()
			opts.Bars, opts.BarCount = "5m", 10
			if off {
				opts.Bars = "1m"
				want = "bad request: bars are off on this server"
			}
			refused, err := conn.Subscribe([]string{"AAPL", "MSFT"}, &opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Ping(1); err != nil {
				t.Fatal(err)
			}
			book := conn.Book()
			waitUntil(t, 10*time.Second, "the PONG", func() bool { return book.Stats().Messages[codec.OpPong] == 1 })
			st := book.Stats()
			if e := st.LastError; e == nil || e.ID != refused || e.Code != 400 || e.Text != want || st.Errors[400] != 1 {
				t.Errorf("errors %v, last %+v; want one ERROR %d 400 %q", st.Errors, e, refused, want)
			}
			if st.Messages[codec.OpAck] != 1 || st.Messages[codec.OpBars]+st.Messages[codec.OpBar] != 0 {
				t.Errorf("messages %v: want only the first SUB's ACK and no bars", st.Messages)
			}
			if got := book.Symbols(); !slices.Equal(got, []string{"AAPL"}) {
				t.Errorf("subscribed %v, want [AAPL]", got)
			}
			if v := book.Violations(); len(v) > 0 {
				t.Errorf("violations %v", v)
			}
		})
	}
}

// TestBarsLongHistoryOverTheSocket: a history of more than 10 000 bars
// comes as one BARS of the newest 10 000 (barSince 0, or barCount 10000),
// a message of about half a megabyte, in both formats.
func TestBarsLongHistoryOverTheSocket(t *testing.T) {
	n, ref := barsNode(t, Config{})
	all := ref.Bars("LONG", 0)
	if len(all) <= codec.MaxBarHistory {
		t.Fatalf("LONG has %d 1s bars, want more than %d", len(all), codec.MaxBarHistory)
	}
	want := all[len(all)-codec.MaxBarHistory:]
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		for _, since := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/since=%v", f, since), func(t *testing.T) {
				conn, err := client.Dial(context.Background(), "ws://"+n.Addr()+"/ws", client.Options{Format: f})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				opts := codec.DefaultSubOptions()
				opts.Bars = "1s"
				if since {
					opts.HasBarSince = true
				} else {
					opts.BarCount = codec.MaxBarHistory
				}
				if _, err := conn.Subscribe([]string{"LONG"}, &opts); err != nil {
					t.Fatal(err)
				}
				book := conn.Book()
				waitUntil(t, 10*time.Second, "the BARS", func() bool { return book.Stats().Messages[codec.OpBars] == 1 })
				_, seq, got, _ := book.Bars("LONG")
				if !slices.Equal(got, want) || seq != ref.Seq("LONG") {
					t.Errorf("BARS of %d bars at seq %d, want the newest %d at seq %d", len(got), seq, len(want), ref.Seq("LONG"))
				}
				if v := book.Violations(); len(v) > 0 {
					t.Errorf("violations %v", v)
				}
				t.Logf("%d bytes received", book.Stats().Bytes)
			})
		}
	}
}

// TestBarsAtConnect: the subscription of the upgrade URL takes the bar
// options too, so that a chart's history comes without a round trip; bad
// ones fail the upgrade with HTTP 400 and the reason.
func TestBarsAtConnect(t *testing.T) {
	n, ref := barsNode(t, Config{})
	base := "ws://" + n.Addr() + "/ws"
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		conn, err := client.Dial(context.Background(), base+"?symbols=LONG,BAR01&bars=1m&barCount=5", client.Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		book := conn.Book()
		waitUntil(t, 10*time.Second, "the BARS", func() bool { return book.Stats().Messages[codec.OpBars] == 2 })
		for _, sym := range []string{"LONG", "BAR01"} {
			all := ref.Bars(sym, 1)
			if interval, _, got, _ := book.Bars(sym); interval != "1m" || !slices.Equal(got, all[len(all)-5:]) {
				t.Errorf("%s %s: %s bars %v, want the last 5 1m bars %v", f, sym, interval, got, all[len(all)-5:])
			}
		}
		if v := book.Violations(); len(v) > 0 || !book.Ready() {
			t.Errorf("%s: violations %v, ready %v", f, v, book.Ready())
		}
		conn.Close()
	}
	for _, tc := range []struct{ query, reason string }{
		{"?symbols=LONG&bars=5m", `option bars: unknown interval "5m" (this server has 1s, 1m)`},
		{"?symbols=LONG&bars=1m&barCount=0", `barCount "0": want an integer from 1 to 10000`},
		{"?symbols=LONG&bars=1m&barSince=-1", `barSince "-1": want unix microseconds`},
		{"?symbols=LONG&barCount=5", "option barCount needs option bars"},
		{"?symbols=LONG&bars=1m&barCount=5&barSince=0", "options barCount and barSince exclude each other"},
		{"?bars=1m", "maxHz, fields and the bar options need symbols"},
	} {
		_, err := client.Dial(context.Background(), base+tc.query, client.Options{})
		var he *client.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != 400 || !strings.Contains(he.Body, tc.reason) {
			t.Errorf("%s: %v, want HTTP 400 saying %q", tc.query, err, tc.reason)
		}
	}
	off := startNode(t, setup{Node: node.Config{BarsOff: true}})
	_, err := client.Dial(context.Background(), "ws://"+off.Addr()+"/ws?symbols=A&bars=1m", client.Options{})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 400 || !strings.Contains(he.Body, "bars are off on this server") {
		t.Errorf("bars off: %v, want HTTP 400 saying bars are off", err)
	}
}
