package server

import (
	"testing"

	"github.com/tickstream/tickstream/demo"
)

// TestEarlyFrames checks that frames a client sends with its upgrade
// request, without waiting for the 101, are read before the socket: the
// server's HTTP reader has them buffered when the connection is upgraded.
func TestEarlyFrames(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 5, Rate: 50}})
	c := upgradeRawWS(t, s.Addr(), "", ping([]byte("early")).bytes())
	if got := c.until(t, 0xa); string(got) != "early" {
		t.Errorf("pong %q, want early", got)
	}
}
