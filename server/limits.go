package server

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
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
	// WebSocket connection, in bytes (default 128 KiB; Linux doubles it
	// for its bookkeeping). A negative value leaves the kernel's
	// autotuning, which lets the send queue of a client that does not
	// read grow to megabytes, outside the engine's backlog limits and out
	// of sight of its slow-consumer policy.
	SocketSendBuffer int
}

// DefaultSocketSendBuffer is Limits.SocketSendBuffer's default.
const DefaultSocketSendBuffer = 128 << 10

// floodFactor is how many times RequestRate of refused requests a
// connection may keep sending before it is closed with 1008: a client
// that ignores its 429s costs the node the answers.
const floodFactor = 10

func (l *Limits) setDefaults() {
	if l.MaxConnections <= 0 {
		l.MaxConnections = 100_000
	}
	if l.MaxConnectionsPerIP <= 0 {
		l.MaxConnectionsPerIP = 1000
	}
	if l.RequestRate <= 0 {
		l.RequestRate = 50
	}
	if l.RequestBurst <= 0 {
		l.RequestBurst = 100
	}
	if l.SocketSendBuffer == 0 {
		l.SocketSendBuffer = DefaultSocketSendBuffer
	}
}

// Close codes the edge uses beyond the engine's.
const (
	closeProtocolError    = 1002
	closePolicy           = 1008
	closeNotAuthenticated = 4001
	closeTooMany          = 4029
)

// Reasons a connection is refused at the upgrade or closed by a policy,
// the label values of the metrics.
const (
	refusedOrigin = iota
	refusedAuth
	refusedEntitlement
	refusedTotal
	refusedPerIP
	closedExpired
	closedFlood
	numRefusals
)

var refusalNames = [numRefusals]string{"origin", "unauthenticated", "not_entitled", "max_connections", "max_connections_per_ip", "token_expired", "request_flood"}

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
// bucket for the requests refused, whose exhaustion marks a flood.
type requestLimiter struct {
	steady, refused *rate.Limiter
}

func (g *guard) newRequestLimiter() *requestLimiter {
	l := g.limits
	return &requestLimiter{
		steady:  rate.NewLimiter(rate.Limit(l.RequestRate), l.RequestBurst),
		refused: rate.NewLimiter(rate.Limit(l.RequestRate*floodFactor), l.RequestBurst*floodFactor),
	}
}

// admit reports whether the next request may be handled and, when not,
// whether the client is flooding.
func (l *requestLimiter) admit() (ok, flood bool) {
	if l.steady.Allow() {
		return true, false
	}
	return false, !l.refused.Allow()
}
