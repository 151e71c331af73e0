// Package server is tickstream's edge: it serves a node (package node)
// over HTTP — the WebSocket endpoint /ws, whose connections are the
// transports of the node's fanout hub, the REST API over its store,
// health, readiness and metrics, and the dashboard.
//
// github.com/lxzan/gws upgrades WebSocket connections and writes their
// frames; the server reads them itself (internal/wsframe), so that
// an idle connection holds no goroutine: on Linux one epoll poller reads
// every plain TCP connection (wspoll_linux.go), and a connection over TLS,
// or on another system, has a goroutine of its own (wsreadside.go).
package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/node"
)

// Config configures a Server, the edge of a node. Zero values take the
// defaults noted (DefaultConfig): the zero Config serves on
// 127.0.0.1:8080.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:8080).
	Listen string
	// Compression enables permessage-deflate for clients that offer it.
	Compression bool
	// MaxMessageSize bounds an inbound WebSocket message; a larger one
	// closes the connection with 1009 (default 64 KiB).
	MaxMessageSize int
	// HandshakeTimeout bounds the WebSocket handshake (default 5s).
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection from which nothing (not even a pong)
	// arrived for this long (default 60s).
	IdleTimeout time.Duration
	// WriteTimeout bounds one frame write, and each 16 KiB of an HTTP
	// response (default 10s): a large response to a slow client goes on as
	// long as it moves.
	WriteTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive HTTP connection that waits this
	// long for its next request (default 30s). HTTP requests must arrive
	// whole within HandshakeTimeout.
	HTTPIdleTimeout time.Duration
	// Limits bounds connections and requests per connection.
	Limits Limits
	// Auth verifies the token of every client; nil lets every client in
	// with every symbol.
	Auth *Authenticator
	// AllowedOrigins are the browser origins besides the node's own that
	// may open a WebSocket: "*", "https://app.example.com" or
	// "https://*.example.com". Others are closed with 1008.
	AllowedOrigins []string
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS and wss with the
	// PEM certificate chain and key in those files.
	TLSCertFile, TLSKeyFile string
	// DemoFeed, when set, serves POST /api/v1/demo/feed?state=down|up,
	// an outage switch of the demo's embedded broker (demo.Feed).
	DemoFeed FeedSwitch
	// Web serves the dashboard at /; nil serves a plain index page.
	Web http.Handler
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
}

// FeedSwitch switches a simulated outage of the feed on and off.
type FeedSwitch interface {
	SetDown(down bool)
	Down() bool
}

// DefaultConfig returns the edge's default settings, those a zero field
// of Config takes. Booleans are as given: Compression is on here, off in
// a zero Config.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		Compression:      true,
		MaxMessageSize:   64 << 10,
		HandshakeTimeout: 5 * time.Second,
		IdleTimeout:      60 * time.Second,
		WriteTimeout:     10 * time.Second,
		HTTPIdleTimeout:  30 * time.Second,
		Limits: Limits{
			MaxConnections:      100_000,
			MaxConnectionsPerIP: 1000,
			RequestRate:         50,
			RequestBurst:        100,
			SocketSendBuffer:    64 << 10,
			MaxHTTPConnections:  1000,
		},
		Logger: slog.Default(),
	}
}

// Validate reports the first setting out of range, as a
// config.FieldError naming it (Limits.MaxConnections for a limit's). It
// checks the values as given: New fills the zero fields from
// DefaultConfig first.
func (c Config) Validate() error {
	for _, o := range c.AllowedOrigins {
		if !validOrigin(o) {
			return config.Check(false, "AllowedOrigins", o, "*, scheme://host[:port] or scheme://*.domain")
		}
	}
	return config.First(
		config.Check(c.Listen != "", "Listen", c.Listen, "host:port"),
		config.Check(c.MaxMessageSize > 0, "MaxMessageSize", c.MaxMessageSize, "more than 0"),
		config.Check(c.HandshakeTimeout > 0, "HandshakeTimeout", c.HandshakeTimeout, "more than 0"),
		config.Check(c.IdleTimeout > 0, "IdleTimeout", c.IdleTimeout, "more than 0"),
		config.Check(c.WriteTimeout > 0, "WriteTimeout", c.WriteTimeout, "more than 0"),
		config.Check(c.HTTPIdleTimeout > 0, "HTTPIdleTimeout", c.HTTPIdleTimeout, "more than 0"),
		config.Within("Limits", c.Limits.Validate()),
	)
}

// Server is the edge of a running node: it serves the node's hub over
// WebSocket and its store and health over HTTP.
type Server struct {
	cfg       Config
	log       *slog.Logger
	node      *node.Node
	upgraders *upgraders
	readers   *wsReaders
	guard     *guard
	httpConns *httpConns
	mux       *http.ServeMux
	ln        net.Listener
	started   time.Time
	// closing counts the close frames being written (wsConn.Close): a
	// shutdown waits for them before the readers close the sockets, or a
	// client would see its connection drop (1006) instead of 1001.
	closing pending
}

// New builds the edge of n and listens on cfg.Listen. Run serves, and runs
// the node. Zero fields of cfg take their DefaultConfig value; New refuses
// a Config that Validate refuses then.
func New(n *node.Node, cfg Config) (*Server, error) {
	config.FillZero(&cfg, DefaultConfig())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("server: TLS certificate: %w", err)
		}
		// HTTP/1.1 only: a WebSocket upgrade needs it.
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, node: n, started: time.Now(), guard: newGuard(cfg.Limits, cfg.AllowedOrigins)}
	s.httpConns = newHTTPConns(cfg.Limits.MaxHTTPConnections, cfg.HandshakeTimeout/2, s.guard, cfg.Logger)
	s.upgraders = newUpgraders(&s.cfg, s.log)
	s.readers = newWSReaders(cfg.IdleTimeout, cfg.Logger)
	s.mux = s.routes()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.Listen, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.ln = ln
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Node returns the node the server is the edge of.
func (s *Server) Node() *node.Node { return s.node }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Run runs the node and serves until ctx ends, then shuts down: it stops
// accepting, closes the node (every client with 1001) and waits for ingest
// to stop, within a bounded time.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	ingested := make(chan struct{})
	go func() {
		defer close(ingested)
		if err := s.node.Run(ctx); err != nil {
			errc <- err
		}
	}()
	stopReaders := s.readers.run()
	srv := s.httpServer()
	go func() {
		if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("server: %w", err)
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	s.httpConns.stop()
	_ = srv.Shutdown(shutdown) // hijacked WebSocket connections are closed by the node's hub
	s.node.Close()
	s.closing.wait() // each bounded by its write deadline
	stopReaders()
	<-ingested
	return err
}

// httpServer serves the routes with bounds on every connection's time and
// on the connections that speak plain HTTP. A WebSocket connection leaves
// them at the upgrade: net/http clears the deadlines of a connection it
// hands over (and gws clears them again after writing its handshake), the
// guard and the engine's own deadlines bound it from then on.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		// A request and its body must arrive whole within it (a body sent a
		// byte at a time would hold the connection forever otherwise).
		ReadTimeout: s.cfg.HandshakeTimeout,
		// Renewed by progressWriter for each chunk of a response.
		WriteTimeout: s.cfg.WriteTimeout,
		IdleTimeout:  s.cfg.HTTPIdleTimeout,
		ConnContext:  s.httpConns.admit,
		ConnState:    s.httpConns.track,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// serveHTTP answers 503 on a connection admitted over the bound of plain
// HTTP connections, and serves the routes otherwise.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if refusedConn(r) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	s.mux.ServeHTTP(&progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}, r)
}

// progressChunk is how much of a response must go out within the write
// timeout.
const progressChunk = 16 << 10

// progressWriter moves the write deadline before each chunk of a response,
// so that http.Server's WriteTimeout bounds a stall rather than the length
// of a response: a large snapshot or /metrics to a slow client is not cut
// while it moves, a client that stops reading is.
type progressWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		chunk := p[:min(len(p), progressChunk)]
		if err := w.rc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return n, err
		}
		m, err := w.ResponseWriter.Write(chunk)
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// Hijack hands the connection to the WebSocket upgrade.
func (w *progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.rc.Hijack() }

// Unwrap lets http.ResponseController reach the connection.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
