package bench

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/wsframe"
)

// fakePeer is the server's end of one connection of a pollConn, on a bare
// TCP socket: a test writes its bytes as it likes, cut where it likes.
type fakePeer struct {
	t      *testing.T
	conn   net.Conn
	br     *bufio.Reader
	req    *http.Request
	format codec.Format
}

// serveFake accepts one connection on a loopback listener, reads its
// upgrade request and hands it to play; it returns the ws:// URL.
func serveFake(t *testing.T, play func(p *fakePeer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Errorf("upgrade request: %v", err)
			return
		}
		format := codec.Binary
		if req.Header.Get("Sec-WebSocket-Protocol") == codec.SubprotocolJSON {
			format = codec.JSON
		}
		play(&fakePeer{t: t, conn: conn, br: br, req: req, format: format})
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// upgrade answers with a 101 and, in the same write, early: the server's
// first frames.
func (p *fakePeer) upgrade(early ...[]byte) {
	sum := sha1.Sum([]byte(p.req.Header.Get("Sec-WebSocket-Key") + websocketGUID))
	b := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\nSec-WebSocket-Protocol: " + p.req.Header.Get("Sec-WebSocket-Protocol") + "\r\n\r\n")
	p.send(append(b, slices.Concat(early...)...))
}

// send writes each piece apart, a pause between them, so that the client
// reads them apart.
func (p *fakePeer) send(pieces ...[]byte) {
	for i, b := range pieces {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := p.conn.Write(b); err != nil {
			p.t.Errorf("write: %v", err)
			return
		}
	}
}

// frame is a server's frame: unmasked.
func frame(opcode byte, fin bool, payload []byte) []byte {
	return wsframe.AppendFrame(nil, wsframe.Header{Fin: fin, Opcode: opcode}, payload)
}

// opcode is the opcode of a message in the connection's format.
func (p *fakePeer) opcode() byte {
	if p.format == codec.JSON {
		return wsframe.OpText
	}
	return wsframe.OpBinary
}

func (p *fakePeer) message(payload []byte) []byte { return frame(p.opcode(), true, payload) }

func (p *fakePeer) hello(heartbeatMs int) []byte {
	return p.message(p.format.AppendHello(nil, "fake", heartbeatMs))
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// expect reads the client's next frame, which must be masked and of
// opcode, and returns its payload.
func (p *fakePeer) expect(opcode byte) []byte {
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [6]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		p.t.Errorf("reading the client's frame: %v", err)
		return nil
	}
	if h[0] != 0x80|opcode || h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		p.t.Errorf("the client's frame starts %x, want a masked, short frame of opcode %d", h[:2], opcode)
		return nil
	}
	payload := make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(p.br, payload); err != nil {
		p.t.Errorf("reading the client's frame: %v", err)
	}
	wsframe.Mask(payload, [4]byte(h[2:6]), 0)
	return payload
}

// TestPollConn checks the poller's client side against a server written
// byte by byte: the frames it reads, however they are cut, what it
// answers, and how each connection ends.
func TestPollConn(t *testing.T) {
	ack := func(p *fakePeer) []byte {
		return p.message(p.format.AppendAck(nil, 1, []codec.SymbolID{{Sym: "AAPL", SID: 1}}))
	}
	state := func(p *fakePeer, op codec.Op, seq uint64) []byte {
		vals := [codec.NumFields]float64{codec.FieldTS: 1}
		return p.message(p.format.AppendState(nil, op, 1, seq, 1<<codec.FieldTS, &vals))
	}
	// subscribed reads the client's SUB of AAPL.
	subscribed := func(p *fakePeer) {
		var cmd codec.Command
		ok := false
		p.format.DecodeCommands(p.expect(p.opcode()), &cmd, func(c *codec.Command, err error) {
			ok = err == nil && c.Op == codec.OpSub && c.ID == 1 && len(c.Syms) == 1 && string(c.Syms[0]) == "AAPL"
		})
		if !ok {
			p.t.Error("the client's first request is not SUB 1 AAPL")
		}
	}
	cases := []struct {
		name       string
		json       bool
		play       func(p *fakePeer)
		ops        []codec.Op // what OnMessage saw
		code       int
		reason     string
		violations int
	}{
		{name: "HELLO with the 101, frames cut across reads", play: func(p *fakePeer) {
			p.upgrade(p.hello(1000))
			subscribed(p)
			b := slices.Concat(ack(p), state(p, codec.OpSnapshot, 1), state(p, codec.OpDelta, 2))
			p.send(b[:1], b[1:7], b[7:len(b)-3], b[len(b)-3:])
			p.send(frame(wsframe.OpClose, true, closePayload(1001, "going away")))
			if got := p.expect(wsframe.OpClose); string(got) != string(closePayload(1000, "")) {
				p.t.Errorf("close answered with %x, want 1000", got)
			}
		}, ops: []codec.Op{codec.OpHello, codec.OpAck, codec.OpSnapshot, codec.OpDelta}, code: 1001, reason: "going away"},
		{name: "several frames in one read, JSON", json: true, play: func(p *fakePeer) {
			p.upgrade(p.hello(1000))
			subscribed(p)
			p.send(slices.Concat(ack(p), state(p, codec.OpSnapshot, 1), state(p, codec.OpDelta, 2), state(p, codec.OpDelta, 3),
				frame(wsframe.OpClose, true, closePayload(4008, "slow consumer"))))
			if got := p.expect(wsframe.OpClose); string(got) != string(closePayload(4008, "")) {
				p.t.Errorf("close answered with %x, want 4008 echoed", got)
			}
		}, ops: []codec.Op{codec.OpHello, codec.OpAck, codec.OpSnapshot, codec.OpDelta, codec.OpDelta}, code: 4008, reason: "slow consumer"},
		{name: "fragmented message, ping between the fragments", play: func(p *fakePeer) {
			p.upgrade(p.hello(1000))
			subscribed(p)
			b := ack(p)
			msg := b[2:] // the payload of a short frame
			p.send(frame(wsframe.OpBinary, false, msg[:3]), frame(wsframe.OpPing, true, []byte("hb")), frame(wsframe.OpContinuation, true, msg[3:]))
			if got := p.expect(wsframe.OpPong); string(got) != "hb" {
				p.t.Errorf("pong %q, want hb", got)
			}
			p.send(frame(wsframe.OpClose, true, nil))
			if got := p.expect(wsframe.OpClose); len(got) != 0 {
				p.t.Errorf("an empty close answered with %x", got)
			}
		}, ops: []codec.Op{codec.OpHello, codec.OpAck}, code: 1005},
		{name: "dropped without a close frame", play: func(p *fakePeer) {
			p.upgrade(p.hello(1000))
			subscribed(p)
		}, ops: []codec.Op{codec.OpHello}, code: 1006, reason: "EOF"},
		{name: "a masked frame from the server", play: func(p *fakePeer) {
			p.upgrade(p.hello(1000))
			subscribed(p)
			p.send(wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}}, []byte("x")))
			if got := p.expect(wsframe.OpClose); string(got) != string(closePayload(1002, "masked server frame")) {
				p.t.Errorf("answered with close %q, want 1002", got)
			}
		}, ops: []codec.Op{codec.OpHello}, code: 1002, reason: "masked server frame"},
		{name: "an undecodable message", play: func(p *fakePeer) {
			p.upgrade(p.hello(1000))
			subscribed(p)
			p.send(p.message([]byte{0xc1}), frame(wsframe.OpClose, true, closePayload(1000, "")))
			p.expect(wsframe.OpClose)
		}, ops: []codec.Op{codec.OpHello}, code: 1000, violations: 1},
		{name: "heartbeats keep it open", play: func(p *fakePeer) {
			p.upgrade(p.hello(50))
			subscribed(p)
			for range 40 { // past the once-a-second sweep
				p.send(p.message(p.format.AppendHeartbeat(nil, 1)))
				time.Sleep(30 * time.Millisecond)
			}
			p.send(frame(wsframe.OpClose, true, closePayload(1000, "")))
			p.expect(wsframe.OpClose)
		}, ops: append([]codec.Op{codec.OpHello}, slices.Repeat([]codec.Op{codec.OpHeartbeat}, 40)...), code: 1000},
		{name: "heartbeat stopped", play: func(p *fakePeer) {
			p.upgrade(p.hello(50))
			subscribed(p)
			_, _ = io.Copy(io.Discard, p.br) // until the client gives up
		}, ops: []codec.Op{codec.OpHello}, code: client.CloseTimeout, reason: "nothing received for 3 heartbeats of 50ms"},
	}
	poller, err := newConnPoller(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer poller.stop()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := serveFake(t, tc.play)
			format := codec.Binary
			if tc.json {
				format = codec.JSON
			}
			var (
				mu   sync.Mutex
				ops  []codec.Op
				wire atomic.Int64
			)
			type end struct {
				code   int
				reason string
			}
			ended := make(chan end, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := poller.dial(ctx, url, nil, format, &wire, func(m *codec.Message) {
				mu.Lock()
				ops = append(ops, m.Op)
				mu.Unlock()
			}, func(code int, reason string) { ended <- end{code, reason} })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe([]string{"AAPL"}, nil); err != nil {
				t.Fatal(err)
			}
			var e end
			select {
			case e = <-ended:
			case <-ctx.Done():
				t.Fatal("the connection did not end")
			}
			<-c.Done()
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(ops, tc.ops) || e.code != tc.code || e.reason != tc.reason || c.CloseCode() != tc.code {
				t.Errorf("saw ops %v and the end %d %q (CloseCode %d), want %v and %d %q", ops, e.code, e.reason, c.CloseCode(), tc.ops, tc.code, tc.reason)
			}
			if v := c.Book().Stats().Violations; v != uint64(tc.violations) {
				t.Errorf("%d violations, want %d: %v", v, tc.violations, c.Book().Violations())
			}
			if wire.Load() == 0 {
				t.Error("no wire bytes counted")
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close after the end: %v", err)
			}
		})
	}
}

// TestPollDialErrors checks that a refused upgrade and a connection closed
// before HELLO fail the dial with client.Dial's errors, which the run's
// error counts name.
func TestPollDialErrors(t *testing.T) {
	poller, err := newConnPoller(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer poller.stop()
	refused := serveFake(t, func(p *fakePeer) {
		p.send([]byte("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 20\r\n\r\ntoo many connections"))
	})
	var wire atomic.Int64
	_, err = poller.dial(context.Background(), refused, nil, codec.Binary, &wire, nil, nil)
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 429 || he.Body != "too many connections" || dialErrorKind(err) != "upgrade refused: HTTP 429" {
		t.Errorf("refused upgrade: %v, want a HandshakeError 429 with the reason", err)
	}
	closed := serveFake(t, func(p *fakePeer) {
		p.upgrade(frame(wsframe.OpClose, true, closePayload(4029, "too many")))
		p.expect(wsframe.OpClose)
	})
	_, err = poller.dial(context.Background(), closed, nil, codec.Binary, &wire, nil, nil)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != 4029 || ce.Reason != "too many" {
		t.Errorf("closed before HELLO: %v, want a CloseError 4029", err)
	}
}

// TestRunReadsOnPoller checks that a run over ws:// reads its connections
// on the poller, a few goroutines for all of them, and with SDKReader on
// a client.Conn each: the goroutines the run adds while it measures.
func TestRunReadsOnPoller(t *testing.T) {
	const conns = 300
	for _, sdk := range []bool{false, true} {
		t.Run(fmt.Sprintf("SDK reader %t", sdk), func(t *testing.T) {
			url, brokers := testServer(t)
			cfg := shortConfig(url, brokers)
			cfg.Conns, cfg.SDKReader = conns, sdk
			base := runtime.NumGoroutine()
			var most atomic.Int64
			cfg.Progress = func(p Progress) {
				if p.Phase == "measuring" {
					most.Store(max(most.Load(), int64(runtime.NumGoroutine())))
				}
			}
			res, err := Run(t.Context(), cfg, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Passed {
				t.Fatalf("run failed: %v", res.Failures)
			}
			added := most.Load() - int64(base)
			t.Logf("%d goroutines added by %d connections (clients and server), read by %s", added, conns, res.Config.ClientReader)
			switch {
			case !sdk && (res.Config.ClientReader != "poll" || added > conns/4): // the run's own, the broker's, the server's
				t.Errorf("%d goroutines added by %d connections, read by %q: want the poller's few", added, conns, res.Config.ClientReader)
			case sdk && (res.Config.ClientReader != "sdk" || added < conns*3/4):
				t.Errorf("%d goroutines added by %d connections, read by %q: want about one each", added, conns, res.Config.ClientReader)
			}
		})
	}
}
