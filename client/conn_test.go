package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
)

// fakeServer is a tickstream server reduced to what a test scripts: it
// upgrades /ws with gws, calls onOpen for each connection and onCommand for
// each decoded client message.
type fakeServer struct {
	t         *testing.T
	url       string
	onOpen    func(s *serverConn)
	onCommand func(s *serverConn, c *codec.Command)
	headers   chan http.Header // upgrade request headers, one per connection
	roots     *x509.CertPool   // trusts its certificate, when it serves wss://

	wg    sync.WaitGroup // the connections' read loops and helper goroutines
	mu    sync.Mutex
	conns []*gws.Conn
}

// serverConn is one server-side connection and its format.
type serverConn struct {
	ws     *gws.Conn
	format codec.Format
}

// send writes msgs as one frame.
func (s *serverConn) send(msgs ...msg) error {
	op := gws.OpcodeBinary
	if s.format == codec.JSON {
		op = gws.OpcodeText
	}
	return s.ws.WriteMessage(op, frame(s.format, msgs...))
}

// newFakeServer starts a server; refuse, when set, answers every upgrade
// request instead.
func newFakeServer(t *testing.T, refuse http.HandlerFunc) *fakeServer {
	return startFakeServer(t, refuse, false)
}

// newFakeTLSServer starts a server of wss:// and returns it with the pool
// that trusts its certificate.
func newFakeTLSServer(t *testing.T) (*fakeServer, *x509.CertPool) {
	fs := startFakeServer(t, nil, true)
	return fs, fs.roots
}

func startFakeServer(t *testing.T, refuse http.HandlerFunc, withTLS bool) *fakeServer {
	fs := &fakeServer{t: t, headers: make(chan http.Header, 16)}
	up := gws.NewUpgrader((*serverEvents)(fs), &gws.ServerOption{
		SubProtocols:      []string{codec.SubprotocolBinary, codec.SubprotocolJSON},
		PermessageDeflate: gws.PermessageDeflate{Enabled: true},
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.headers <- r.Header.Clone()
		if refuse != nil {
			refuse(w, r)
			return
		}
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		fs.mu.Lock()
		fs.conns = append(fs.conns, ws)
		fs.wg.Add(1)
		fs.mu.Unlock()
		defer fs.wg.Done()
		ws.ReadLoop()
	}))
	if withTLS {
		srv.StartTLS()
		fs.roots = x509.NewCertPool()
		fs.roots.AddCert(srv.Certificate())
	} else {
		srv.Start()
	}
	fs.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	t.Cleanup(func() {
		fs.mu.Lock()
		for _, ws := range fs.conns {
			_ = ws.NetConn().Close()
		}
		fs.mu.Unlock()
		fs.wg.Wait()
		srv.Close()
	})
	return fs
}

type serverEvents fakeServer

func (e *serverEvents) conn(ws *gws.Conn) *serverConn {
	f, _ := codec.FormatFor(ws.SubProtocol())
	return &serverConn{ws: ws, format: f}
}

func (e *serverEvents) OnOpen(ws *gws.Conn) {
	if e.onOpen != nil {
		e.onOpen(e.conn(ws))
	}
}

func (e *serverEvents) OnClose(*gws.Conn, error) {}
func (e *serverEvents) OnPing(*gws.Conn, []byte) {}
func (e *serverEvents) OnPong(*gws.Conn, []byte) {}
func (e *serverEvents) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	s := e.conn(ws)
	if want := map[codec.Format]gws.Opcode{codec.Binary: gws.OpcodeBinary, codec.JSON: gws.OpcodeText}[s.format]; m.Opcode != want {
		e.t.Errorf("client sent opcode %d in %s", m.Opcode, s.format)
	}
	var c codec.Command
	s.format.DecodeCommands(m.Bytes(), &c, func(c *codec.Command, err error) {
		if err != nil {
			e.t.Errorf("client sent a bad command: %v", err)
			return
		}
		if e.onCommand != nil {
			e.onCommand(s, c)
		}
	})
}

// waitFor polls cond until it holds, or fails the test after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// market answers SUB with ACK, a SNAPSHOT and a DELTA of every symbol, all
// in one frame, and PING with PONG.
func market(s *serverConn, c *codec.Command) {
	switch c.Op {
	case codec.OpSub:
		acks := make([]codec.SymbolID, len(c.Syms))
		msgs := []msg{nil}
		for i, sym := range c.Syms {
			acks[i] = sid(string(sym), uint32(i+1))
			msgs = append(msgs,
				snapshot(uint32(i+1), 1, fv{bid, 100 + float64(i)}, fv{ask, 101 + float64(i)}),
				delta(uint32(i+1), 2, fv{last, 100.5}))
		}
		msgs[0] = ack(c.ID, acks...)
		_ = s.send(msgs...)
	case codec.OpPing:
		_ = s.send(func(f codec.Format, dst []byte) []byte { return f.AppendPong(dst, c.ID, c.T, 1) })
	}
}

func TestConn(t *testing.T) {
	for _, tt := range []struct {
		format      codec.Format
		compression bool
	}{
		{codec.Binary, false},
		{codec.Binary, true},
		{codec.JSON, false},
		{codec.JSON, true},
	} {
		t.Run(fmt.Sprintf("%s/compression=%v", tt.format, tt.compression), func(t *testing.T) {
			fs := newFakeServer(t, nil)
			fs.onOpen = func(s *serverConn) { _ = s.send(hello()) }
			fs.onCommand = market

			pongs := make(chan codec.Message, 4)
			var ops []codec.Op // written on the read goroutine, read after Close
			closed := make(chan int, 1)
			c, err := Dial(dialCtx(t), fs.url, Options{
				Format:      tt.format,
				Compression: tt.compression,
				Header:      http.Header{"Authorization": {"Bearer t0k"}},
				OnMessage: func(m *codec.Message) {
					ops = append(ops, m.Op)
					if m.Op == codec.OpPong {
						pongs <- *m
					}
				},
				OnClose: func(code int, reason string) { closed <- code },
			})
			if err != nil {
				t.Fatal(err)
			}
			h := <-fs.headers
			if got := h.Get("Authorization"); got != "Bearer t0k" {
				t.Errorf("Authorization = %q", got)
			}
			if got := h.Get("Sec-WebSocket-Protocol"); got != tt.format.String() {
				t.Errorf("Sec-WebSocket-Protocol = %q, want %q", got, tt.format)
			}
			if got := strings.Contains(h.Get("Sec-WebSocket-Extensions"), "permessage-deflate"); got != tt.compression {
				t.Errorf("permessage-deflate offered: %v, want %v", got, tt.compression)
			}
			if hl := c.Hello(); hl.ServerID != "node-1" || hl.Heartbeat != time.Second {
				t.Errorf("Hello() = %+v", hl)
			}

			// 50 symbols make a frame large enough to be compressed.
			var syms []string
			for i := range 50 {
				syms = append(syms, fmt.Sprintf("S%02d", i))
			}
			if id, err := c.Subscribe(syms, nil); err != nil || id != 1 {
				t.Fatalf("Subscribe = %d, %v; want 1", id, err)
			}
			waitFor(t, "50 symbols at seq 2", func() bool {
				for _, s := range syms {
					if seq, _, _ := c.Book().State(s); seq != 2 {
						return false
					}
				}
				return true
			})
			if seq, values, _ := c.Book().State("S07"); seq != 2 || values["bid"] != 107 || values["ask"] != 108 || values["last"] != 100.5 {
				t.Errorf("State(S07) = %d %v", seq, values)
			}

			if id, err := c.Ping(7.25); err != nil || id != 2 {
				t.Fatalf("Ping = %d, %v; want 2", id, err)
			}
			if p := <-pongs; p.ID != 2 || p.T != 7.25 {
				t.Errorf("PONG = id %d t %v, want 2 7.25", p.ID, p.T)
			}
			if id, err := c.Unsubscribe(syms[:1]); err != nil || id != 3 {
				t.Fatalf("Unsubscribe = %d, %v; want 3", id, err)
			}
			if id, err := c.Snap(syms[1:2]); err != nil || id != 4 {
				t.Fatalf("Snap = %d, %v; want 4", id, err)
			}
			if got := len(c.Book().Symbols()); got != 49 {
				t.Errorf("%d symbols after UNSUB, want 49", got)
			}

			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			<-c.Done()
			if code := c.CloseCode(); code != 1000 {
				t.Errorf("CloseCode() = %d, want 1000", code)
			}
			if code := <-closed; code != 1000 {
				t.Errorf("OnClose code = %d, want 1000", code)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if v := c.Book().Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
			if len(ops) == 0 || ops[0] != codec.OpHello {
				t.Errorf("OnMessage saw %v first, want HELLO", ops)
			}
		})
	}
}

func TestConnServerClose(t *testing.T) {
	fs := newFakeServer(t, nil)
	fs.onOpen = func(s *serverConn) {
		_ = s.send(hello())
		_ = s.ws.WriteClose(4008, []byte("slow consumer"))
	}
	type status struct {
		code   int
		reason string
	}
	closed := make(chan status, 1)
	c, err := Dial(dialCtx(t), fs.url, Options{OnClose: func(code int, reason string) { closed <- status{code, reason} }})
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	want := status{4008, "slow consumer"}
	if got := (status{c.CloseCode(), c.CloseReason()}); got != want {
		t.Errorf("close = %v, want %v", got, want)
	}
	if got := <-closed; got != want {
		t.Errorf("OnClose got %v, want %v", got, want)
	}
}

func TestConnHeartbeat(t *testing.T) {
	const hb = 60 * time.Millisecond
	fs := newFakeServer(t, nil)
	stopped := make(chan time.Time, 1)
	fs.onOpen = func(s *serverConn) {
		_ = s.send(func(f codec.Format, dst []byte) []byte { return f.AppendHello(dst, "node-1", int(hb/time.Millisecond)) })
		fs.wg.Go(func() {
			// Heartbeats keep the connection alive well past 3 intervals,
			// then stop.
			for range 20 {
				time.Sleep(hb / 3)
				_ = s.send(heartbeat())
			}
			stopped <- time.Now()
		})
	}
	c, err := Dial(dialCtx(t), fs.url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stop time.Time
	select {
	case stop = <-stopped:
	case <-c.Done():
		t.Fatalf("connection closed while heartbeats came: %d %s", c.CloseCode(), c.CloseReason())
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open 5s after the heartbeats stopped")
	}
	if code := c.CloseCode(); code != CloseTimeout {
		t.Errorf("CloseCode() = %d (%s), want %d", code, c.CloseReason(), CloseTimeout)
	}
	if silent := time.Since(stop); silent < 3*hb-hb/3 {
		t.Errorf("closed after %v of silence, want about %v", silent, 3*hb)
	}
}

// TestDialTLS dials wss://: refused without the CA of the server's
// certificate, connected with it in Options.TLSConfig, which Dial leaves as
// it was (gws writes the host name into the config it is given, and one
// config serves many connections, to many hosts).
func TestDialTLS(t *testing.T) {
	fs, roots := newFakeTLSServer(t)
	fs.onOpen = func(s *serverConn) { _ = s.send(hello()) }
	if !strings.HasPrefix(fs.url, "wss://") {
		t.Fatalf("url %s: want wss://", fs.url)
	}
	_, err := Dial(dialCtx(t), fs.url, Options{})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Dial without the CA: %v, want x509.UnknownAuthorityError", err)
	}
	cfg := &tls.Config{RootCAs: roots}
	c, err := Dial(dialCtx(t), fs.url, Options{TLSConfig: cfg})
	if err != nil {
		t.Fatalf("Dial with the CA: %v", err)
	}
	defer c.Close()
	if c.Hello().ServerID == "" {
		t.Error("no HELLO")
	}
	if cfg.ServerName != "" {
		t.Errorf("Dial changed the caller's TLS config: ServerName %q", cfg.ServerName)
	}
}

func TestDialRefused(t *testing.T) {
	fs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "missing token", http.StatusUnauthorized)
	})
	_, err := Dial(dialCtx(t), fs.url, Options{})
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || he.Body != "missing token" {
		t.Fatalf("Dial error = %v, want HandshakeError 401 with the body", err)
	}
}

func TestDialNoHello(t *testing.T) {
	tests := []struct {
		name   string
		onOpen func(s *serverConn)
		check  func(t *testing.T, err error)
	}{
		{
			name:   "server silent",
			onOpen: func(s *serverConn) {},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Dial error = %v, want the context's", err)
				}
			},
		},
		{
			name:   "server closes",
			onOpen: func(s *serverConn) { _ = s.ws.WriteClose(4001, []byte("not authenticated")) },
			check: func(t *testing.T, err error) {
				var ce *CloseError
				if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "not authenticated" {
					t.Errorf("Dial error = %v, want CloseError 4001", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, nil)
			fs.onOpen = tt.onOpen
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			c, err := Dial(ctx, fs.url, Options{})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded without HELLO")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Dial took %v", d)
			}
			tt.check(t, err)
		})
	}
}

func TestDialBadInput(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, "ws://127.0.0.1:1/ws", Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a canceled context: %v", err)
	}
	if _, err := Dial(dialCtx(t), "http://127.0.0.1:1/ws", Options{}); !errors.Is(err, gws.ErrUnsupportedProtocol) {
		t.Errorf("Dial of an http:// URL: %v", err)
	}
}

// TestConnReadDelay checks that a slow reader sees every message, in order.
func TestConnReadDelay(t *testing.T) {
	fs := newFakeServer(t, nil)
	fs.onOpen = func(s *serverConn) {
		_ = s.send(hello())
		_ = s.send(ack(0, sid("A", 1)))
		_ = s.send(snapshot(1, 1))
		for seq := uint64(2); seq <= 10; seq++ {
			_ = s.send(delta(1, seq, fv{last, float64(seq)}))
		}
	}
	start := time.Now()
	c, err := Dial(dialCtx(t), fs.url, Options{ReadDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "seq 10", func() bool { seq, _, _ := c.Book().State("A"); return seq == 10 })
	if d := time.Since(start); d < 12*10*time.Millisecond {
		t.Errorf("12 frames read in %v, want at least 120ms", d)
	}
	if st := c.Book().Stats(); st.Frames != 12 || len(c.Book().Violations()) > 0 {
		t.Errorf("%d frames, violations %v", st.Frames, c.Book().Violations())
	}
}
