package server

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/internal/testcert"
)

// TestReaderSlotGenerations checks the names the poller's events carry: a
// slot freed and given to another connection has a new generation, so that
// an event of the old one (read before its close, handled after) finds
// nothing, where an fd, reused by the kernel, would find the new one.
func TestReaderSlotGenerations(t *testing.T) {
	r := newWSReaders(time.Minute, slogDiscard())
	old, other, next := &wsConn{}, &wsConn{}, &wsConn{}
	r.place(old)
	r.place(other)
	r.remove(old)
	r.place(next)
	r.mu.Lock()
	defer r.mu.Unlock()
	if next.slot != old.slot || next.gen == old.gen {
		t.Fatalf("slot %d gen %d reused as slot %d gen %d", old.slot, old.gen, next.slot, next.gen)
	}
	if c := r.lookupLocked(old.slot, old.gen); c != nil {
		t.Error("an event of a closed connection found the connection now in its slot")
	}
	if c := r.lookupLocked(next.slot, next.gen); c != next {
		t.Error("the connection in a reused slot is not found")
	}
	if c := r.lookupLocked(other.slot, other.gen); c != other {
		t.Error("a connection is not found by its slot")
	}
	if c := r.lookupLocked(99, 1); c != nil {
		t.Error("a slot never used found a connection")
	}
}

// readerCounts returns how many open connections the poller drives and how
// many have a goroutine.
func readerCounts(s *Server) (polled, goroutine int) {
	s.readers.mu.Lock()
	defer s.readers.mu.Unlock()
	for _, c := range s.readers.conns {
		switch {
		case c == nil:
		case c.polled():
			polled++
		default:
			goroutine++
		}
	}
	return polled, goroutine
}

// TestIdleSweep checks that the sweep closes a connection that sends
// nothing, not even a pong, with 1000 "idle timeout", over TLS (read by a
// goroutine) and plain TCP (by the poller on Linux), and that the reader of
// a TLS connection works.
func TestIdleSweep(t *testing.T) {
	const idle = time.Second
	certFile, keyFile, pool := testcert.Write(t)
	for _, tc := range []struct {
		name    string
		tls     bool
		scheme  string
		polled  bool
		tlsConf *tls.Config
	}{
		{name: "tls", tls: true, scheme: "wss", tlsConf: &tls.Config{RootCAs: pool}},
		{name: "plain", scheme: "ws", polled: runtime.GOOS == "linux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{IdleTimeout: idle}
			if tc.tls {
				cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
			}
			s := startNode(t, setup{Config: cfg, Demo: demo.Config{Symbols: 5, Rate: 50}}).Server
			url := tc.scheme + "://" + s.Addr() + "/ws"
			silent, _, err := dialRaw(t, url, nil, tc.tlsConf, true)
			if err != nil {
				t.Fatal(err)
			}
			silent.find(t, "HELLO", isHello)
			// A request and its answer: the reader works.
			silent.send(t, codec.Binary.AppendSub(nil, 7, []string{"AAPL"}, nil))
			silent.find(t, "ACK 7", func(m *codec.Message) bool { return m.Op == codec.OpAck && m.ID == 7 })
			polled, goroutine := readerCounts(s)
			if want := map[bool]int{true: 1}; polled != want[tc.polled] || goroutine != want[!tc.polled] {
				t.Errorf("%d connections polled, %d with a goroutine; want the connection polled: %t", polled, goroutine, tc.polled)
			}
			started := time.Now()
			code, reason := silent.closed(t)
			t.Logf("closed %v after its last request", time.Since(started))
			if code != 1000 || reason != "idle timeout" {
				t.Errorf("closed with %d %q, want 1000 idle timeout", code, reason)
			}
			waitUntil(t, 5*time.Second, "the connection's end", func() bool {
				polled, goroutine := readerCounts(s)
				return polled+goroutine == 0
			})
		})
	}
}

// TestHandlerPanic checks that a panic in a request's handling is logged
// and does not end the process: the reader runs the engine's handler in a
// poll worker shared by every connection.
func TestHandlerPanic(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	c := &wsConn{server: s, ip: "192.0.2.1"} // no client: HandleFrame panics
	c.Message([]byte{0x90})
	if !strings.Contains(logs.String(), "panic handling a request") || !strings.Contains(logs.String(), "192.0.2.1") {
		t.Errorf("the panic was not logged: %q", logs.String())
	}
}
