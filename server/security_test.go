package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/internal/testcert"
	"github.com/tickstream/tickstream/node"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// token signs claims with HS256 and testSecret.
func token(t *testing.T, syms []string, exp time.Time, mutate func(*Claims)) string {
	t.Helper()
	c := Claims{Syms: syms}
	if !exp.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(exp)
	}
	if mutate != nil {
		mutate(&c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawConn is a WebSocket test client that records every message and the
// close code, and can send arbitrary frames.
type rawConn struct {
	ws     *gws.Conn
	noPong bool

	mu     sync.Mutex
	msgs   []codec.Message
	code   int
	reason string
	done   chan struct{}
}

func (c *rawConn) OnOpen(*gws.Conn) {}
func (c *rawConn) OnPing(ws *gws.Conn, p []byte) {
	if !c.noPong {
		_ = ws.WritePong(p)
	}
}
func (c *rawConn) OnPong(*gws.Conn, []byte) {}
func (c *rawConn) OnClose(_ *gws.Conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		c.code, c.reason = int(ce.Code), string(ce.Reason)
	}
	close(c.done)
}
func (c *rawConn) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var msg codec.Message
	_ = codec.Binary.DecodeMessages(m.Bytes(), &msg, func(m *codec.Message) error {
		cp := *m
		cp.Acks = slices.Clone(m.Acks)
		cp.Syms = slices.Clone(m.Syms)
		c.mu.Lock()
		c.msgs = append(c.msgs, cp)
		c.mu.Unlock()
		return nil
	})
}

// messages returns a copy of the messages received so far.
func (c *rawConn) messages() []codec.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// find waits until a message satisfies match and returns it.
func (c *rawConn) find(t *testing.T, what string, match func(*codec.Message) bool) codec.Message {
	t.Helper()
	var found codec.Message
	waitUntil(t, 10*time.Second, what, func() bool {
		for _, m := range c.messages() {
			if match(&m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// closed waits for the end of the connection and returns its close code.
func (c *rawConn) closed(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open after 10s")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

func (c *rawConn) send(t *testing.T, frame []byte) {
	t.Helper()
	if err := c.ws.WriteMessage(gws.OpcodeBinary, frame); err != nil {
		t.Fatal(err)
	}
}

// dialRaw upgrades to url; a refused upgrade returns the response.
func dialRaw(t *testing.T, url string, header http.Header, tlsConfig *tls.Config, noPong bool) (*rawConn, *http.Response, error) {
	t.Helper()
	c := &rawConn{done: make(chan struct{}), noPong: noPong}
	ws, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: url, RequestHeader: header, TlsConfig: tlsConfig, HandshakeTimeout: 5 * time.Second})
	if err != nil {
		return nil, resp, err
	}
	c.ws = ws
	go ws.ReadLoop()
	t.Cleanup(func() {
		_ = ws.WriteClose(1000, nil)
		<-c.done
	})
	return c, resp, nil
}

func isHello(m *codec.Message) bool { return m.Op == codec.OpHello }

// TestAuthUpgrade holds the upgrade to the token rules: a missing or bad
// token is closed with 4001 before HELLO, a good one from the header or the
// query gets HELLO, and a connect-time subscription beyond the grant fails
// the upgrade with HTTP 403 naming the symbols.
func TestAuthUpgrade(t *testing.T) {
	auth, err := NewAuthenticator(AuthConfig{Secret: []byte(testSecret), Issuer: "tickstream-test"})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, setup{Config: Config{Auth: auth}, Demo: demo.Config{Symbols: 20, Rate: 200}})
	base := "ws://" + s.Addr() + "/ws"
	iss := func(c *Claims) { c.Issuer = "tickstream-test" }
	good := token(t, []string{"AAPL", "M*"}, time.Now().Add(time.Hour), iss)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Syms: []string{"*"}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	other, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Syms: []string{"*"}, RegisteredClaims: jwt.RegisteredClaims{Issuer: "tickstream-test"}}).SignedString([]byte(strings.Repeat("x", 32)))
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []struct {
		name      string
		query     string
		header    http.Header
		wantClose int // 0: HELLO expected
		wantHTTP  int
		wantBody  string
	}{
		{name: "no token", wantClose: 4001},
		{name: "garbage", header: bearer("not.a.token"), wantClose: 4001},
		{name: "other secret", header: bearer(other), wantClose: 4001},
		{name: "alg none", header: bearer(none), wantClose: 4001},
		{name: "expired", header: bearer(token(t, []string{"*"}, time.Now().Add(-time.Minute), iss)), wantClose: 4001},
		{name: "not yet valid", header: bearer(token(t, []string{"*"}, time.Time{}, func(c *Claims) {
			iss(c)
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
		})), wantClose: 4001},
		{name: "wrong issuer", header: bearer(token(t, []string{"*"}, time.Time{}, nil)), wantClose: 4001},
		{name: "bad pattern", header: bearer(token(t, []string{"A*B"}, time.Time{}, iss)), wantClose: 4001},
		{name: "basic scheme", header: http.Header{"Authorization": {"Basic " + good}}, wantClose: 4001},
		{name: "bearer header", header: bearer(good)},
		{name: "query token", query: "?token=" + good},
		{name: "entitled symbols", query: "?symbols=AAPL,MSFT&token=" + good},
		{name: "symbols not entitled", query: "?symbols=AAPL,TSLA,NVDA&token=" + good, wantHTTP: 403, wantBody: "not entitled to TSLA, NVDA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := dialRaw(t, base+tc.query, tc.header, nil, false)
			if tc.wantHTTP != 0 {
				if err == nil || resp == nil || resp.StatusCode != tc.wantHTTP {
					t.Fatalf("upgrade: err %v, response %+v; want HTTP %d", err, resp, tc.wantHTTP)
				}
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), tc.wantBody) {
					t.Errorf("body %q, want %q", body, tc.wantBody)
				}
				return
			}
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			if tc.wantClose != 0 {
				code, reason := c.closed(t)
				if code != tc.wantClose {
					t.Errorf("close %d %q, want %d", code, reason, tc.wantClose)
				}
				if msgs := c.messages(); len(msgs) > 0 {
					t.Errorf("got %d messages before the close, want none", len(msgs))
				}
				return
			}
			c.find(t, "HELLO", isHello)
		})
	}
}

// TestEntitlements checks that a SUB is split by the grant: one ERROR 403
// names the refused symbols, the ACK lists only the granted ones, and
// nothing of a refused symbol is ever sent.
func TestEntitlements(t *testing.T) {
	auth, err := NewAuthenticator(AuthConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, setup{Config: Config{Auth: auth}, Demo: demo.Config{Symbols: 20, Rate: 500}})
	c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws?token="+token(t, []string{"MSFT", "A*"}, time.Time{}, nil), nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c.find(t, "HELLO", isHello)
	c.send(t, codec.Binary.AppendSub(nil, 7, []string{"AAPL", "TSLA", "AMZN", "MSFT", "NVDA", "BAD SYM"}, nil))
	ack := c.find(t, "ACK 7", func(m *codec.Message) bool { return m.Op == codec.OpAck && m.ID == 7 })
	var acked []string
	sids := map[uint32]bool{}
	for _, a := range ack.Acks {
		acked = append(acked, a.Sym)
		sids[a.SID] = true
	}
	slices.Sort(acked)
	if want := []string{"AAPL", "AMZN", "MSFT"}; !slices.Equal(acked, want) {
		t.Errorf("ACK lists %v, want %v", acked, want)
	}
	var refused []string
	for _, m := range c.messages() {
		if m.Op == codec.OpError && m.ID == 7 && m.Code == 403 {
			refused = append(refused, m.Syms...)
		}
	}
	slices.Sort(refused)
	if want := []string{"NVDA", "TSLA"}; !slices.Equal(refused, want) {
		t.Errorf("ERROR 403 names %v, want %v", refused, want)
	}
	api := func(path, tok string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	tok := token(t, []string{"MSFT", "A*"}, time.Time{}, nil)
	apiTests := []struct {
		path, token string
		code        int
		has, hasnt  string
	}{
		{path: "/api/v1/snapshot?symbols=AAPL", code: 401},
		{path: "/api/v1/symbols", token: "bad", code: 401},
		{path: "/api/v1/snapshot?symbols=AAPL,MSFT", token: tok, code: 200, has: `"MSFT"`},
		{path: "/api/v1/snapshot?symbols=AAPL,TSLA", token: tok, code: 403, has: "TSLA"},
		{path: "/api/v1/snapshot", token: tok, code: 200, has: `"AAPL"`, hasnt: `"TSLA"`},
		{path: "/api/v1/symbols?limit=1000", token: tok, code: 200, has: `"AMZN"`, hasnt: `"NVDA"`},
	}
	for _, tc := range apiTests {
		code, body := api(tc.path, tc.token)
		if code != tc.code || !strings.Contains(body, tc.has) || tc.hasnt != "" && strings.Contains(body, tc.hasnt) {
			t.Errorf("GET %s: %d %s; want %d with %q without %q", tc.path, code, body, tc.code, tc.has, tc.hasnt)
		}
	}

	// TSLA and NVDA are among the most active simulated names: let deltas
	// flow, then check that every state message is of a granted symbol.
	c.find(t, "a DELTA", func(m *codec.Message) bool { return m.Op == codec.OpDelta })
	for _, m := range c.messages() {
		if (m.Op == codec.OpSnapshot || m.Op == codec.OpDelta) && !sids[m.SID] {
			t.Fatalf("op %d for sid %d, which was not granted", m.Op, m.SID)
		}
	}
}

// TestTokenExpiry checks that a connection is closed with 4001 when its
// token expires, and that one without exp stays open.
func TestTokenExpiry(t *testing.T) {
	auth, err := NewAuthenticator(AuthConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, setup{Config: Config{Auth: auth}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	base := "ws://" + s.Addr() + "/ws?symbols=AAPL&token="
	// exp has a resolution of one second: 2s is always in the future.
	expiring, _, err := dialRaw(t, base+token(t, []string{"*"}, time.Now().Add(2*time.Second), nil), nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	lasting, _, err := dialRaw(t, base+token(t, []string{"*"}, time.Time{}, nil), nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	expiring.find(t, "HELLO", isHello)
	if code, reason := expiring.closed(t); code != 4001 {
		t.Errorf("close %d %q, want 4001", code, reason)
	}
	select {
	case <-lasting.done:
		t.Error("the connection without exp was closed")
	default:
	}
}

// TestOrigins checks the browser origin allow-list: disallowed origins
// are closed with 1008.
func TestOrigins(t *testing.T) {
	s := startServer(t, setup{Config: Config{AllowedOrigins: []string{"https://app.example.com", "https://*.trading.example"}}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + s.Addr(), true},
		{"https://app.example.com", true},
		{"https://APP.example.com", true},
		{"https://eu.trading.example", true},
		{"http://app.example.com", false},
		{"https://trading.example", false},
		{"https://evil.example.com", false},
		{"https://app.example.com.evil.net", false},
		{"null", false},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws", h, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok {
				c.find(t, "HELLO", isHello)
				return
			}
			if code, _ := c.closed(t); code != 1008 {
				t.Errorf("close %d, want 1008", code)
			}
		})
	}
}

// TestConnectionLimits checks the total and per-IP connection limits
// (4029), and that a closed connection gives its slot back. The client IP
// comes from X-Forwarded-For so that one loopback address plays several.
func TestConnectionLimits(t *testing.T) {
	s := startServer(t, setup{Config: Config{Limits: Limits{MaxConnections: 3, MaxConnectionsPerIP: 2, ClientIPHeader: "X-Forwarded-For"}}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	dial := func(ip string) *rawConn {
		t.Helper()
		c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws", http.Header{"X-Forwarded-For": {"203.0.113.9, " + ip}}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	open := func(c *rawConn) { t.Helper(); c.find(t, "HELLO", isHello) }
	refused := func(c *rawConn) {
		t.Helper()
		if code, _ := c.closed(t); code != 4029 {
			t.Errorf("close %d, want 4029", code)
		}
	}
	a1 := dial("10.0.0.1")
	open(a1)
	open(dial("10.0.0.1"))
	refused(dial("10.0.0.1")) // per IP
	open(dial("10.0.0.2"))
	refused(dial("10.0.0.3")) // total
	_ = a1.ws.WriteClose(1000, nil)
	<-a1.done
	waitUntil(t, 10*time.Second, "the slot released", func() bool { return s.node.Hub().Stats().Clients == 2 })
	open(dial("10.0.0.1"))

	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`tickstream_connections_refused_total{reason="max_connections"} 1`,
		`tickstream_connections_refused_total{reason="max_connections_per_ip"} 1`,
		`tickstream_connections 3`,
		`tickstream_publish_seconds_bucket`,
		`tickstream_publish_age_seconds_bucket`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestRequestLimits checks the per-connection request rate (ERROR 429 for
// each request over it, carrying its id), the close of a flooding client
// (1008), the inbound message size (1009) and the subscription limit (413).
func TestRequestLimits(t *testing.T) {
	s := startServer(t, setup{Config: Config{MaxMessageSize: 256, Limits: Limits{RequestRate: 1, RequestBurst: 4}}, Node: node.Config{Fanout: fanout.Config{MaxSubscriptions: 2}}, Demo: demo.Config{Symbols: 10, Rate: 50}})
	url := "ws://" + s.Addr() + "/ws"
	pings := func(from, n int) []byte {
		var b []byte
		for i := range n {
			b = codec.Binary.AppendPing(b, uint64(from+i), 0)
		}
		return b
	}

	t.Run("rate", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		c.send(t, pings(1, 12))
		c.find(t, "the answer to request 12", func(m *codec.Message) bool { return m.ID == 12 })
		var pongs, limited int
		for _, m := range c.messages() {
			switch {
			case m.Op == codec.OpPong:
				pongs++
			case m.Op == codec.OpError && m.Code == 429:
				limited++
				if m.ID < 5 {
					t.Errorf("request %d was within the burst but got 429", m.ID)
				}
			}
		}
		if pongs < 4 || limited == 0 || pongs+limited != 12 {
			t.Errorf("%d PONGs and %d ERROR 429 for 12 PINGs with a burst of 4 at 1/s", pongs, limited)
		}
	})
	t.Run("flood", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		// Burst 4 plus 40 refusals allowed: 20 frames of 5 PINGs exceed it
		// many times over.
		for i := range 20 {
			if err := c.ws.WriteMessage(gws.OpcodeBinary, pings(1+5*i, 5)); err != nil {
				break // closed already
			}
		}
		if code, reason := c.closed(t); code != 1008 {
			t.Errorf("close %d %q, want 1008", code, reason)
		}
	})
	t.Run("message size", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		c.find(t, "HELLO", isHello)
		c.send(t, codec.Binary.AppendSub(nil, 1, slices.Repeat([]string{"AAPL"}, 60), nil))
		if code, _ := c.closed(t); code != 1009 {
			t.Errorf("close %d, want 1009", code)
		}
	})
	t.Run("subscriptions", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		c.send(t, codec.Binary.AppendSub(nil, 3, []string{"AAPL", "MSFT", "NVDA"}, nil))
		e := c.find(t, "ERROR 413", func(m *codec.Message) bool { return m.Op == codec.OpError && m.ID == 3 })
		if e.Code != 413 || !slices.Equal(e.Syms, []string{"NVDA"}) {
			t.Errorf("ERROR %d %v, want 413 [NVDA]", e.Code, e.Syms)
		}
		ack := c.find(t, "ACK 3", func(m *codec.Message) bool { return m.Op == codec.OpAck && m.ID == 3 })
		if len(ack.Acks) != 2 {
			t.Errorf("ACK lists %v, want 2 symbols", ack.Acks)
		}
	})
}

// TestTimeouts checks that a peer that stops answering pings is closed
// after the idle timeout while one that answers stays, and that a client
// that never finishes its upgrade request is cut off.
func TestTimeouts(t *testing.T) {
	// Wide enough that a loaded machine's scheduling (the race detector, a
	// broker beside) does not hold a pong back past it; it failed once at
	// 400ms under a load of 5 on two cores.
	const idle = time.Second
	s := startServer(t, setup{Config: Config{IdleTimeout: idle, HandshakeTimeout: 300 * time.Millisecond}, Node: node.Config{Fanout: fanout.Config{Heartbeat: 100 * time.Millisecond}}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	url := "ws://" + s.Addr() + "/ws"
	silent, _, err := dialRaw(t, url, nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	alive, _, err := dialRaw(t, url, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	silent.closed(t)
	time.Sleep(3 * idle)
	select {
	case <-alive.done:
		t.Error("a client answering pings was closed")
	default:
	}

	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("an unfinished upgrade request was not cut off: %v", err)
	}
}

// TestTLS serves wss from certificate files.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	s := startNode(t, setup{Config: Config{TLSCertFile: certFile, TLSKeyFile: keyFile}, Demo: demo.Config{Symbols: 5, Rate: 50}}).Server
	c, _, err := dialRaw(t, "wss://"+s.Addr()+"/ws", nil, &tls.Config{RootCAs: pool}, false)
	if err != nil {
		t.Fatal(err)
	}
	c.find(t, "HELLO over wss", isHello)
	if _, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws", nil, nil, false); err == nil {
		t.Error("a plain-text upgrade on the TLS listener succeeded")
	}

	if _, err := New(s.Node(), Config{TLSCertFile: certFile, TLSKeyFile: filepath.Join(t.TempDir(), "missing.pem"), Listen: "127.0.0.1:0", Logger: slogDiscard()}); err == nil {
		t.Error("New with a missing key file succeeded")
	}
}

// TestAuthenticatorKeys verifies tokens of every supported key kind and
// refuses keys and tokens of the wrong kind.
func TestAuthenticatorKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(k any) []byte {
		b, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b})
	}
	sign := func(m jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(m, Claims{Syms: []string{"*"}}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaPEM := pub(&rsaKey.PublicKey)
	tests := []struct {
		name    string
		cfg     AuthConfig
		newErr  bool
		method  string
		token   string
		wantErr bool
	}{
		{name: "HS256", cfg: AuthConfig{Secret: []byte(testSecret)}, method: "HS256", token: sign(jwt.SigningMethodHS256, []byte(testSecret))},
		{name: "RS256", cfg: AuthConfig{PublicKeyPEM: rsaPEM}, method: "RS256", token: sign(jwt.SigningMethodRS256, rsaKey)},
		{name: "ES256", cfg: AuthConfig{PublicKeyPEM: pub(&ecKey.PublicKey)}, method: "ES256", token: sign(jwt.SigningMethodES256, ecKey)},
		{name: "HS256 token for an RSA key", cfg: AuthConfig{PublicKeyPEM: rsaPEM}, method: "RS256", token: sign(jwt.SigningMethodHS256, rsaPEM), wantErr: true},
		{name: "ES256 token for an RSA key", cfg: AuthConfig{PublicKeyPEM: rsaPEM}, method: "RS256", token: sign(jwt.SigningMethodES256, ecKey), wantErr: true},
		{name: "HS512 token for HS256", cfg: AuthConfig{Secret: []byte(testSecret)}, method: "HS256", token: sign(jwt.SigningMethodHS512, []byte(testSecret)), wantErr: true},
		{name: "short secret", cfg: AuthConfig{Secret: []byte("short")}, newErr: true},
		{name: "secret and key", cfg: AuthConfig{Secret: []byte(testSecret), PublicKeyPEM: rsaPEM}, newErr: true},
		{name: "P-384 key", cfg: AuthConfig{PublicKeyPEM: pub(&p384.PublicKey)}, newErr: true},
		{name: "not a key", cfg: AuthConfig{PublicKeyPEM: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}, newErr: true},
		{name: "nothing", newErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAuthenticator(tc.cfg)
			if tc.newErr {
				if err == nil {
					t.Fatal("NewAuthenticator succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Method() != tc.method {
				t.Errorf("method %s, want %s", a.Method(), tc.method)
			}
			_, err = a.Verify(tc.token)
			if (err != nil) != tc.wantErr {
				t.Errorf("Verify: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestGrant(t *testing.T) {
	tests := []struct {
		patterns []string
		allowed  []string
		denied   []string
		wantErr  bool
	}{
		{patterns: nil, denied: []string{"AAPL"}},
		{patterns: []string{"*"}, allowed: []string{"AAPL", "NASDAQ:MSFT"}},
		{patterns: []string{"AAPL", "NASDAQ:*"}, allowed: []string{"AAPL", "NASDAQ:MSFT"}, denied: []string{"AAPLX", "NYSE:IBM", "NASDAQ"}},
		{patterns: []string{"A*B"}, wantErr: true},
		{patterns: []string{"**"}, wantErr: true},
		{patterns: []string{"bad sym"}, wantErr: true},
		{patterns: []string{""}, wantErr: true},
	}
	for _, tc := range tests {
		g, err := NewGrant(tc.patterns)
		if (err != nil) != tc.wantErr {
			t.Errorf("NewGrant(%q): %v, want error %v", tc.patterns, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		for _, s := range tc.allowed {
			if !g.Allows(s) {
				t.Errorf("%q does not allow %s", tc.patterns, s)
			}
		}
		for _, s := range tc.denied {
			if g.Allows(s) {
				t.Errorf("%q allows %s", tc.patterns, s)
			}
		}
	}
}

func TestValidOrigin(t *testing.T) {
	for s, want := range map[string]bool{
		"*": true, "https://app.example.com": true, "https://*.example.com": true, "http://127.0.0.1:8080": true,
		"app.example.com": false, "https://": false, "https://a.com/path": false, "https://a.*.com": false,
	} {
		if got := validOrigin(s); got != want {
			t.Errorf("validOrigin(%q) = %v, want %v", s, got, want)
		}
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
