package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/internal/config"
)

// Limits bounds what clients may use. Zero values take the defaults noted.
type Limits struct {
	// MaxConnections bounds the WebSocket connections of the node (default
	// 100,000); past it a connection is closed with 4029 right after the
	// upgrade.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections of one client IP (default
	// 1000); past it a connection is closed with 4029.
	MaxConnectionsPerIP int
	// ClientIPHeader names the header that carries the client's IP when the
	// node runs behind a proxy (e.g. X-Forwarded-For; its last address is
	// used, the one the nearest proxy appended). Empty uses the peer address.
	// Set it only behind a proxy that sets the header: a client can forge it.
	ClientIPHeader string
	// RequestRate is the requests per second a connection may sustain
	// (default 50); a request over it gets ERROR 429.
	RequestRate float64
	// RequestBurst is how many requests a connection may send at once
	// (default 100).
	RequestBurst int
	// SocketSendBuffer is the kernel send buffer (SO_SNDBUF) of each
	// WebSocket connection, in bytes (default 64 KiB; Linux doubles it
	// for its bookkeeping). A negative value leaves the kernel's
	// autotuning, which lets the send queue of a client that does not
	// read grow to megabytes, outside the engine's backlog limits and out
	// of sight of its slow-consumer policy.
	SocketSendBuffer int
	// MaxHTTPConnections bounds the connections that speak plain HTTP
	// (default 1000): every connection until a WebSocket upgrade takes it
	// over. At the bound a new connection takes the place of the keep-alive
	// connection idle the longest; when none is idle it waits for a slot
	// (up to half the handshake timeout), then gets HTTP 503.
	MaxHTTPConnections int
}

// floodFactor is how many times RequestRate of refused requests a
// connection may keep sending before it is closed with 1008: a client
// that ignores its 429s costs the node the answers.
const floodFactor = 10

// Validate reports the first limit out of range, as a config.FieldError
// naming it.
func (l Limits) Validate() error {
	return config.First(
		config.Check(l.MaxConnections > 0, "MaxConnections", l.MaxConnections, "at least 1"),
		config.Check(l.MaxConnectionsPerIP > 0, "MaxConnectionsPerIP", l.MaxConnectionsPerIP, "at least 1"),
		config.Check(l.RequestRate > 0, "RequestRate", l.RequestRate, "more than 0"),
		config.Check(l.RequestBurst > 0, "RequestBurst", l.RequestBurst, "at least 1"),
		config.Check(l.MaxHTTPConnections > 0, "MaxHTTPConnections", l.MaxHTTPConnections, "at least 1"),
	)
}

// Reasons a connection is refused (at the upgrade, or at accept for plain
// HTTP) or closed by a policy, the label values of the metrics.
const (
	refusedOrigin = iota
	refusedAuth
	refusedEntitlement
	refusedTotal
	refusedPerIP
	closedExpired
	closedFlood
	refusedHTTP
	closedHTTPIdle
	numRefusals
)

var refusalNames = [numRefusals]string{"origin", "unauthenticated", "not_entitled", "max_connections", "max_connections_per_ip", "token_expired", "request_flood", "max_http_connections", "http_idle_evicted"}

// guard enforces the connection policies of the edge and counts what it
// refused.
type guard struct {
	limits  Limits
	origins []originPattern

	mu    sync.Mutex
	total int
	perIP map[string]int

	refused [numRefusals]atomic.Uint64
}

func newGuard(limits Limits, origins []string) *guard {
	g := &guard{limits: limits, perIP: map[string]int{}}
	for _, o := range origins {
		g.origins = append(g.origins, parseOriginPattern(o))
	}
	return g
}

func (g *guard) count(reason int) { g.refused[reason].Add(1) }

// acquire takes a connection slot for ip. It returns the refusal reason
// and false when a limit is reached.
func (g *guard) acquire(ip string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.limits.MaxConnections {
		return refusedTotal, false
	}
	if g.perIP[ip] >= g.limits.MaxConnectionsPerIP {
		return refusedPerIP, false
	}
	g.total++
	g.perIP[ip]++
	return 0, true
}

// release returns the slot acquire took for ip.
func (g *guard) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

// clientIP returns the IP a request counts against.
func (g *guard) clientIP(r *http.Request) string {
	if h := g.limits.ClientIPHeader; h != "" {
		if v := r.Header.Values(h); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := strings.TrimSpace(last); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// originPattern is an allowed browser origin: "*", an exact origin
// ("https://app.example.com") or a wildcard subdomain
// ("https://*.example.com").
type originPattern struct {
	any    bool
	scheme string
	host   string // with port when given; "*." prefix for subdomains
}

func parseOriginPattern(s string) originPattern {
	if s == "*" {
		return originPattern{any: true}
	}
	scheme, host, _ := strings.Cut(strings.ToLower(s), "://")
	return originPattern{scheme: scheme, host: strings.TrimSuffix(host, "/")}
}

func (p originPattern) match(scheme, host string) bool {
	if p.any {
		return true
	}
	if p.scheme != scheme {
		return false
	}
	if suffix, ok := strings.CutPrefix(p.host, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return p.host == host
}

// originAllowed reports whether a browser may connect from the request's
// Origin. A request without Origin is not from a browser page and is
// allowed; a page of the node's own host is always allowed, so that the
// dashboard works without configuration.
func (g *guard) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if host == strings.ToLower(r.Host) {
		return true
	}
	for _, p := range g.origins {
		if p.match(strings.ToLower(u.Scheme), host) {
			return true
		}
	}
	return false
}

// validOrigin reports whether s is a pattern the allow-list understands.
func validOrigin(s string) bool {
	if s == "*" {
		return true
	}
	scheme, host, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#") {
		return false
	}
	return !strings.Contains(strings.TrimPrefix(host, "*."), "*")
}

// requestLimiter is a connection's token bucket for requests, and a second
// bucket for the requests refused, whose exhaustion marks a flood. It lives
// in the connection (32 bytes, where two rate.Limiters and their holder
// cost about 200 a connection) and only the connection's reader uses it,
// one request at a time: it has no lock.
type requestLimiter struct {
	steady, refused tokenBucket
}

// newRequestLimiter returns a limiter with full buckets at now (ns on any
// monotonic clock, the one admit is given).
func newRequestLimiter(l *Limits, now int64) requestLimiter {
	return requestLimiter{
		steady:  tokenBucket{tokens: float64(l.RequestBurst), last: now},
		refused: tokenBucket{tokens: float64(l.RequestBurst * floodFactor), last: now},
	}
}

// admit reports whether the next request, at now, may be handled and,
// when not, whether the client is flooding.
func (r *requestLimiter) admit(l *Limits, now int64) (ok, flood bool) {
	if r.steady.take(now, l.RequestRate, l.RequestBurst) {
		return true, false
	}
	return false, !r.refused.take(now, l.RequestRate*floodFactor, l.RequestBurst*floodFactor)
}

// tokenBucket holds up to burst tokens, refilled at rate a second.
type tokenBucket struct {
	tokens float64
	last   int64 // when tokens was counted (ns)
}

// take takes a token at now, if there is one.
func (b *tokenBucket) take(now int64, rate float64, burst int) bool {
	b.tokens = min(float64(burst), b.tokens+float64(now-b.last)*rate/1e9)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// httpConns bounds the connections that speak plain HTTP: every
// connection until a WebSocket upgrade hijacks it (the guard counts it from
// then on). Idle keep-alive connections cost a file descriptor each for as
// long as the client keeps them, so at the bound a new connection takes the
// place of the connection idle the longest. When none is idle, the accept
// loop waits for a slot, up to half the handshake timeout (the longest a
// connection may hold one before its request is whole), while newer
// connections wait in the kernel's listen queue: in a reconnect storm the
// upgrades give their slots back within milliseconds. A connection that
// still finds none is answered 503, and past a quarter more than the bound
// closed at once. An idle connection closed to make room may have been about
// to carry a request: clients retry those.
type httpConns struct {
	max   int
	guard *guard
	log   *slog.Logger
	freed chan struct{} // a slot was given back or a connection went idle
	done  chan struct{} // closed at shutdown: waiting is over

	mu       sync.Mutex
	wait     time.Duration              // for a slot, at most
	open     map[net.Conn]*list.Element // admitted; the element while idle
	idle     list.List                  // of net.Conn, the longest idle first
	refusing map[net.Conn]struct{}      // answered 503
	stopped  bool
}

type refusedConnKey struct{}

func newHTTPConns(max int, wait time.Duration, g *guard, log *slog.Logger) *httpConns {
	return &httpConns{max: max, wait: wait, guard: g, log: log, freed: make(chan struct{}, 1), done: make(chan struct{}),
		open: map[net.Conn]*list.Element{}, refusing: map[net.Conn]struct{}{}}
}

// admit is http.Server's ConnContext: it runs in the accept loop for each
// new connection, before any byte is read.
func (h *httpConns) admit(ctx context.Context, c net.Conn) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	deadline := time.Now().Add(h.wait)
	for len(h.open) >= h.max {
		if e := h.idle.Front(); e != nil {
			oldest := h.idle.Remove(e).(net.Conn)
			delete(h.open, oldest)
			closeSocket(oldest)
			h.guard.count(closedHTTPIdle)
			continue
		}
		if !h.waitForSlot(deadline) {
			break
		}
	}
	if len(h.open) < h.max {
		h.open[c] = nil
		return ctx
	}
	h.guard.count(refusedHTTP)
	h.log.Debug("http connection refused", "remote", c.RemoteAddr().String(), "reason", refusalNames[refusedHTTP], "open", len(h.open))
	if len(h.refusing) <= h.max/4 {
		h.refusing[c] = struct{}{}
		return context.WithValue(ctx, refusedConnKey{}, true)
	}
	closeSocket(c)
	return ctx
}

// waitForSlot waits, with h.mu released, until a slot may be free; false
// when the deadline passed or the server is shutting down.
func (h *httpConns) waitForSlot(deadline time.Time) bool {
	wait := time.Until(deadline)
	if wait <= 0 || h.stopped {
		return false
	}
	h.mu.Unlock()
	defer h.mu.Lock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-h.freed:
		return true
	case <-t.C:
		return false
	case <-h.done:
		return false
	}
}

// stop ends any wait for a slot: the server is shutting down.
func (h *httpConns) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped = true
		close(h.done)
	}
}

// signal wakes the accept loop if it waits for a slot.
func (h *httpConns) signal() {
	select {
	case h.freed <- struct{}{}:
	default:
	}
}

// track is http.Server's ConnState: it keeps the idle list in order and
// gives a slot back when its connection closes or is hijacked.
func (h *httpConns) track(c net.Conn, state http.ConnState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.open[c]
	switch state {
	case http.StateIdle:
		if ok && e == nil {
			h.open[c] = h.idle.PushBack(c)
			h.signal()
		}
	case http.StateActive:
		if ok && e != nil {
			h.idle.Remove(e)
			h.open[c] = nil
		}
	case http.StateHijacked, http.StateClosed:
		if ok {
			if e != nil {
				h.idle.Remove(e)
			}
			delete(h.open, c)
			h.signal()
		}
		delete(h.refusing, c)
	}
}

// count returns the connections holding a slot.
func (h *httpConns) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.open)
}

// refusedConn reports whether the request came on a connection admitted
// over the bound, to be answered 503.
func refusedConn(r *http.Request) bool {
	v, _ := r.Context().Value(refusedConnKey{}).(bool)
	return v
}

// closeSocket closes c's file descriptor without a TLS close_notify, whose
// write could block the accept loop that calls it.
func closeSocket(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	_ = c.Close()
}
