package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/internal/wsframe"
)

// upgraders holds one gws upgrader per way the subprotocol can be settled.
// gws settles it by itself only when every client offers one; the protocol
// wants a client that offers none to get tickstream.v1 (and no header), so
// the server picks the subprotocol and the upgrader that echoes it.
type upgraders struct {
	none, binary, json *gws.Upgrader
}

// newUpgraders makes the three upgraders. gws upgrades and writes; it
// never reads, the server's own frame reader does (wsframe.Reader): gws's event
// handler is never called and its session storage never used.
func newUpgraders(cfg *Config, log *slog.Logger) *upgraders {
	opt := func(protos ...string) *gws.ServerOption {
		return &gws.ServerOption{
			SubProtocols:     protos,
			HandshakeTimeout: cfg.HandshakeTimeout,
			PermessageDeflate: gws.PermessageDeflate{
				Enabled: cfg.Compression,
				// Without context takeover every client negotiates alike
				// and a frame's compression depends on nothing before it
				// (see docs/BENCHMARKS.md for the trade-off measured).
				ServerContextTakeover: false,
				ClientContextTakeover: false,
				// Each upgrader keeps this many compressors (about 540 KB
				// each) for all its connections, used under a lock: gws's
				// default of 32 pinned 52 MB on every node for the three
				// upgraders, while compressions at once are bounded by the
				// cores.
				PoolSize: min(4*runtime.GOMAXPROCS(0), 32),
			},
			// gws's default session storage is a map (about 400 B per
			// connection) that nothing here uses.
			NewSession: func() gws.SessionStorage { return noSession{} },
			Logger:     gwsLogger{log},
		}
	}
	var h gws.BuiltinEventHandler
	return &upgraders{
		none:   gws.NewUpgrader(h, opt()),
		binary: gws.NewUpgrader(h, opt(codec.SubprotocolBinary)),
		json:   gws.NewUpgrader(h, opt(codec.SubprotocolJSON)),
	}
}

// pick chooses the subprotocol from the client's offer, in the client's
// order of preference.
func (u *upgraders) pick(r *http.Request) (*gws.Upgrader, codec.Format, error) {
	var offered []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
	}
	if len(offered) == 0 {
		return u.none, codec.Binary, nil
	}
	for _, p := range offered {
		if f, ok := codec.FormatFor(p); ok {
			if f == codec.JSON {
				return u.json, f, nil
			}
			return u.binary, f, nil
		}
	}
	return nil, 0, fmt.Errorf("unsupported subprotocol %q: this server speaks %s and %s",
		strings.Join(offered, ", "), codec.SubprotocolBinary, codec.SubprotocolJSON)
}

type gwsLogger struct{ log *slog.Logger }

func (l gwsLogger) Error(v ...any) { l.log.Error("websocket: " + fmt.Sprint(v...)) }

// connectParams reads the subscription made at connect time from the
// query: symbols=A,B,C, maxHz=N, fields=bid,ask, bars=1m, barCount=N or
// barSince=µs.
func connectParams(q url.Values) ([]string, codec.SubOptions, error) {
	opts := codec.DefaultSubOptions()
	raw := q.Get("symbols")
	if raw == "" {
		if q.Has("maxHz") || q.Has("fields") || q.Has("bars") || q.Has("barCount") || q.Has("barSince") {
			return nil, opts, errors.New("maxHz, fields and the bar options need symbols")
		}
		return nil, opts, nil
	}
	syms := strings.Split(raw, ",")
	if len(syms) > codec.MaxSymbolsPerCommand {
		return nil, opts, fmt.Errorf("more than %d symbols", codec.MaxSymbolsPerCommand)
	}
	var bad []string
	for _, s := range syms {
		if !codec.ValidSymbol([]byte(s)) {
			bad = append(bad, strconv.Quote(s))
		}
	}
	if len(bad) > 0 {
		return nil, opts, fmt.Errorf("invalid symbols %s: a symbol is 1 to 32 characters of A-Z a-z 0-9 . _ : / -", strings.Join(bad, ", "))
	}
	if v := q.Get("maxHz"); v != "" {
		hz, err := strconv.ParseFloat(v, 64)
		if err != nil || !(hz >= 0 && hz <= codec.MaxHzLimit) { // NaN fails both comparisons
			return nil, opts, fmt.Errorf("maxHz %q: want a number from 0 to %d", v, codec.MaxHzLimit)
		}
		opts.MaxHz = hz
	}
	if v := q.Get("fields"); v != "" {
		opts.Fields = 0
		for _, name := range strings.Split(v, ",") {
			i, ok := codec.FieldIndex(name)
			if !ok {
				return nil, opts, fmt.Errorf("unknown field %q", name)
			}
			opts.Fields |= 1 << uint(i)
		}
	}
	if err := connectBarParams(q, &opts); err != nil {
		return nil, opts, err
	}
	return syms, opts, nil
}

// connectBarParams reads the bar options of the subscription made at
// connect time, held to the rules of the SUB options (PROTOCOL.md §5.1);
// whether the server keeps the interval is the hub's to say.
func connectBarParams(q url.Values, opts *codec.SubOptions) error {
	opts.Bars = q.Get("bars")
	if v := q.Get("barCount"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > codec.MaxBarHistory {
			return fmt.Errorf("barCount %q: want an integer from 1 to %d", v, codec.MaxBarHistory)
		}
		opts.BarCount = n
	}
	if v := q.Get("barSince"); v != "" {
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || us < 0 || us >= codec.MaxSafeInt {
			return fmt.Errorf("barSince %q: want unix microseconds, an integer from 0 to 2^53-1", v)
		}
		opts.BarSince, opts.HasBarSince = us, true
	}
	return opts.CheckBarOptions()
}

// serveWS upgrades a client. Refusals a browser must be able to tell apart
// are made after the upgrade, with a close code, because a page cannot read
// the HTTP status of a failed upgrade: a bad origin gets 1008, a missing or
// invalid token 4001, a connection over a limit 4029. A malformed request
// and a connect-time subscription to symbols the token does not grant fail
// the upgrade itself (HTTP 400 and 403, with a reason).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	up, format, err := s.upgraders.pick(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	syms, opts, err := connectParams(r.URL.Query())
	if err == nil {
		err = s.node.Hub().CheckBars(&opts)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var (
		sess    *Session
		authErr error
	)
	if s.cfg.Auth != nil {
		sess, authErr = s.cfg.Auth.Verify(tokenFrom(r))
		if authErr == nil {
			if denied := sess.Grant.denied(syms); len(denied) > 0 {
				s.guard.count(refusedEntitlement)
				http.Error(w, "not entitled to "+strings.Join(denied, ", "), http.StatusForbidden)
				return
			}
		}
	}
	c := &wsConn{format: format, server: s}
	socket, early, err := s.upgrade(up, c, w, r)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c.socket = socket
	ip := s.guard.clientIP(r)
	switch {
	case !s.guard.originAllowed(r):
		s.refuse(socket, refusedOrigin, codec.ClosePolicy, "origin not allowed", ip)
		return
	case authErr != nil:
		s.refuse(socket, refusedAuth, codec.CloseNotAuthenticated, authErr.Error(), ip)
		return
	}
	if reason, ok := s.guard.acquire(ip); !ok {
		s.refuse(socket, reason, codec.CloseTooManyConnections, "too many connections", ip)
		return
	}
	if size := s.cfg.Limits.SocketSendBuffer; size > 0 {
		if err := setSendBuffer(c.sock.Conn, size); err != nil {
			s.log.Warn("websocket: cannot set the socket send buffer", "remote", ip, "bytes", size, "err", err)
		}
	}
	c.ip = ip
	if format == codec.JSON {
		c.opcode = gws.OpcodeText
	} else {
		c.opcode = gws.OpcodeBinary
	}
	c.limiter = newRequestLimiter(&s.cfg.Limits, s.readers.now())
	copts := fanout.ClientOptions{Format: format, Admit: c.admit}
	if c.writesPastGws() {
		copts.FrameRoom = fanout.MaxFrameRoom
	}
	if sess != nil {
		// The grant and the expiry are the connection's, not the first
		// token's: AUTH replaces both (renewToken).
		c.grant.Store(sess.Grant)
		copts.Entitled = func(sym string) bool { return c.grant.Load().Allows(sym) }
		copts.Authenticate = c.renewToken
	}
	c.client = s.node.Hub().Register(c, copts)
	if sess != nil {
		c.expiry = time.AfterFunc(time.Hour, func() {
			s.guard.count(closedExpired)
			c.client.Close(codec.CloseNotAuthenticated, "token expired")
		})
		c.expireAt(sess.Expires)
	}
	if len(syms) > 0 {
		c.client.Subscribe(0, syms, opts)
	}
	s.readers.start(c, early)
}

// admit is the engine's Admit: a request goes through the connection's
// limiter, and a flood closes the connection.
func (c *wsConn) admit() bool {
	ok, flood := c.limiter.admit(&c.server.cfg.Limits, c.server.readers.now())
	if flood {
		c.server.guard.count(closedFlood)
		// The answers already queued (ACKs, ERROR 429s) go first.
		c.client.CloseAfterFlush(codec.ClosePolicy, "request flood")
	}
	return ok
}

// upgrade hijacks the connection and hands it to gws for the handshake and
// the writes, through c's socket; c's frame reader reads it. It returns the
// bytes that came with the request, from a client that did not wait for the
// 101: they are read first.
func (s *Server) upgrade(up *gws.Upgrader, c *wsConn, w http.ResponseWriter, r *http.Request) (socket *gws.Conn, early []byte, err error) {
	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
		early = bytes.Clone(early)
	}
	c.sock.Conn, c.sock.owner = netConn, c
	c.reader = wsframe.Reader{
		MaxSize: s.cfg.MaxMessageSize,
		// gws's own rule for permessage-deflate, which writes with it
		// (TestReaderDeflate pins it).
		Deflate: s.cfg.Compression && strings.Contains(r.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"),
	}
	// gws reads nothing: it gets no reader.
	socket, err = up.UpgradeFromConn(&c.sock, nil, r)
	return socket, early, err
}

// renewToken makes token the connection's credential (AUTH): its grant
// decides entitlement from now on and its expiry replaces the old one.
func (c *wsConn) renewToken(token []byte) (time.Time, error) {
	sess, err := c.server.cfg.Auth.Verify(string(token))
	if err != nil {
		return time.Time{}, err
	}
	c.grant.Store(sess.Grant)
	c.expireAt(sess.Expires)
	return sess.Expires, nil
}

// expireAt sets when the token's expiry closes the connection; a zero
// time (a token without exp) never does.
func (c *wsConn) expireAt(t time.Time) {
	c.expiry.Stop()
	if !t.IsZero() {
		c.expiry.Reset(time.Until(t))
	}
}

// setSendBuffer caps the kernel send queue of conn (a TCP connection, or
// TLS over one) at size bytes: a client that stops reading then blocks the
// connection's writer within that much, and the engine's soft lag and slow
// grace see it, instead of the kernel queueing megabytes for it.
func setSendBuffer(conn net.Conn, size int) error {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sb, ok := conn.(interface{ SetWriteBuffer(int) error })
	if !ok {
		return nil // not a socket (a test's pipe): nothing to cap
	}
	return sb.SetWriteBuffer(size)
}

// refuse closes a just-upgraded connection with code, before HELLO.
func (s *Server) refuse(socket *gws.Conn, reason int, code codec.CloseCode, msg, ip string) {
	s.guard.count(reason)
	s.log.Debug("websocket refused", "remote", ip, "reason", refusalNames[reason], "code", code, "detail", msg)
	_ = socket.SetDeadline(time.Now().Add(time.Second))
	_ = socket.WriteClose(uint16(code), []byte(msg))
}

// noSession is the gws session storage of every connection: the server
// keeps nothing there.
type noSession struct{}

func (noSession) Len() int                               { return 0 }
func (noSession) Load(string) (any, bool)                { return nil, false }
func (noSession) Delete(string)                          {}
func (noSession) Store(string, any)                      {}
func (noSession) Range(func(key string, value any) bool) {}

// wsConn is one WebSocket connection: the fanout engine's Transport.
type wsConn struct {
	socket *gws.Conn
	// sock is the socket gws writes to (wssocket.go).
	sock   wsSocket
	format codec.Format
	opcode gws.Opcode
	server *Server
	client *fanout.Client
	ip     string
	expiry *time.Timer // closes the connection when its token expires
	grant  atomic.Pointer[Grant]
	// limiter is only used by the connection's reader (admit).
	limiter requestLimiter
	// lastPing and renewAt (unix ns) are the last WebSocket ping and when
	// the write deadline is next moved. Only the client's single writer
	// calls WriteFrame, so they need no lock.
	lastPing, renewAt int64
	close             sync.Once
	wsReadSide
}

// WriteFrame writes one frame, and a WebSocket ping when the last one is a
// third of the idle timeout old: browsers answer pings by themselves, so
// the idle sweep sees a live peer even when it sends nothing.
//
// The write deadline is moved only every quarter of the write timeout, not
// for every frame (it cost 8% of the server's CPU under fan-out load): a
// frame may so get from three quarters of the timeout to all of it.
func (c *wsConn) WriteFrame(p []byte) error {
	now := time.Now().UnixNano()
	if timeout := c.server.cfg.WriteTimeout; now >= c.renewAt {
		if err := c.socket.SetWriteDeadline(time.Unix(0, now).Add(timeout)); err != nil {
			return err
		}
		c.renewAt = now + int64(timeout/4)
	}
	if err := c.writeMessages(p); err != nil {
		return err
	}
	if idle := c.server.cfg.IdleTimeout; idle > 0 && now-c.lastPing > int64(idle/3) {
		c.lastPing = now
		return c.socket.WritePing(nil)
	}
	return nil
}

// writeMessages writes the engine's frame p: past gws with the header in
// the room the engine left (fanout.ClientOptions.FrameRoom), or, on a
// connection that compresses, through gws, which compresses.
func (c *wsConn) writeMessages(p []byte) error {
	if c.writesPastGws() {
		return c.sock.writeFrame(c.opcode, p)
	}
	return c.socket.WriteMessage(c.opcode, p)
}

// writesPastGws reports whether the connection's data frames are written
// by writeFrame, with room for their header left by the engine: those of a
// connection that does not compress.
func (c *wsConn) writesPastGws() bool { return !c.reader.Deflate }

// Close sends a close frame and closes the socket. It does not wait: a
// writer stuck on a full socket is released by the deadline set here.
// WriteClose closes the socket after its frame; when gws is closing already
// (the frame reader failing the connection with 1002 or 1007, or
// answering the peer's close) it leaves the socket to that close, whose frame would be
// lost if the socket were closed here first.
func (c *wsConn) Close(code codec.CloseCode, reason string) {
	c.close.Do(func() {
		c.server.closing.add()
		go func() {
			defer c.server.closing.done()
			_ = c.socket.SetDeadline(time.Now().Add(time.Second))
			_ = c.socket.WriteClose(uint16(code), []byte(reason))
		}()
	})
}
