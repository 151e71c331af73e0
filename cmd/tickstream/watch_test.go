package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/testcert"
)

// quoteFrame is one SNAPSHOT with the given fields, in binary.
func quoteFrame(sid uint32, fields map[int]float64) []byte {
	var mask codec.FieldMask
	var values [codec.NumFields]float64
	for f, v := range fields {
		mask |= 1 << f
		values[f] = v
	}
	return codec.Binary.AppendState(nil, codec.OpSnapshot, sid, 1, mask, &values)
}

func TestRender(t *testing.T) {
	now := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	ts := float64(now.Add(-1500 * time.Millisecond).UnixMicro())
	aapl := quoteFrame(1, map[int]float64{
		codec.FieldTS: ts, codec.FieldBid: 101, codec.FieldAsk: 101.5, codec.FieldLast: 101.25,
		codec.FieldPrevClose: 100, codec.FieldVolume: 1234567,
	})
	msft := quoteFrame(2, map[int]float64{
		codec.FieldTS: ts - 120e6, codec.FieldBid: 0.00001234, codec.FieldLast: 98, codec.FieldPrevClose: 100,
	})
	// AAPL's last 3 minutes: from 100 (the first bar's open) to 101.5.
	t0 := now.Truncate(time.Minute).Add(-2 * time.Minute).UnixMicro()
	aaplBars := codec.Binary.AppendBars(nil, 1, 1, "1m", []codec.Bar{
		{T: t0, Open: 100, High: 100.5, Low: 99.5, Close: 100.25, Volume: 300, Trades: 3},
		{T: t0 + 60e6, Open: 100.25, High: 101, Low: 100, Close: 100.75, Volume: 200, Trades: 2},
	})
	aaplBar := codec.Binary.AppendBar(nil, 1, 2, "1m", &codec.Bar{T: t0 + 120e6, Open: 100.75, High: 101.5, Low: 100.75, Close: 101.5, Volume: 100, Trades: 1})
	tests := []struct {
		name   string
		frames [][]byte // fed after HELLO and the ACK of AAPL (sid 1) and MSFT (sid 2); nil: no Book
		state  string
		tty    bool
		// trend: the TREND column of 15 bars of 1m; noTrend: the server refused bars
		trend   bool
		noTrend string
		// disconnected: the frames came on a connection that ended
		disconnected bool
		contains     []string
		absent       []string
	}{
		{
			name:   "rising symbol on a terminal",
			frames: [][]byte{aapl},
			tty:    true,
			contains: []string{
				ansiHome, ansiClearBelow, "feed live",
				"AAPL", "101.00", "101.50", ansiGreen + "      101.25" + ansiReset, ansiGreen + "   +1.25%" + ansiReset,
				"1,234,567", "1.5s",
			},
		},
		{
			name:     "falling symbol, plain",
			frames:   [][]byte{msft},
			contains: []string{"MSFT", "0.00001234", "98.00", "-2.00%", "2m"},
			absent:   []string{"\x1b"},
		},
		{
			name:     "falling symbol in red",
			frames:   [][]byte{msft},
			tty:      true,
			contains: []string{ansiRed + "   -2.00%" + ansiReset},
		},
		{
			name:     "subscribed, no snapshot yet",
			frames:   [][]byte{aapl},
			contains: []string{"MSFT                    -            -            -         -               -  waiting"},
		},
		{
			name:     "stale feed on a terminal",
			frames:   [][]byte{codec.Binary.AppendStatus(nil, codec.StatusStale, "kafka unreachable")},
			tty:      true,
			contains: []string{ansiAlarm + " FEED STALE: kafka unreachable " + ansiReset},
		},
		{
			name:     "stale feed, plain",
			frames:   [][]byte{codec.Binary.AppendStatus(nil, codec.StatusStale, "kafka unreachable")},
			contains: []string{"FEED STALE: kafka unreachable"},
			absent:   []string{"feed live"},
		},
		{
			name:     "recovering feed",
			frames:   [][]byte{codec.Binary.AppendStatus(nil, codec.StatusRecovering, "catching up")},
			contains: []string{"feed recovering: catching up"},
		},
		{
			name:     "server error and violations",
			frames:   [][]byte{codec.Binary.AppendError(nil, 1, 404, "unknown symbol", []string{"ZZZ"}), quoteFrame(9, nil)},
			contains: []string{"last error: server error 404 (request 1): unknown symbol [ZZZ]", "protocol violations: 1"},
		},
		{
			name:     "reconnecting before any connection",
			state:    "reconnecting in 1s (connection refused)",
			contains: []string{"reconnecting in 1s (connection refused)", "disconnected", "AAPL", "waiting"},
			absent:   []string{"feed live"},
		},
		{
			name:     "trend from the history and a live bar, on a terminal",
			frames:   [][]byte{aapl, aaplBars, aaplBar},
			trend:    true,
			tty:      true,
			contains: []string{"TREND 15×1m", ansiGreen + "  +1.50% ▁▃█" + ansiReset, "waiting         -"},
		},
		{
			name:     "trend, plain",
			frames:   [][]byte{aapl, aaplBars},
			trend:    true,
			contains: []string{"  +0.75% ▁█"},
		},
		{
			name:     "a server without bars",
			frames:   [][]byte{aapl},
			trend:    true,
			noTrend:  "bad request: bars are off on this server",
			contains: []string{"no trend: bad request: bars are off on this server", "TREND 15×1m"},
		},
		{
			name:     "no trend column",
			frames:   [][]byte{aapl, aaplBars},
			absent:   []string{"TREND", "▁"},
			contains: []string{"AAPL"},
		},
		{
			name:         "disconnected, last prices kept",
			frames:       [][]byte{aapl},
			disconnected: true,
			state:        "reconnecting in 2s (EOF)",
			tty:          true,
			contains:     []string{"reconnecting in 2s (EOF)", ansiAlarm + " DISCONNECTED: prices as of the last connection " + ansiReset, "101.00"},
			absent:       []string{"feed live"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := view{url: "ws://h/ws", state: tt.state, syms: []string{"AAPL", "MSFT"}, now: now, tty: tt.tty, noTrend: tt.noTrend}
			var opts *codec.SubOptions
			if tt.trend {
				v.bars, v.trend = "1m", 15
				o := codec.DefaultSubOptions()
				o.Bars, o.BarCount = v.bars, v.trend
				opts = &o
			}
			if tt.frames != nil {
				v.connected = !tt.disconnected
				v.book = client.NewBook()
				v.book.NoteSub(1, v.syms, opts)
				setup := codec.Binary.AppendHello(nil, "n1", 1000)
				setup = codec.Binary.AppendAck(setup, 1, []codec.SymbolID{{Sym: "AAPL", SID: 1}, {Sym: "MSFT", SID: 2}})
				for _, f := range append([][]byte{setup}, tt.frames...) {
					if err := v.book.Feed(codec.Binary, f, now, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			var buf bytes.Buffer
			render(&buf, v)
			out := buf.String()
			for _, s := range tt.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(out, s) {
					t.Errorf("output has %q:\n%s", s, out)
				}
			}
			if lines := strings.Count(out, "\n"); lines < 5 {
				t.Errorf("%d lines, want a header, a notes line, the column titles and 2 rows:\n%s", lines, out)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{groupThousands("0"), "0"},
		{groupThousands("999"), "999"},
		{groupThousands("1000"), "1,000"},
		{groupThousands("-1234567.5"), "-1,234,567.5"},
		{formatAge(-time.Second), "0.0s"},
		{formatAge(2500 * time.Millisecond), "2.5s"},
		{formatAge(42 * time.Second), "42s"},
		{formatAge(3 * time.Hour), "3h"},
		{formatAge(50 * time.Hour), "2d"},
		{price(&client.Entry{Mask: 1 << codec.FieldBid, Values: [codec.NumFields]float64{codec.FieldBid: 187.2}}, codec.FieldBid), "187.20"},
		{price(&client.Entry{}, codec.FieldBid), "-"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestRunWatchArgs(t *testing.T) {
	tests := []refusal{
		{"help", []string{"-h"}, "", flag.ErrHelp},
		{"no symbol", nil, "no symbol", nil},
		{"no url", []string{"--url"}, "flag --url needs a value", nil},
		{"bad symbol", []string{"AAPL", "bad symbol!"}, `invalid symbol "bad symbol!"`, nil},
		{"flag after a symbol", []string{"AAPL", "--nope"}, "unknown flag --nope", nil},
		{"bad scheme", []string{"--url", "ftp://h/ws", "AAPL"}, `--url "ftp://h/ws": scheme ftp`, nil},
		{"trend of no bar", []string{"--trend", "0", "AAPL"}, "--trend 0: want 1 to 10000 bars", nil},
		{"no host", []string{"--url", "ws:///ws", "AAPL"}, `--url "ws:///ws": want ws://`, nil},
	}
	testRefusals(t, runWatch, tests, "usage: tickstream watch")
}

func TestWatchURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8080/ws"},
		{"wss://md.example.com/ws?x=1", "wss://md.example.com/ws?x=1"},
		{"http://127.0.0.1:8080/", "ws://127.0.0.1:8080/ws"},
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws"},
		{"https://md.example.com", "wss://md.example.com/ws"},
		{"https://md.example.com/feed/ws", "wss://md.example.com/feed/ws"},
		{"127.0.0.1:8080", "ws://127.0.0.1:8080/ws"},
		{"HTTP://h:1", "ws://h:1/ws"},
	}
	for _, tt := range tests {
		if got, err := watchURL(tt.in); err != nil || got != tt.want {
			t.Errorf("watchURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that the test reads while runWatch writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// quoteServer answers every SUB with ACK and a SNAPSHOT (bid 187.25) of each
// symbol. It counts connections and can drop them all.
type quoteServer struct {
	gws.BuiltinEventHandler
	// bars answers a SUB with bars with 3 bars of 1m after each SNAPSHOT
	// (the close rising from 187 to 187.25); barsOff refuses such a SUB,
	// as a server with bars off does.
	bars, barsOff bool
	subs          []codec.SubOptions
	mu            sync.Mutex
	conns         []*gws.Conn
	dials         int
	tokens        []string
	wg            sync.WaitGroup
}

func (s *quoteServer) OnOpen(ws *gws.Conn) {
	_ = ws.WriteMessage(gws.OpcodeBinary, codec.Binary.AppendHello(nil, "fake-1", 1000))
}

func (s *quoteServer) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	var cmd codec.Command
	codec.Binary.DecodeCommands(m.Bytes(), &cmd, func(c *codec.Command, err error) {
		if err != nil || c.Op != codec.OpSub {
			return
		}
		s.mu.Lock()
		s.subs = append(s.subs, c.Opts)
		s.mu.Unlock()
		if c.Opts.Bars != "" && s.barsOff {
			_ = ws.WriteMessage(gws.OpcodeBinary, codec.Binary.AppendError(nil, c.ID, 400, "bad request: bars are off on this server", nil))
			return
		}
		var acks []codec.SymbolID
		var out []byte
		for i, sym := range c.Syms {
			acks = append(acks, codec.SymbolID{Sym: string(sym), SID: uint32(i + 1)})
		}
		out = codec.Binary.AppendAck(out, c.ID, acks)
		for _, a := range acks {
			out = append(out, quoteFrame(a.SID, map[int]float64{codec.FieldBid: 187.25})...)
			if c.Opts.WantsBarHistory() && s.bars {
				t := time.Now().Truncate(time.Minute).UnixMicro()
				out = codec.Binary.AppendBars(out, a.SID, 1, c.Opts.Bars, []codec.Bar{
					{T: t - 120e6, Open: 187, High: 187, Low: 187, Close: 187, Trades: 1},
					{T: t - 60e6, Open: 187, High: 187.25, Low: 187, Close: 187.1, Trades: 2},
					{T: t, Open: 187.1, High: 187.25, Low: 187.1, Close: 187.25, Trades: 2},
				})
			}
		}
		_ = ws.WriteMessage(gws.OpcodeBinary, out)
	})
}

func (s *quoteServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ws := range s.conns {
		_ = ws.NetConn().Close()
	}
}

func (s *quoteServer) dialCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dials
}

func TestRunWatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	qs := &quoteServer{}
	up := gws.NewUpgrader(qs, &gws.ServerOption{SubProtocols: []string{codec.SubprotocolBinary}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		qs.mu.Lock()
		qs.conns = append(qs.conns, ws)
		qs.dials++
		qs.tokens = append(qs.tokens, r.Header.Get("Authorization"))
		qs.wg.Add(1)
		qs.mu.Unlock()
		defer qs.wg.Done()
		ws.ReadLoop()
	}))
	defer func() {
		qs.dropAll()
		qs.wg.Wait()
		srv.Close()
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		// The address a browser would use: watch finds /ws there.
		done <- runWatch(ctx, []string{"AAPL", "--url", srv.URL, "--token", "s3cret"}, &out, &out)
	}()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; output:\n%s", what, out.String())
			}
		}
	}
	waitUntil("the quote", func() bool { return strings.Contains(out.String(), "187.25") })
	if !strings.Contains(out.String(), "connected to fake-1") {
		t.Errorf("no connection state in:\n%s", out.String())
	}

	if strings.Contains(out.String(), "DISCONNECTED") {
		t.Errorf("DISCONNECTED while connected:\n%s", out.String())
	}

	qs.dropAll()
	waitUntil("reconnecting", func() bool { return strings.Contains(out.String(), "reconnecting") })
	waitUntil("disconnected", func() bool { return strings.Contains(out.String(), "DISCONNECTED") })
	waitUntil("a second connection", func() bool { return qs.dialCount() == 2 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runWatch after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runWatch did not return after cancel")
	}
	qs.mu.Lock()
	for _, tok := range qs.tokens {
		if tok != "Bearer s3cret" {
			t.Errorf("Authorization = %q", tok)
		}
	}
	qs.mu.Unlock()
}

func TestRunWatchRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad token", http.StatusUnauthorized)
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := runWatch(context.Background(), []string{"--url", "ws" + strings.TrimPrefix(srv.URL, "http"), "AAPL"}, &out, &out)
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Errorf("runWatch = %v, want the 401 at once", err)
	}
}

// closer accepts the upgrade and closes with 4001, as a server refusing
// the credentials does.
type closer struct{ gws.BuiltinEventHandler }

func (closer) OnOpen(ws *gws.Conn) {
	_ = ws.WriteClose(4001, []byte("invalid token: token is expired"))
}

// closerServer serves closer on a test server, over TLS when withTLS.
func closerServer(t *testing.T, withTLS bool) *httptest.Server {
	up := gws.NewUpgrader(closer{}, &gws.ServerOption{SubProtocols: []string{codec.SubprotocolBinary}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := up.Upgrade(w, r); err == nil {
			ws.ReadLoop()
		}
	}))
	if withTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestRunWatchUnauthenticated checks that a 4001 ends watch at once with
// advice in its terms: --token, and where to get one.
func TestRunWatchUnauthenticated(t *testing.T) {
	srv := closerServer(t, false)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "pass a token with --token (mint one with 'tickstream token')"},
		{[]string{"--token", "old"}, "the server refused --token: mint a valid one with 'tickstream token'"},
	} {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := runWatch(ctx, append(tc.args, "--url", srv.URL, "AAPL"), &out, &out)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "4001") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("runWatch %q = %v, want the 4001 with %q", tc.args, err, tc.want)
		}
	}
}

// TestRunWatchServerCA checks wss:// against a server whose certificate the
// system does not trust: watch stops at once and names --server-ca; with the
// CA in --server-ca it gets through the TLS handshake to the server (which
// refuses the credentials, 4001, so that the run ends); with another CA it
// says to check the file; a file with no certificate is a bad command line.
func TestRunWatchServerCA(t *testing.T) {
	srv := closerServer(t, true)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	other, _, _ := testcert.Write(t)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{nil, "certificate signed by unknown authority; if a private CA signed the server's certificate, pass that CA with --server-ca FILE", false},
		{[]string{"--server-ca", ca}, "4001", false},
		{[]string{"--server-ca", other}, "check that --server-ca " + other + " holds the CA", false},
		{[]string{"--server-ca", notPEM}, "--server-ca " + notPEM + ": no PEM certificate in it", true},
		{[]string{"--server-ca", filepath.Join(dir, "missing.pem")}, "--server-ca: open", true},
	} {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := runWatch(ctx, append(tc.args, "--url", srv.URL, "AAPL"), &out, &out)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("runWatch %q = %v, want an error with %q (usage %v)", tc.args, err, tc.want, tc.usage)
		}
	}
}

// watchServer serves qs on a test server and returns its URL and a function
// that stops both.
func watchServer(t *testing.T, qs *quoteServer) (string, func()) {
	t.Helper()
	up := gws.NewUpgrader(qs, &gws.ServerOption{SubProtocols: []string{codec.SubprotocolBinary}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		qs.mu.Lock()
		qs.conns = append(qs.conns, ws)
		qs.dials++
		qs.wg.Add(1)
		qs.mu.Unlock()
		defer qs.wg.Done()
		ws.ReadLoop()
	}))
	return srv.URL, func() {
		qs.dropAll()
		qs.wg.Wait()
		srv.Close()
	}
}

// TestRunWatchTrend runs watch against a server with bars (the TREND column
// fills from the BARS) and one with bars off (watch subscribes again without
// bars, shows the prices, and says why the column is empty).
func TestRunWatchTrend(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name string
		qs   *quoteServer
		want []string
		subs int // SUBs the server saw: a second one without bars after a refusal
	}{
		{"bars", &quoteServer{bars: true}, []string{"187.25", "TREND 15×1m", "+0.13% ▁▃█"}, 1},
		{"bars off", &quoteServer{barsOff: true}, []string{"187.25", "no trend: bad request: bars are off on this server"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, stop := watchServer(t, tc.qs)
			defer stop()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			done := make(chan error, 1)
			go func() { done <- runWatch(ctx, []string{"--url", url, "AAPL"}, &out, &out) }()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				all := true
				for _, w := range tc.want {
					all = all && strings.Contains(out.String(), w)
				}
				if all {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("want %q in the output:\n%s", tc.want, out.String())
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runWatch = %v", err)
			}
			tc.qs.mu.Lock()
			defer tc.qs.mu.Unlock()
			if len(tc.qs.subs) != tc.subs || tc.qs.subs[0].Bars != "1m" || tc.qs.subs[0].BarCount != 15 || tc.qs.subs[len(tc.qs.subs)-1].Bars != "" && tc.subs == 2 {
				t.Errorf("SUB options %+v: want bars 1m, barCount 15 first, then (after a refusal) none", tc.qs.subs)
			}
		})
	}
}
