//go:build linux

package server

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
)

// guardTotal is how many connections hold a slot of the connection limit.
func guardTotal(s *Server) int {
	s.guard.mu.Lock()
	defer s.guard.mu.Unlock()
	return s.guard.total
}

// waitEnded waits until the server has ended every connection: each has
// left the readers and released its slot of the limit.
func waitEnded(t *testing.T, s *Server) {
	t.Helper()
	waitUntil(t, 10*time.Second, "every connection ended", func() bool {
		polled, goroutine := readerCounts(s)
		return polled+goroutine == 0 && guardTotal(s) == 0
	})
}

// TestPollerIdleThenActive opens many connections that stay idle, checks
// that they hold no goroutine, then has each ping at once: every one gets
// its own pong. Closed by their clients, all end.
func TestPollerIdleThenActive(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 5, Rate: 50}})
	const n = 300
	before := runtime.NumGoroutine()
	conns := make([]*rawWS, n)
	for i := range conns {
		conns[i] = dialRawWS(t, s.Addr(), "")
		conns[i].until(t, 0x2) // HELLO
	}
	// The HELLO may come before the reader starts.
	waitUntil(t, 5*time.Second, "every connection polled", func() bool {
		polled, goroutine := readerCounts(s)
		if goroutine != 0 {
			t.Fatalf("%d connections with a goroutine", goroutine)
		}
		return polled == n
	})
	var grown int
	waitUntil(t, 5*time.Second, "idle connections without goroutines", func() bool {
		grown = runtime.NumGoroutine() - before
		return grown < n/10
	})
	t.Logf("%d idle connections: %d more goroutines", n, grown)
	for i, c := range conns {
		c.write(t, ping(fmt.Appendf(nil, "%d", i)))
	}
	for i, c := range conns {
		if got, want := string(c.until(t, 0xa)), fmt.Sprint(i); got != want {
			t.Fatalf("connection %d: pong %q, want %q", i, got, want)
		}
	}
	for _, c := range conns {
		c.conn.Close()
	}
	waitEnded(t, s)
}

// TestPollerCloseWhileReading ends connections while their frames are
// being read or wait in the poller: clients that reset their connection
// right after a burst of frames, and clients closed by the server (a
// request flood) while they go on sending. Every connection must end, its
// slot of the limit released. Connections open and close one after another
// on the side, so that fd numbers are reused under pending events: each
// gets its own pong.
func TestPollerCloseWhileReading(t *testing.T) {
	s := startServer(t, setup{Config: Config{Limits: Limits{RequestRate: 5, RequestBurst: 5}}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		c := dialRawWS(t, s.Addr(), "")
		c.until(t, 0x2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := frame{fin: true, opcode: 0x2, payload: codec.Binary.AppendSub(nil, 1, []string{"AAPL"}, nil)}
			if i%2 == 0 {
				// A burst, a frame left half sent, and a reset.
				b := wire(ping([]byte("a")), sub, ping([]byte("b")))
				b = append(b, sub.bytes()[:3]...)
				_, _ = c.conn.Write(b)
				_ = c.conn.(*net.TCPConn).SetLinger(0)
				c.conn.Close()
				return
			}
			// Requests until the server closes the flood.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
				if _, err := c.conn.Write(wire(sub, sub, sub, sub, sub)); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
			t.Error("a request flood was not closed")
		}()
	}
	for i := range 50 {
		c := dialRawWS(t, s.Addr(), "")
		c.until(t, 0x2)
		p := fmt.Appendf(nil, "churn %d", i)
		c.write(t, ping(p))
		if got := c.until(t, 0xa); string(got) != string(p) {
			t.Fatalf("pong %q, want %q", got, p)
		}
		c.conn.Close()
	}
	wg.Wait()
	waitEnded(t, s)
}
