package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
)

// CloseTimeout is the close code a Conn reports when it closed the
// connection itself because nothing arrived for three heartbeat intervals,
// or because HELLO did not come in time. It is in the private range
// (4000-4999), apart from the codes the server uses.
const CloseTimeout = 4000

// Close codes of RFC 6455 that a Conn reports without receiving them.
const (
	closeNormal   = 1000
	closeNoStatus = 1005 // the close frame carried no code
	closeAbnormal = 1006 // the connection ended without a close frame
)

// helloTimeout bounds the wait for HELLO when Dial's context has no
// deadline: a server that accepts the upgrade and stays silent must not hang
// the caller forever.
const helloTimeout = 10 * time.Second

// closeWriteTimeout bounds the write of the close frame, so that Close
// returns even when the server stopped reading.
const closeWriteTimeout = time.Second

// Options configure a connection. The zero value is a binary-format
// connection without compression.
type Options struct {
	// Format selects the subprotocol offered: tickstream.v1 (Binary) or
	// tickstream.v1.json (JSON).
	Format codec.Format
	// Compression offers permessage-deflate, asking for no context
	// takeover in either direction (gws servers grant the intersection):
	// no connection then keeps a 32 KiB window between messages, which
	// counts with thousands of connections in one process.
	Compression bool
	// Header is added to the upgrade request, e.g. Authorization.
	Header http.Header
	// TLSConfig configures the TLS of wss:// URLs, e.g. RootCAs for a
	// server whose certificate a private CA signed; nil: the system's roots.
	TLSConfig *tls.Config
	// OnMessage, when set, is called on the read goroutine for every
	// decoded message, after the message was applied to the Book, so that
	// it sees the state the message produced. The message is reused: it is
	// valid only during the call. A slow OnMessage slows the connection.
	OnMessage func(*codec.Message)
	// OnClose, when set, is called once on the read goroutine when a
	// connection that Dial returned ends, with the code and reason that
	// CloseCode and CloseReason will report.
	OnClose func(code int, reason string)
	// ReadDelay makes the read goroutine sleep this long for every frame,
	// to simulate a slow reader in tests.
	ReadDelay time.Duration
	// Logger receives the connection's events; nil for slog.Default().
	Logger *slog.Logger
	// NetDial, when set, opens the TCP connection in place of a
	// net.Dialer, with Dial's context: the load benchmark uses it to pick
	// the source address (past 64k connections) and to count wire bytes.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// HandshakeError is an upgrade request that the server refused with an HTTP
// status.
type HandshakeError struct {
	StatusCode int
	// Body is the start of the response body, where the server puts its
	// reason; empty when none could be read.
	Body string
}

// Error implements error: the HTTP status and the server's reason.
func (e *HandshakeError) Error() string {
	s := fmt.Sprintf("upgrade refused: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// CloseError is the end of a connection before its HELLO came.
type CloseError struct {
	Code   int
	Reason string
}

// Error implements error: the close code and reason of a connection closed before HELLO.
func (e *CloseError) Error() string {
	return fmt.Sprintf("connection closed before HELLO: code %d %s", e.Code, e.Reason)
}

// Conn is a client connection. Its requests may be sent from any goroutine;
// its state is read through Book.
type Conn struct {
	url    string
	format codec.Format
	opcode gws.Opcode
	opts   Options
	log    *slog.Logger
	ws     *gws.Conn
	book   *Book
	done   chan struct{} // closed when the read goroutine ends

	// Owned by the read goroutine.
	deliver   func(*codec.Message) // c.onMessage, bound once for Feed
	helloCh   chan struct{}        // closed when HELLO came
	helloSeen bool
	heartbeat time.Duration

	// Written by the read goroutine before done is closed.
	closeCode   int
	closeReason string

	// wmu keeps request ids in the order the requests go on the wire: the
	// Book relies on it to tell which requests the server processed.
	wmu    sync.Mutex
	lastID uint64
	wbuf   []byte
}

// Dial connects to url (ws:// or wss://, path /ws), offering the
// subprotocol of opts.Format, and waits for HELLO. ctx bounds the dial, the
// upgrade and the wait for HELLO (10 seconds when ctx has no deadline); it
// does not outlive Dial. An upgrade refused with an HTTP status returns a
// *HandshakeError, a connection closed before HELLO a *CloseError.
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	c := &Conn{
		url:     url,
		format:  opts.Format,
		opcode:  gws.OpcodeBinary,
		opts:    opts,
		log:     opts.Logger,
		book:    NewBook(),
		done:    make(chan struct{}),
		helloCh: make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("url", url)
	c.book.log = c.log
	c.deliver = c.onMessage
	if syms, opts, ok := connectSubscription(url); ok {
		c.book.NoteSub(0, syms, &opts) // answered by ACK 0
	}
	if opts.Format == codec.JSON {
		c.opcode = gws.OpcodeText
	}

	wait := helloTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	header := opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Sec-WebSocket-Protocol", opts.Format.String())
	d := &ctxDialer{ctx: ctx, dial: opts.NetDial}
	ws, resp, err := gws.NewClient((*events)(c), &gws.ClientOption{
		Addr:              url,
		RequestHeader:     header,
		HandshakeTimeout:  wait,
		PermessageDeflate: gws.PermessageDeflate{Enabled: opts.Compression},
		// A copy: gws sets ServerName in the config it is given.
		TlsConfig: opts.TLSConfig.Clone(),
		NewDialer: func() (gws.Dialer, error) { return d, nil },
	})
	if err != nil {
		d.stop()
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			err = handshakeError(resp)
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	c.ws = ws
	if _, ok := ctx.Deadline(); !ok {
		// Without a deadline only this bounds the wait for HELLO; with one,
		// the context closes the connection, so that Dial reports the
		// context's error. From HELLO on, the heartbeat sets the deadline.
		_ = ws.SetReadDeadline(time.Now().Add(helloTimeout))
	}
	go func() {
		defer close(c.done)
		ws.ReadLoop()
	}()

	select {
	case <-c.helloCh:
	case <-c.done:
	}
	canceled := !d.stop()
	select {
	case <-c.helloCh:
		if !canceled {
			return c, nil
		}
		<-c.done // the context closed the connection
	default:
		// The read loop ended without HELLO.
	}
	if canceled || ctx.Err() != nil {
		<-c.done
		return nil, fmt.Errorf("client: dial %s: %w", url, ctx.Err())
	}
	return nil, fmt.Errorf("client: dial %s: %w", url, &CloseError{Code: c.closeCode, Reason: c.closeReason})
}

// CertificateUntrusted reports whether err, from Dial, is the wss://
// server's certificate failing verification (an unknown authority, a name
// it does not hold, expired): dialing again cannot mend it, trusting its CA
// (Options.TLSConfig) can.
func CertificateUntrusted(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host)
}

// handshakeError reads what it can of the body of a refused upgrade. gws
// closed the connection already, so only what its buffer holds can be read,
// which is all of a short reason in practice.
// connectSubscription reads from a dial URL the subscription its query
// makes at connect time (PROTOCOL.md §1.4), as far as the Book needs it to
// check the answer: the symbols, and whether and how bars are asked for.
func connectSubscription(rawURL string) ([]string, codec.SubOptions, bool) {
	opts := codec.DefaultSubOptions()
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return nil, opts, false
	}
	q := u.Query()
	if q.Get("symbols") == "" {
		return nil, opts, false
	}
	opts.Bars = q.Get("bars")
	opts.BarCount, _ = strconv.Atoi(q.Get("barCount"))
	opts.HasBarSince = q.Has("barSince")
	return strings.Split(q.Get("symbols"), ","), opts, true
}

func handshakeError(resp *http.Response) error {
	e := &HandshakeError{StatusCode: resp.StatusCode}
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		e.Body = strings.TrimSpace(string(body))
	}
	return e
}

// ctxDialer dials with a context and keeps the connection closable by it
// until stop: gws's own handshake knows only a timeout.
type ctxDialer struct {
	ctx    context.Context
	dialer net.Dialer
	dial   func(ctx context.Context, network, addr string) (net.Conn, error) // Options.NetDial
	cancel func() bool                                                       // stops the context's closing of the connection
}

func (d *ctxDialer) Dial(network, addr string) (net.Conn, error) {
	dial := d.dialer.DialContext
	if d.dial != nil {
		dial = d.dial
	}
	conn, err := dial(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.cancel = context.AfterFunc(d.ctx, func() { _ = conn.Close() })
	return conn, nil
}

// stop detaches the connection from the context. It reports false when the
// context already closed the connection.
func (d *ctxDialer) stop() bool {
	if d.cancel == nil {
		return true
	}
	return d.cancel()
}

// onMessage sees every message after the Book applied it.
func (c *Conn) onMessage(m *codec.Message) {
	if m.Op == codec.OpHello && !c.helloSeen {
		c.helloSeen = true
		c.heartbeat = time.Duration(m.HeartbeatMs) * time.Millisecond
		if c.heartbeat == 0 {
			_ = c.ws.SetReadDeadline(time.Time{})
		}
		close(c.helloCh)
	}
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(m)
	}
}

// alive pushes the read deadline three heartbeats past now: the server
// sends something at least every heartbeat, so silence that long means the
// connection is dead.
func (c *Conn) alive(now time.Time) {
	if c.heartbeat > 0 {
		_ = c.ws.SetReadDeadline(now.Add(3 * c.heartbeat))
	}
}

// events is Conn's gws event handler, a distinct type so that its methods
// stay out of Conn's API.
type events Conn

func (e *events) OnOpen(*gws.Conn) {}

func (e *events) OnPing(ws *gws.Conn, payload []byte) {
	(*Conn)(e).alive(time.Now())
	_ = ws.WritePong(payload)
}

func (e *events) OnPong(*gws.Conn, []byte) { (*Conn)(e).alive(time.Now()) }

func (e *events) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := (*Conn)(e)
	if c.opts.ReadDelay > 0 {
		time.Sleep(c.opts.ReadDelay)
	}
	now := time.Now()
	if err := c.book.Feed(c.format, msg.Bytes(), now, c.deliver); err != nil {
		c.log.Warn("client: undecodable frame", "err", err)
	}
	c.alive(now)
}

func (e *events) OnClose(_ *gws.Conn, err error) {
	c := (*Conn)(e)
	c.closeCode, c.closeReason = c.closeStatus(err)
	if !c.helloSeen {
		return // Dial reports it
	}
	c.log.Info("client: connection closed", "code", c.closeCode, "reason", c.closeReason)
	if c.opts.OnClose != nil {
		c.opts.OnClose(c.closeCode, c.closeReason)
	}
}

// closeStatus turns the error that ended gws's read loop into a close code
// and reason.
func (c *Conn) closeStatus(err error) (int, string) {
	var ce *gws.CloseError
	var local interface{ Uint16() uint16 } // a close gws sent itself: Close, or a protocol error
	switch {
	case errors.As(err, &ce):
		if ce.Code == 0 {
			return closeNoStatus, string(ce.Reason)
		}
		return int(ce.Code), string(ce.Reason)
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.helloSeen {
			return CloseTimeout, fmt.Sprintf("nothing received for 3 heartbeats of %v", c.heartbeat)
		}
		return CloseTimeout, "no HELLO in time"
	case errors.As(err, &local):
		if code := int(local.Uint16()); code != closeNormal {
			return code, err.Error()
		}
		return closeNormal, ""
	}
	return closeAbnormal, err.Error()
}

// Book returns the connection's Book: the rebuilt state, violations and
// counters.
func (c *Conn) Book() *Book { return c.book }

// Hello returns the server's HELLO.
func (c *Conn) Hello() Hello {
	h, _ := c.book.Hello()
	return h
}

// Subscribe sends SUB for syms with opts, nil for the defaults (a SNAPSHOT
// first, every update, every field); a non-nil opts is sent as it is, so
// start from codec.DefaultSubOptions. It returns the request id, which the
// ACK and any ERROR echo. Ids increase from 1 on each connection.
func (c *Conn) Subscribe(syms []string, opts *codec.SubOptions) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.lastID + 1
	c.book.NoteSub(id, syms, opts)
	c.wbuf = c.format.AppendSub(c.wbuf[:0], id, syms, opts)
	return c.send("subscribe", id)
}

// Unsubscribe sends UNSUB for syms and drops their state from the Book.
func (c *Conn) Unsubscribe(syms []string) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.lastID + 1
	c.book.NoteUnsub(id, syms)
	c.wbuf = c.format.AppendUnsub(c.wbuf[:0], id, syms)
	return c.send("unsubscribe", id)
}

// Snap sends SNAP, asking for a fresh SNAPSHOT of subscribed syms.
func (c *Conn) Snap(syms []string) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.lastID + 1
	c.book.NoteSnap(id, syms)
	c.wbuf = c.format.AppendSnap(c.wbuf[:0], id, syms)
	return c.send("snap", id)
}

// Ping sends an application PING carrying t; the PONG, with the same id,
// reaches OnMessage.
func (c *Conn) Ping(t float64) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.lastID + 1
	c.wbuf = c.format.AppendPing(c.wbuf[:0], id, t)
	return c.send("ping", id)
}

// send writes c.wbuf as request id; c.wmu is held. The id is used even when
// the write fails, since the Book was told of it.
func (c *Conn) send(what string, id uint64) (uint64, error) {
	c.lastID = id
	if err := c.ws.WriteMessage(c.opcode, c.wbuf); err != nil {
		return 0, fmt.Errorf("client: %s %d: %w", what, id, err)
	}
	return id, nil
}

// Close sends a close frame with code 1000, closes the connection and waits
// for the read goroutine to end. Closing a closed connection does nothing.
func (c *Conn) Close() error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	err := c.ws.WriteClose(closeNormal, nil)
	<-c.done
	if err != nil && !errors.Is(err, gws.ErrConnClosed) {
		return fmt.Errorf("client: close %s: %w", c.url, err)
	}
	return nil
}

// Done is closed when the connection has ended and its read goroutine
// returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseCode returns, once Done is closed, how the connection ended: the
// code of the server's close frame (1005 when it carried none), 1000 after
// Close, 1006 when the connection dropped without a close frame,
// CloseTimeout when the heartbeat stopped, or the code of a protocol error
// the client detected (e.g. 1009 for a frame over the size limit). It is 0
// while the connection is open.
func (c *Conn) CloseCode() int {
	select {
	case <-c.done:
		return c.closeCode
	default:
		return 0
	}
}

// CloseReason returns the reason that goes with CloseCode.
func (c *Conn) CloseReason() string {
	select {
	case <-c.done:
		return c.closeReason
	default:
		return ""
	}
}
