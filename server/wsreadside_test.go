package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tickstream/tickstream/demo"
)

// TestEarlyFrames checks that frames a client sends with its upgrade
// request, without waiting for the 101, are read before the socket: the
// server's HTTP reader has them buffered when the connection is upgraded.
func TestEarlyFrames(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 5, Rate: 50}})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET /ws HTTP/1.1\r\nHost: " + s.Addr() + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := io.WriteString(conn, req+string(ping([]byte("early")).bytes())); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	c := &rawWS{conn: conn, br: br}
	if got := c.until(t, 0xa); string(got) != "early" {
		t.Errorf("pong %q, want early", got)
	}
}
