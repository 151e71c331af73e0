package server

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/internal/sockopt"
	"github.com/tickstream/tickstream/node"
)

// deafConn is a WebSocket client that sends requests and never reads: a
// raw TCP connection with a 4 KiB receive buffer, as a hostile or stalled
// client has.
type deafConn struct {
	net.Conn
}

func dialDeaf(t *testing.T, addr string, format codec.Format) *deafConn {
	t.Helper()
	d := net.Dialer{Control: sockopt.RecvBuffer(4096)}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	proto := codec.SubprotocolBinary
	if format == codec.JSON {
		proto = codec.SubprotocolJSON
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n", addr, proto)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 256), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return &deafConn{conn}
}

// send writes one masked client frame (text for JSON, binary otherwise).
func (c *deafConn) send(t *testing.T, format codec.Format, payload []byte) {
	t.Helper()
	op := byte(gws.OpcodeBinary)
	if format == codec.JSON {
		op = byte(gws.OpcodeText)
	}
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 0x80|127), uint64(n))
	}
	hdr = append(hdr, 0, 0, 0, 0) // a zero mask leaves the payload as is
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append(hdr, payload...)); err != nil {
		t.Fatal(err)
	}
}

// serverSendQueue returns the bytes in the kernel send queue of the
// server's end of c (tx_queue in /proc/net/tcp), or -1 when it cannot be
// read.
func serverSendQueue(c net.Conn) int {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	local := c.RemoteAddr().(*net.TCPAddr).Port // the server's port
	remote := c.LocalAddr().(*net.TCPAddr).Port
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", local)) || !strings.HasSuffix(f[2], fmt.Sprintf(":%04X", remote)) {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, err := strconv.ParseInt(tx, 16, 64)
		if err != nil {
			return -1
		}
		return int(n)
	}
	return -1
}

// allSymbols waits until the simulator has fed n symbols and returns them.
func allSymbols(t *testing.T, s *Server, n int) []string {
	t.Helper()
	var syms []string
	waitUntil(t, 20*time.Second, "every symbol fed", func() bool {
		syms, _ = s.node.Store().Names("", n)
		return len(syms) == n
	})
	return syms
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestDeafClientIsBounded is issue 10's hostile client: a JSON connection
// that reads nothing, subscribed to 500 symbols, sending SNAP of all 500
// forty times a second. What the server holds for it — its heap and the
// kernel send queue of the socket — stays within the documented bound
// (the hard limit and one message, and the socket send buffer), and it is
// closed with 4008. Before the fix the server queued a full copy of the
// 500 snapshots per SNAP (tens of MB) and the kernel queue grew past 1 MB.
func TestDeafClientIsBounded(t *testing.T) {
	const (
		hard   = 1 << 20
		sndbuf = 32 << 10
	)
	// A slow feed: the embedded broker keeps every record in the heap.
	s := startServer(t, setup{Config: Config{Limits: Limits{RequestRate: 50, SocketSendBuffer: sndbuf}}, Node: node.Config{Fanout: fanout.Config{SoftLimit: 256 << 10, HardLimit: hard, SlowGrace: 3 * time.Second}}, Demo: demo.Config{Symbols: 500, Rate: 100}})
	syms := allSymbols(t, s, 500)
	base := liveHeap()
	c := dialDeaf(t, s.Addr(), codec.JSON)
	c.send(t, codec.JSON, codec.JSON.AppendSub(nil, 1, syms, nil))
	snap := codec.JSON.AppendSnap(nil, 2, syms)
	var peakHeap int64
	peakQueue := 0
	start := time.Now()
	for i := 0; s.node.Hub().Stats().SlowCloses == 0; i++ {
		if time.Since(start) > 30*time.Second {
			t.Fatal("not closed within 30s")
		}
		c.send(t, codec.JSON, snap)
		time.Sleep(25 * time.Millisecond)
		if i%8 == 0 {
			peakHeap = max(peakHeap, liveHeap()-base)
			peakQueue = max(peakQueue, serverSendQueue(c))
		}
	}
	t.Logf("closed 4008 after %v; peak heap growth %d KB, peak kernel send queue %d KB (hard limit %d KB, SO_SNDBUF %d KB)",
		time.Since(start).Round(time.Millisecond), peakHeap>>10, peakQueue>>10, hard>>10, sndbuf>>10)
	// The backlog's buffers (which grow by doubling), the frame in flight,
	// the connection's gws buffers and the feed: well under four times
	// the hard limit.
	if peakHeap > 4*hard {
		t.Errorf("the server's heap grew by %d KB for one client, hard limit %d KB", peakHeap>>10, hard>>10)
	}
	// Linux doubles SO_SNDBUF; the queue may pass it by one write.
	if peakQueue > 4*sndbuf {
		t.Errorf("kernel send queue of %d KB with SO_SNDBUF %d KB", peakQueue>>10, sndbuf>>10)
	}
}

// TestDeafClientIsClosed checks the slow-consumer policy on loopback,
// where the kernel would otherwise buffer megabytes for a client that does
// not read: a client that subscribes to every symbol of a 2000 updates/s
// feed and reads nothing is closed with 4008 within the slow grace (plus a
// tick) of its capped socket buffer filling, not after its socket's
// autotuned buffers filled; before, it is counted stuck (parked off the
// publish path).
func TestDeafClientIsClosed(t *testing.T) {
	const grace = time.Second
	s := startServer(t, setup{Node: node.Config{Fanout: fanout.Config{SoftLag: 200 * time.Millisecond, SlowGrace: grace, Heartbeat: time.Second}}, Demo: demo.Config{Symbols: 500, Rate: 2000}})
	syms := allSymbols(t, s, 500)
	c := dialDeaf(t, s.Addr(), codec.Binary)
	c.send(t, codec.Binary, codec.Binary.AppendSub(nil, 1, syms, nil))
	start := time.Now()
	peakQueue := 0
	var stuckAt time.Duration
	for s.node.Hub().Stats().SlowCloses == 0 {
		if stuckAt == 0 && s.node.Hub().Stats().Stuck > 0 {
			stuckAt = time.Since(start)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("not closed 15s after the subscription; slow grace %v; stats %+v; send queue %d",
				grace, s.node.Hub().Stats(), serverSendQueue(c))
		}
		peakQueue = max(peakQueue, serverSendQueue(c))
		time.Sleep(10 * time.Millisecond)
	}
	closedAt := time.Since(start)
	t.Logf("stuck after %v, closed 4008 after %v (soft lag 200ms, slow grace %v, tick 250ms); peak kernel send queue %d KB",
		stuckAt.Round(time.Millisecond), closedAt.Round(time.Millisecond), grace, peakQueue>>10)
	if stuckAt == 0 {
		t.Error("closed without having been counted stuck (tickstream_stuck_connections) first")
	}
	if n := s.node.Hub().Stats().Stuck; n != 0 {
		t.Errorf("%d connections still counted stuck after the close", n)
	}
}

// TestFloodCloseFlushesReplies checks issue 10 4c: a client closed with
// 1008 for a request flood first receives every answer queued before the
// close (its PONGs and ERROR 429s), then the close. The whole flood is one
// frame, so that the close comes while those answers are still queued.
func TestFloodCloseFlushesReplies(t *testing.T) {
	s := startServer(t, setup{Config: Config{Limits: Limits{RequestRate: 1, RequestBurst: 4}}, Demo: demo.Config{Symbols: 10, Rate: 50}})
	c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws", nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c.find(t, "HELLO", isHello)
	var flood []byte
	for i := range 200 {
		flood = codec.Binary.AppendPing(flood, uint64(i+1), 0)
	}
	c.send(t, flood)
	if code, reason := c.closed(t); code != 1008 {
		t.Fatalf("close %d %q, want 1008", code, reason)
	}
	// Burst 4, then 10 times the rate's burst of refusals (40) before the
	// flood: requests 1-44 were answered before the close.
	answered := map[uint64]bool{}
	for _, m := range c.messages() {
		if m.Op == codec.OpPong || m.Op == codec.OpError && m.Code == 429 {
			answered[m.ID] = true
		}
	}
	for id := uint64(1); id <= 44; id++ {
		if !answered[id] {
			t.Fatalf("request %d got no answer before the 1008 close (%d answers)", id, len(answered))
		}
	}
	t.Logf("%d requests answered before the close", len(answered))
}

// TestSetSendBuffer checks that the send buffer cap reaches the socket
// under TLS too (tls.Conn wraps the TCP connection).
func TestSetSendBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	sndbuf := func() int {
		rc, err := raw.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		n, err := sockopt.SendBufferSize(rc)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		conn net.Conn
		size int
	}{
		{"tcp", raw, 16 << 10},
		{"tls", tls.Client(raw, &tls.Config{InsecureSkipVerify: true}), 24 << 10},
	} {
		if err := setSendBuffer(tc.conn, tc.size); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// Linux doubles the value for its bookkeeping.
		if got := sndbuf(); got != 2*tc.size {
			t.Errorf("%s: SO_SNDBUF %d after setting %d, want %d", tc.name, got, tc.size, 2*tc.size)
		}
	}
}
