package server

import (
	"bytes"
	"net"
	"sync/atomic"
)

// wsSocket is the net.Conn gws writes a connection's frames to: the
// connection's own, which can put an empty close frame on the wire, the
// answer to an empty close, which gws's WriteClose cannot send (it writes
// at least code 1000).
type wsSocket struct {
	net.Conn
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
