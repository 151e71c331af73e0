package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/internal/sockopt"
)

// keepAlive is a plain HTTP/1.1 client connection that sends requests one
// at a time and keeps the connection open between them.
type keepAlive struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keepAlive{conn: conn, br: bufio.NewReader(conn)}
}

// get sends GET path and returns the response with its body read.
func (k *keepAlive) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(k.conn, "GET "+path+" HTTP/1.1\r\nHost: tickstream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = k.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s body: %v", path, err)
	}
	return resp, string(body)
}

// closedBy reports whether the server closed the connection within d: a
// read ends with EOF or a reset rather than a timeout.
func (k *keepAlive) closedBy(d time.Duration) bool {
	_ = k.conn.SetReadDeadline(time.Now().Add(d))
	_, err := k.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestHTTPIdleTimeout checks that idle keep-alive connections are closed:
// they used to stay open for as long as the client kept them, each holding
// a file descriptor of the process.
func TestHTTPIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := startServer(t, setup{Config: Config{HTTPIdleTimeout: idle}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	conns := make([]*keepAlive, 200)
	for i := range conns {
		conns[i] = dialKeepAlive(t, s.Addr())
		if resp, _ := conns[i].get(t, "/healthz"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %s", resp.Status)
		}
	}
	start := time.Now()
	for i, c := range conns {
		if !c.closedBy(10 * time.Second) {
			t.Fatalf("keep-alive connection %d still open %v after the idle timeout of %v", i, time.Since(start), idle)
		}
	}
	t.Logf("200 idle connections closed %v after their last request (idle timeout %v)", time.Since(start), idle)
	waitUntil(t, 5*time.Second, "no HTTP connection left", func() bool { return s.httpConns.count() == 0 })
}

// TestHTTPConnectionLimit checks the bound on plain HTTP connections: over
// it a connection waits for a slot, then gets 503 (and past a quarter more
// is closed at once), a new connection takes the place of the one idle the
// longest, and a WebSocket gives its slot back at the upgrade.
func TestHTTPConnectionLimit(t *testing.T) {
	const max = 4
	s := startServer(t, setup{Config: Config{HandshakeTimeout: 10 * time.Second, Limits: Limits{MaxHTTPConnections: max}}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	waitUntil(t, 5*time.Second, "the readiness probe's connection closed", func() bool { return s.httpConns.count() == 0 })
	// Half the handshake timeout by default; shorter here, so that the silent
	// connections holding the slots outlive every wait of the test.
	s.httpConns.mu.Lock()
	s.httpConns.wait = 300 * time.Millisecond
	s.httpConns.mu.Unlock()

	// Connections that send nothing are not idle: they hold their slots.
	var silent []*keepAlive
	for range max {
		silent = append(silent, dialKeepAlive(t, s.Addr()))
	}
	waitUntil(t, 5*time.Second, "the silent connections admitted", func() bool { return s.httpConns.count() == max })
	over := dialKeepAlive(t, s.Addr())
	start := time.Now()
	resp, body := over.get(t, "/healthz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections") || !resp.Close {
		t.Errorf("over the bound: %s %q close=%v, want 503 too many connections and Connection: close", resp.Status, body, resp.Close)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("refused after %v, without waiting for a slot", waited)
	}
	if !over.closedBy(5 * time.Second) {
		t.Error("the refused connection stays open after its 503")
	}
	// Silent connections over the bound wait for their 503 up to a quarter
	// of the bound; the next ones are closed at once.
	var cut bool
	for range max {
		c := dialKeepAlive(t, s.Addr())
		if c.closedBy(time.Second) {
			cut = true
			break
		}
		silent = append(silent, c)
	}
	if !cut {
		t.Errorf("%d silent connections over the bound of %d all kept open", max, max)
	}

	// A connection over the bound waits: a slot given back in time serves it.
	s.httpConns.mu.Lock()
	s.httpConns.wait = 5 * time.Second
	s.httpConns.mu.Unlock()
	waiting := dialKeepAlive(t, s.Addr())
	go func() {
		time.Sleep(300 * time.Millisecond)
		silent[0].conn.Close()
	}()
	if resp, _ := waiting.get(t, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("a connection waiting for a slot that came free: %s, want 200", resp.Status)
	}
	waiting.conn.Close()
	for _, c := range silent {
		c.conn.Close()
	}
	waitUntil(t, 5*time.Second, "the silent connections gone", func() bool { return s.httpConns.count() == 0 })

	// Idle keep-alive connections make room for new ones, the longest idle
	// first.
	idle := make([]*keepAlive, max)
	for i := range idle {
		idle[i] = dialKeepAlive(t, s.Addr())
		idle[i].get(t, "/healthz")
		// The server marks a connection idle after the client has its response.
		waitUntil(t, 5*time.Second, "the connection idle", func() bool {
			s.httpConns.mu.Lock()
			defer s.httpConns.mu.Unlock()
			return s.httpConns.idle.Len() == i+1
		})
	}
	fresh := dialKeepAlive(t, s.Addr())
	if resp, _ := fresh.get(t, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("with every slot idle: %s, want 200", resp.Status)
	}
	if !idle[0].closedBy(5 * time.Second) {
		t.Error("the longest idle connection was not closed to make room")
	}
	if idle[1].closedBy(100 * time.Millisecond) {
		t.Error("a connection idle for less time was closed")
	}

	// WebSocket connections do not count once upgraded.
	for range max + 1 {
		ws := dialRawWS(t, s.Addr(), codec.SubprotocolJSON)
		ws.until(t, 0x1)
	}
	waitUntil(t, 5*time.Second, "the upgraded connections' slots released", func() bool { return s.httpConns.count() <= max-1 })
	metrics := dialKeepAlive(t, s.Addr())
	resp, body = metrics.get(t, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics with %d WebSockets open: %s", max+1, resp.Status)
	}
	for _, want := range []string{
		`tickstream_connections 5`,
		`tickstream_connections_refused_total{reason="http_idle_evicted"}`,
		`tickstream_connections_refused_total{reason="max_http_connections"}`,
		`tickstream_http_connections `,
		`tickstream_conflation_starts_total{reason="staleness"} 0`,
		`tickstream_conflating_connections 0`,
		`tickstream_write_wait_seconds_count `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if n := s.guard.refused[refusedHTTP].Load(); n < 2 {
		t.Errorf("%d refusals of plain HTTP counted, want at least 2", n)
	}
	if n := s.guard.refused[closedHTTPIdle].Load(); n < 1 {
		t.Errorf("%d idle connections closed to make room counted, want at least 1", n)
	}
}

// TestHTTPTimeoutsSpareWebSockets checks that the HTTP server's read, write
// and idle timeouts do not reach a WebSocket connection: it outlives them
// many times over, receiving updates and sending nothing (the client's
// answers to pings aside).
func TestHTTPTimeoutsSpareWebSockets(t *testing.T) {
	const timeout = 150 * time.Millisecond
	s := startServer(t, setup{Config: Config{HandshakeTimeout: timeout, WriteTimeout: timeout, HTTPIdleTimeout: timeout}, Demo: demo.Config{Symbols: 5, Rate: 200}})
	c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws?symbols=AAPL,MSFT,NVDA,AMZN,GOOG", nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c.find(t, "HELLO", isHello)
	for range 4 {
		before := len(c.messages())
		time.Sleep(10 * timeout)
		select {
		case <-c.done:
			code, reason := c.closed(t)
			t.Fatalf("WebSocket closed with %d %q after the HTTP timeouts", code, reason)
		default:
		}
		if len(c.messages()) == before {
			t.Fatalf("no message in %v", 10*timeout)
		}
	}
}

// smallSendBuffers gives each accepted connection a small kernel send
// buffer: on loopback the kernel would otherwise take a whole response of
// megabytes at once, and no write would ever wait for the client.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestSlowHTTPResponse checks the write timeout of a plain HTTP response:
// it bounds a stall, not the response, so a snapshot read slowly for many
// times the timeout arrives whole, while a client that stops reading is
// cut off.
func TestSlowHTTPResponse(t *testing.T) {
	const timeout = time.Second
	s := startServer(t, setup{Config: Config{WriteTimeout: timeout}, Demo: demo.Config{Symbols: 5000, Rate: 20000}})
	waitUntil(t, 30*time.Second, "every symbol in the store", func() bool { return s.node.Store().Len() == 5000 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.httpServer()
	go func() { _ = srv.Serve(smallSendBuffers{ln}) }()
	t.Cleanup(func() { srv.Close() })
	// A small receive buffer too, for the same reason.
	dialer := net.Dialer{Control: sockopt.RecvBuffer(4096)}
	slowGet := func(pace time.Duration) (int, error) {
		conn, err := dialer.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /api/v1/snapshot HTTP/1.1\r\nHost: tickstream\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var n int
		buf := make([]byte, 16<<10)
		for {
			time.Sleep(pace)
			m, err := resp.Body.Read(buf)
			n += m
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			if err != nil {
				return n, err
			}
		}
	}
	start := time.Now()
	// 16 KiB every 50 ms: each chunk of the response needs one read, twenty times faster
	// than the timeout (a loaded machine delays the reads, never to a second).
	n, err := slowGet(timeout / 20)
	if err != nil {
		t.Fatalf("a snapshot read slowly was cut after %d bytes and %v: %v", n, time.Since(start), err)
	}
	took := time.Since(start)
	t.Logf("snapshot of %d bytes read in %v with a write timeout of %v", n, took, timeout)
	if took < 2*timeout {
		t.Fatalf("the slow read took only %v: not slow enough to test the write timeout of %v", took, timeout)
	}
	start = time.Now()
	if n, err := slowGet(2 * timeout); err == nil {
		t.Errorf("a client that stalls for twice the write timeout got the whole snapshot (%d bytes)", n)
	} else {
		t.Logf("a client that stalls was cut after %d bytes and %v: %v", n, time.Since(start), err)
	}
}
