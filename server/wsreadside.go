package server

import (
	"bytes"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/wsframe"
)

// wsReadSide is what a connection needs to read its client's frames
// without a goroutine of its own: a wsframe.Reader holding only a partial
// frame between reads, and the state its driver keeps (the poller's, or a
// goroutine's for a connection the poller cannot take).
type wsReadSide struct {
	reader wsframe.Reader
	// active is when bytes last came from the client (wsReaders.now): the
	// idle sweep closes a connection silent for the idle timeout.
	active atomic.Int64
	// endCode is the code the engine is told the connection ended with;
	// the first to end the connection sets it.
	endCode  atomic.Uint32
	finished atomic.Bool
	// slot and gen name the connection in wsReaders.conns, and in the
	// poller's events.
	slot, gen uint32

	// The poller's state (wspoll_linux.go).
	rc        syscall.RawConn
	pollState atomic.Uint32
	// added is whether the fd is in the epoll set (ADD once, MOD after);
	// only the worker that holds the connection touches it.
	added bool
	// pong is the payload of the last ping not answered yet: a poll
	// worker hands the pong to gws's write queue instead of waiting on a
	// socket a slow client does not drain, and answers only the last of
	// the pings that came meanwhile (RFC 6455 §5.5.3 allows it).
	pong atomic.Pointer[[]byte]
}

// Bits of wsReadSide.pollState.
const (
	pollBusy   = 1 << iota // a worker holds the connection, or will: it is queued
	pollClosed             // the socket is closed: the worker holding it ends it
	pollOn                 // the poller drives the connection
)

// polled is whether the poller drives c.
func (c *wsConn) polled() bool { return c.pollState.Load()&pollOn != 0 }

// Message is a wsframe.Sink method: a request frame goes to the engine. A
// panic in the engine's handling is logged and the connection goes on, as
// under gws's Recovery: it would otherwise end the process, every
// connection with it.
func (c *wsConn) Message(p []byte) {
	defer func() {
		if e := recover(); e != nil {
			c.server.log.Error("websocket: panic handling a request", "remote", c.ip, "panic", e, "stack", string(debug.Stack()))
		}
	}()
	c.client.HandleFrame(p)
}

// Ping is a wsframe.Sink method: it answers with a pong.
func (c *wsConn) Ping(p []byte) {
	if !c.polled() {
		_ = c.socket.WritePong(p)
		return
	}
	cp := bytes.Clone(p)
	if c.pong.Swap(&cp) == nil {
		c.socket.Async(c.writePong)
	}
}

func (c *wsConn) writePong() {
	if p := c.pong.Swap(nil); p != nil {
		_ = c.socket.WritePong(*p)
	}
}

// read feeds b, bytes from the client, to the frame reader. It returns
// false when the reading ended (the connection is closing): a poll worker
// (async) has the close frame written by another goroutine.
func (c *wsConn) read(b []byte, async bool) bool {
	c.active.Store(c.server.readers.now())
	end, ended := c.reader.Feed(b, c)
	if !ended {
		return true
	}
	if end.Failed {
		c.server.log.Debug("websocket: malformed frame", "remote", c.ip, "code", end.Send, "reason", end.Reason)
	}
	c.closeWith(end.Peer, end.Send, end.Reason, async)
	return false
}

// closeWith ends the connection: the engine will be told code (unless the
// connection ended already), the client gets a close frame of send and
// reason (send 0: an empty one), and the socket is closed. gws's
// WriteClose sends nothing when the connection is closing already, and no
// frame after its own; a writer stuck on a full socket lets go within a
// second.
func (c *wsConn) closeWith(code, send codec.CloseCode, reason string, async bool) {
	c.endCode.CompareAndSwap(0, uint32(code))
	if send == 0 {
		c.sock.emptyClose.Store(true)
		send = codec.CloseNormal
	}
	write := func() {
		_ = c.sock.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.socket.WriteClose(uint16(send), []byte(reason))
	}
	if async {
		go write()
	} else {
		write()
	}
}

// finish ends the connection's session once its socket is closed, once:
// its slot of the connection limit is released and the engine forgets its
// client.
func (c *wsConn) finish() {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	s := c.server
	s.readers.remove(c)
	s.guard.release(c.ip)
	code := codec.CloseCode(c.endCode.Load())
	if code == 0 {
		code = codec.CloseNormal
	}
	c.client.Close(code, "")
}

// wsReadBuffer is the read buffer of a connection with a goroutine of its
// own (over TLS, or where there is no poller): client messages are small
// and rare (a SUB of 20 symbols is about 250 B), and a longer frame is
// read in pieces.
const wsReadBuffer = 512

// readLoop is the goroutine driver of the frame reader, for a connection
// the poller does not take: it reads the socket until it fails (closed by
// either side, or by the idle sweep).
func (c *wsConn) readLoop() {
	defer c.finish()
	buf := make([]byte, wsReadBuffer)
	for {
		n, err := c.sock.Conn.Read(buf)
		if n > 0 && !c.read(buf[:n], false) {
			return
		}
		if err != nil {
			c.closeWith(codec.CloseNormal, codec.CloseNormal, "", false)
			return
		}
	}
}
