package server

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/internal/wsframe"
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
	// closeSent: a close frame went out, after which no data frame may
	// (RFC 6455 §5.5.1). mu held.
	closeSent bool
	// mu puts frames on the wire one at a time: gws's (one Write each,
	// under gws's own lock: pings, pongs, close frames, compressed frames)
	// and the data frames writeFrame writes past gws.
	mu sync.Mutex
}

var (
	closeNormalFrame = []byte{0x88, 0x02, 0x03, 0xe8}
	closeEmptyFrame  = []byte{0x88, 0x00}
)

// Write writes p, one frame from gws (each of its writes is one).
func (s *wsSocket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The upgrade's HTTP response comes this way too; a frame's first
	// byte is FIN and the opcode (gws never fragments a close frame).
	if len(p) > 0 && p[0] == 0x80|wsframe.OpClose {
		s.closeSent = true
	}
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

// writeFrame writes a data frame (opcode text or binary, unfragmented,
// unmasked as a server's are) whose payload is p[fanout.MaxFrameRoom:]:
// its header goes into the room the engine left before the payload, and
// the frame into the socket in one write. gws would copy the payload into
// a buffer of its own behind the header, under its lock, and keep the
// compression window's books for a connection that does not compress.
func (s *wsSocket) writeFrame(opcode gws.Opcode, p []byte) error {
	hdr := wsframe.Header{Fin: true, Opcode: byte(opcode), Length: uint64(len(p) - fanout.MaxFrameRoom)}
	h := fanout.MaxFrameRoom - hdr.Len() // where the header starts
	hdr.Append(p[h:h])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeSent {
		return net.ErrClosed
	}
	_, err := s.Conn.Write(p[h:])
	return err
}
