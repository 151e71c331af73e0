// Package server is tickstream's edge: it wires ingest, the snapshot store
// and the fanout engine together and serves them over HTTP — the WebSocket
// endpoint /ws (github.com/lxzan/gws), the REST API, health, readiness and
// metrics, and the dashboard.
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
	"sync"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/ingest"
	"github.com/tickstream/tickstream/sim"
	"github.com/tickstream/tickstream/snapshot"
)

// Config configures a Server. The zero value serves the embedded demo on
// 127.0.0.1:8080.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:8080).
	Listen string
	// Brokers are the Kafka brokers to consume; none starts the embedded
	// broker and the market simulator.
	Brokers []string
	// Topic is the price topic (default "ticks").
	Topic string
	// Start is where partitions start: StartCheckpoint (the default:
	// resume from Checkpoint when it holds a valid checkpoint, else from
	// the earliest offset), ingest.StartEarliest, ingest.StartLatest or a
	// negative duration such as "-1h" (see ingest.ParseStart).
	Start string
	// Checkpoint is the file the store and the partition offsets are
	// saved to every CheckpointInterval (default 10s) and on shutdown;
	// empty saves nothing.
	Checkpoint         string
	CheckpointInterval time.Duration
	// Kafka holds the TLS and SASL settings of the brokers.
	Kafka ingest.Security
	// Partitions of the embedded broker's topic (default 4).
	Partitions int
	// Simulator settings for the embedded mode.
	Symbols int     // default 500
	Rate    float64 // updates per second, default 2000
	Seed    int64
	// SimDuration stops the simulator after this long (0: never); the
	// server goes on serving the last state.
	SimDuration time.Duration

	// Fanout tunes the engine (limits, heartbeat, server id).
	Fanout fanout.Config
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
	// MaxSymbols bounds the feed's symbol table (default 1,000,000): the
	// records of a new symbol past it are counted (ingest rejected, reason
	// symbol_table_full), logged and skipped. Subscriptions never take
	// room in it.
	MaxSymbols int
	// MaxReserved bounds the symbols without data (names the feed has not
	// sent) that all clients together may hold (default 100,000); past it
	// a SUB of a new one is refused with 503. Each client is bounded too,
	// by Fanout.MaxReserved.
	MaxReserved int
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
	// DemoControls enables POST /api/v1/demo/feed?state=down|up, an
	// outage switch of the embedded broker for demos and tests.
	DemoControls bool
	// Web serves the dashboard at /; nil serves a plain index page.
	Web http.Handler
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Topic == "" {
		c.Topic = "ticks"
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.Symbols <= 0 {
		c.Symbols = 500
	}
	if c.Rate <= 0 {
		c.Rate = 2000
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 64 << 10
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 30 * time.Second
	}
	if c.MaxSymbols <= 0 {
		c.MaxSymbols = 1_000_000
	}
	if c.MaxReserved <= 0 {
		c.MaxReserved = 100_000
	}
	c.Limits.setDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Fanout.Logger == nil {
		c.Fanout.Logger = c.Logger
	}
}

// Server is a running tickstream node.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *snapshot.Store
	hub       *fanout.Hub
	consumer  *ingest.Consumer
	ckpt      checkpointStats
	broker    *embedded.Broker
	upgraders *upgraders
	guard     *guard
	httpConns *httpConns
	mux       *http.ServeMux
	ln        net.Listener
	started   time.Time
}

// New builds a server: it starts the embedded broker when no brokers are
// configured, and listens on cfg.Listen. Run serves.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	for _, o := range cfg.AllowedOrigins {
		if !validOrigin(o) {
			return nil, fmt.Errorf("server: allowed origin %q: want *, scheme://host[:port] or scheme://*.domain", o)
		}
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
	s := &Server{cfg: cfg, log: cfg.Logger, started: time.Now(), guard: newGuard(cfg.Limits, cfg.AllowedOrigins)}
	s.httpConns = newHTTPConns(cfg.Limits.MaxHTTPConnections, cfg.HandshakeTimeout/2, s.guard, cfg.Logger)
	s.store = snapshot.New(snapshot.WithMaxSymbols(cfg.MaxSymbols), snapshot.WithMaxReserved(cfg.MaxReserved))
	s.hub = fanout.NewHub(s.store, cfg.Fanout)
	brokers := cfg.Brokers
	if len(brokers) == 0 {
		b, err := embedded.Start(cfg.Topic, cfg.Partitions)
		if err != nil {
			s.hub.Close(codec.CloseGoingAway, "")
			return nil, err
		}
		s.broker = b
		brokers = b.Addrs()
	}
	consumer, err := s.newConsumer(brokers)
	if err != nil {
		s.closeEarly()
		return nil, err
	}
	s.consumer = consumer
	s.upgraders = newUpgraders(wsHandler{s}, &s.cfg, s.log)
	s.mux = s.routes()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.Listen, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.ln = ln
	return s, nil
}

func (s *Server) closeEarly() {
	s.hub.Close(codec.CloseGoingAway, "")
	if s.broker != nil {
		s.broker.Close()
	}
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Brokers returns the Kafka brokers ingest reads (the embedded one's
// address in embedded mode).
func (s *Server) Brokers() []string {
	if s.broker != nil {
		return s.broker.Addrs()
	}
	return s.cfg.Brokers
}

// Embedded reports whether the server runs the embedded broker.
func (s *Server) Embedded() bool { return s.broker != nil }

// Store returns the server's snapshot store.
func (s *Server) Store() *snapshot.Store { return s.store }

// Hub returns the server's fanout engine.
func (s *Server) Hub() *fanout.Hub { return s.hub }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx ends, then shuts down: it stops accepting, closes
// every client with 1001 and stops ingest (and the embedded broker and
// simulator), within a bounded time.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.runIngest(ctx); err != nil {
			errc <- err
		}
	}()
	if s.broker != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.simulate(ctx); err != nil {
				errc <- err
			}
		}()
	}
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
	_ = srv.Shutdown(shutdown) // hijacked WebSocket connections are closed by the hub
	s.hub.Close(codec.CloseGoingAway, "server shutting down")
	wg.Wait()
	if s.broker != nil {
		s.broker.Close()
	}
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

// simulate feeds the embedded broker with the market simulator.
func (s *Server) simulate(ctx context.Context) error {
	market := sim.NewMarket(sim.Config{Symbols: s.cfg.Symbols, Seed: s.cfg.Seed})
	p, err := sim.NewProducer(sim.ProducerConfig{Brokers: s.broker.Addrs(), Topic: s.cfg.Topic})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer p.Close()
	if _, err := p.Run(ctx, market, s.cfg.Rate, s.cfg.SimDuration); err != nil && ctx.Err() == nil {
		return fmt.Errorf("simulator: %w", err)
	}
	return nil
}
