//go:build linux

package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/wsframe"
)

// pollConn is a connection of the benchmark read by a pollLoop instead of
// a goroutine of its own (client.Conn's gws reader): the client side of a
// plain ws:// connection without compression, as much of it as the
// benchmark needs. Its frames go through a client.Book as client.Conn's
// do, its requests are masked frames written by the caller.
type pollConn struct {
	loop *pollLoop
	id   uint64 // its key in the loop: never reused, unlike an fd
	// fd is the socket, out of Go's netpoller (detach): only the loop
	// reads it, under mu, and it is closed under mu and wmu.
	fd     int
	format codec.Format
	book   *client.Book
	wire   *atomic.Int64 // counts the bytes read, framing included
	// onMessage and onClose are client.Options' OnMessage and OnClose.
	onMessage func(*codec.Message)
	onClose   func(code int, reason string)
	done      chan struct{} // closed when the connection has ended
	helloCh   chan struct{} // closed when HELLO came

	// mu is held by whoever reads or ends the connection: its loop, or a
	// closer. What follows is guarded by it.
	mu        sync.Mutex
	reader    wsframe.Reader
	ended     bool
	helloSeen bool
	heartbeat time.Duration
	active    time.Time // when bytes last came
	readAt    time.Time // when the bytes being read came
	// Set before done is closed.
	closeCode   int
	closeReason string

	// wmu serializes the writes and guards what follows; it keeps request
	// ids in the order the requests go on the wire, as client.Conn's
	// does: the Book relies on it.
	wmu       sync.Mutex
	lastID    uint64
	closeSent bool
	fdClosed  bool
	payload   []byte
	frame     []byte
}

// pollConnMaxMessage bounds a message from the server, as gws's default
// ReadMaxPayloadSize bounds client.Conn's.
const pollConnMaxMessage = 16 << 20

// writeTimeout bounds a write, so that a request or a close returns even
// when the server stopped reading.
const writeTimeout = time.Second

// dialPolled opens a connection to rawURL from laddr (nil: the system's
// choice), upgrades it with format's subprotocol and has loop read it; it
// returns once HELLO came, as client.Dial does, with the same errors: a
// *client.HandshakeError for a refused upgrade, a *client.CloseError for a
// connection closed before HELLO. wire counts the bytes read.
func dialPolled(ctx context.Context, loop *pollLoop, rawURL string, laddr *net.TCPAddr, format codec.Format, wire *atomic.Int64,
	onMessage func(*codec.Message), onClose func(int, string)) (*pollConn, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", rawURL, err)
	}
	d := net.Dialer{}
	if laddr != nil {
		d.LocalAddr = laddr
	}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", rawURL, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	c, early, err := upgrade(nc.(*net.TCPConn), u, format, wire)
	if !stop() {
		err = ctx.Err() // the context closed the connection
	}
	if err == nil {
		c.fd, err = detach(nc.(*net.TCPConn))
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("bench: dial %s: %w", rawURL, err)
	}
	c.onMessage, c.onClose = onMessage, onClose
	if err := loop.add(c, early); err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", rawURL, err)
	}
	select {
	case <-c.helloCh:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("bench: dial %s: %w", rawURL, &client.CloseError{Code: c.closeCode, Reason: c.closeReason})
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.helloSeen {
		return c, nil // HELLO came as the context ended
	}
	c.endLocked(client.CloseTimeout, "no HELLO in time")
	return nil, fmt.Errorf("bench: dial %s: %w", rawURL, ctx.Err())
}

// upgrade upgrades conn and makes its pollConn; wire counts the bytes the
// handshake reads. The bytes read past the 101, the server's first frames,
// are returned for the reader.
func upgrade(conn *net.TCPConn, u *neturl.URL, format codec.Format, wire *atomic.Int64) (*pollConn, []byte, error) {
	br, err := upgradeConn(&countingConn{Conn: conn, n: wire}, u, format)
	if err != nil {
		return nil, nil, err
	}
	c := &pollConn{
		format:  format,
		book:    client.NewBook(),
		wire:    wire,
		done:    make(chan struct{}),
		helloCh: make(chan struct{}),
		reader:  wsframe.Reader{MaxSize: pollConnMaxMessage, Client: true},
	}
	early, _ := br.Peek(br.Buffered())
	return c, early, nil
}

// read feeds b, bytes from the server that came at now, to the frame
// reader; c.mu is held.
func (c *pollConn) read(b []byte, now time.Time) {
	if c.ended {
		return
	}
	c.active, c.readAt = now, now
	end, ended := c.reader.Feed(b, c)
	if !ended {
		return
	}
	// The close frame to answer with: the server's code, or the rule its
	// frames broke. 0: an empty one, the answer to an empty one.
	var payload []byte
	if end.Send != 0 {
		payload = binary.BigEndian.AppendUint16(nil, uint16(end.Send))
		payload = append(payload, end.Reason...)
	}
	c.wmu.Lock()
	c.writeClose(payload)
	c.wmu.Unlock()
	reason := end.PeerReason
	if end.Failed {
		reason = end.Reason
	}
	c.endLocked(int(end.Peer), reason)
}

// Message is a wsframe.Sink method: a message goes through the Book, as
// client.Conn's do.
func (c *pollConn) Message(p []byte) {
	_ = c.book.Feed(c.format, p, c.readAt, c.deliver) // the Book records what it cannot decode
}

// Ping is a wsframe.Sink method: it answers with a pong, written by the
// loop (a server that stops reading holds it up to writeTimeout).
func (c *pollConn) Ping(p []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.closeSent {
		_ = c.writeLocked(wsframe.OpPong, p) // a failed write shows in the read that follows
	}
}

// deliver sees every message after the Book applied it.
func (c *pollConn) deliver(m *codec.Message) {
	if m.Op == codec.OpHello && !c.helloSeen {
		c.helloSeen = true
		c.heartbeat = time.Duration(m.HeartbeatMs) * time.Millisecond
		close(c.helloCh)
	}
	if c.onMessage != nil {
		c.onMessage(m)
	}
}

// silent reports whether nothing came for three heartbeats before now (the
// server sends something at least every heartbeat); c.mu is held.
func (c *pollConn) silent(now time.Time) bool {
	return c.heartbeat > 0 && now.Sub(c.active) > 3*c.heartbeat
}

// end ends the connection with code and reason, unless it ended already.
func (c *pollConn) end(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(code, reason)
}

// endLocked closes the socket, which takes it out of the loop's epoll set,
// and reports the end; c.mu is held.
func (c *pollConn) endLocked(code int, reason string) {
	if c.ended {
		return
	}
	c.ended = true
	c.loop.remove(c)
	c.wmu.Lock()
	c.fdClosed = true
	_ = syscall.Close(c.fd) // which takes it out of the loop's epoll set
	c.wmu.Unlock()
	c.closeCode, c.closeReason = code, reason
	if c.helloSeen && c.onClose != nil {
		c.onClose(code, reason)
	}
	close(c.done)
}

// writeLocked writes a frame of opcode carrying p, masked as a client's
// frames are; c.wmu is held.
func (c *pollConn) writeLocked(opcode byte, p []byte) error {
	h := wsframe.Header{Fin: true, Opcode: opcode, Masked: true}
	// A key a proxy cannot predict (RFC 6455 §10.3) protects browsers'
	// pages, not a load generator's own connections: a counter will do.
	binary.LittleEndian.PutUint32(h.Key[:], maskKeys.Add(0x9e3779b9))
	c.frame = wsframe.AppendFrame(c.frame[:0], h, p)
	if c.fdClosed {
		return net.ErrClosed
	}
	b := c.frame
	deadline := time.Now().Add(writeTimeout)
	for len(b) > 0 {
		n, err := syscall.Write(c.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN): // the send buffer is full: rare, for requests this small
			if time.Now().After(deadline) {
				return os.ErrDeadlineExceeded
			}
			time.Sleep(time.Millisecond)
		case err != nil:
			return err
		default:
			b = b[n:]
		}
	}
	return nil
}

// detach takes conn's socket out of Go's netpoller, which would otherwise
// be woken for every frame too, to find no goroutine waiting: it returns a
// duplicate of the socket's fd (close-on-exec, and non-blocking as the
// socket is) and closes conn.
func detach(conn *net.TCPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = fmt.Errorf("fcntl F_DUPFD_CLOEXEC: %w", errno)
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	_ = conn.Close()
	return fd, nil
}

// maskKeys makes the frames' mask keys.
var maskKeys atomic.Uint32

// writeClose sends a close frame carrying payload, once; c.wmu is held.
func (c *pollConn) writeClose(payload []byte) {
	if c.closeSent {
		return
	}
	c.closeSent = true
	_ = c.writeLocked(wsframe.OpClose, payload) // the socket is closed next, whatever the write did
}

// Subscribe sends SUB for syms with opts, as client.Conn.Subscribe does.
func (c *pollConn) Subscribe(syms []string, opts *codec.SubOptions) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.lastID++
	id := c.lastID
	c.book.NoteSub(id, syms, opts)
	c.payload = c.format.AppendSub(c.payload[:0], id, syms, opts)
	opcode := byte(wsframe.OpBinary)
	if c.format == codec.JSON {
		opcode = wsframe.OpText
	}
	if err := c.writeLocked(opcode, c.payload); err != nil {
		return 0, fmt.Errorf("bench: subscribe %d: %w", id, err)
	}
	return id, nil
}

// Close sends a close frame with code 1000 and closes the connection, as
// client.Conn.Close does. Closing a closed connection does nothing.
func (c *pollConn) Close() error {
	c.wmu.Lock()
	c.writeClose(binary.BigEndian.AppendUint16(nil, uint16(codec.CloseNormal)))
	c.wmu.Unlock()
	c.end(int(codec.CloseNormal), "")
	return nil
}

// Book returns the connection's Book.
func (c *pollConn) Book() *client.Book { return c.book }

// Done is closed when the connection has ended.
func (c *pollConn) Done() <-chan struct{} { return c.done }

// CloseCode returns, once Done is closed, how the connection ended, with
// the codes of client.Conn.CloseCode; 0 while it is open.
func (c *pollConn) CloseCode() int {
	select {
	case <-c.done:
		return c.closeCode
	default:
		return 0
	}
}
