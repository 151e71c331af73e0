package server

import (
	"bytes"
	"net"
	"sync/atomic"
)

// wsSocket is the net.Conn gws writes a connection's frames to: the
// connection's own, with the two things the read side needs from the write
// side. Closing it tells the poller (a closed fd leaves its epoll set
// without an event, so the poller would never hear of it), and it can put
// an empty close frame on the wire, the answer to an empty close, which
// gws's WriteClose cannot send (it writes at least code 1000).
type wsSocket struct {
	net.Conn
	owner *wsConn
	// emptyClose turns gws's close frame of code 1000 without a reason
	// into a close frame without a payload.
	emptyClose atomic.Bool
}

var (
	closeNormalFrame = []byte{0x88, 0x02, 0x03, 0xe8}
	closeEmptyFrame  = []byte{0x88, 0x00}
)

// Write writes p, one frame from gws (each of its writes is one).
func (s *wsSocket) Write(p []byte) (int, error) {
	if s.emptyClose.Load() && bytes.Equal(p, closeNormalFrame) {
		if _, err := s.Conn.Write(closeEmptyFrame); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return s.Conn.Write(p)
}

// Close closes the connection; a polled one leaves the poller first, and
// its end is handed to a poll worker.
func (s *wsSocket) Close() error {
	if c := s.owner; c.polled() {
		return c.server.readers.poller.close(c)
	}
	return s.Conn.Close()
}
