package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/node"
	"github.com/tickstream/tickstream/server"
	"github.com/tickstream/tickstream/web"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stdout, serveUsage)
	var (
		sc        serveConfig
		cfg       = &sc.edge
		kf        kafkaFlags
		logFormat string
		logLevel  string
		edge      edgeFlags
	)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "HTTP `address` for the dashboard, /ws, the API and /metrics: host:port, :port for every interface")
	kf.register(fs, "Kafka `host:port,...` to consume; empty runs the embedded broker and the market simulator")
	fs.StringVar(&sc.node.Topic, "topic", "ticks", "Kafka `topic` of price updates")
	fs.StringVar(&sc.node.Start, "start", node.StartCheckpoint, "where ingest starts: checkpoint (resume from --checkpoint, else earliest), earliest, latest, or a negative `duration` such as -1h")
	fs.StringVar(&sc.node.Checkpoint, "checkpoint", "", "`file` to save the snapshot and partition offsets to, and resume from on restart")
	fs.DurationVar(&sc.node.CheckpointInterval, "checkpoint-interval", 10*time.Second, "how often to save the checkpoint (also saved on shutdown)")
	fs.IntVar(&sc.demo.Partitions, "partitions", 4, "partitions of the embedded broker's topic")
	fs.IntVar(&sc.demo.Symbols, "symbols", 500, "symbols of the embedded market simulator")
	fs.Float64Var(&sc.demo.Rate, "rate", 2000, "updates per second of the embedded market simulator")
	fs.Int64Var(&sc.demo.Seed, "seed", 1, "seed of the embedded market simulator")
	fs.DurationVar(&sc.demo.Duration, "sim-duration", 0, "stop the embedded market simulator after this long (0: never)")
	fs.StringVar(&sc.node.Fanout.ServerID, "server-id", "", "node name sent in HELLO (default: tickstream-<listen address>)")
	fs.DurationVar(&sc.node.Fanout.Heartbeat, "heartbeat", 5*time.Second, "HEARTBEAT interval of an idle connection")
	fs.IntVar(&sc.node.Fanout.MaxSubscriptions, "max-subscriptions", 5000, "symbols one connection may subscribe to (413 past it)")
	fs.IntVar(&sc.node.Fanout.MaxReserved, "max-reserved-per-conn", 1000, "symbols without data yet (not sent by the feed) one connection may hold, subscribed or remembered for a re-SUB (413 past it)")
	fs.IntVar(&sc.node.Fanout.SoftLimit, "soft-limit", 256<<10, "outbound backlog `bytes` past which a connection gets conflated deltas")
	fs.DurationVar(&sc.node.Fanout.SoftLag, "soft-lag", time.Second, "a connection whose socket has not taken a write for this long gets conflated deltas too")
	fs.IntVar(&sc.node.Fanout.HardLimit, "hard-limit", 4<<20, "outbound backlog `bytes` a connection may stay over for --slow-grace before 4008")
	fs.DurationVar(&sc.node.Fanout.SlowGrace, "slow-grace", 5*time.Second, "how long a connection may stay over --hard-limit, or block a write")
	fs.DurationVar(&sc.node.Fanout.FlushDelay, "flush-delay", 0, "hold each connection's writer this long to pack more messages per frame")
	fs.IntVar(&sc.node.Fanout.MaxFrameSize, "max-frame", 64<<10, "largest outbound frame in `bytes` (a single larger message still goes whole)")
	fs.BoolVar(&cfg.Compression, "compression", true, "permessage-deflate for clients that offer it")
	fs.IntVar(&cfg.MaxMessageSize, "max-message", 64<<10, "largest inbound message in `bytes` (1009 past it)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 5*time.Second, "WebSocket handshake timeout")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 60*time.Second, "close a connection silent this long (pings count)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", 10*time.Second, "timeout of one frame write, or of 16 KiB of an HTTP response")
	fs.DurationVar(&cfg.HTTPIdleTimeout, "http-idle-timeout", 30*time.Second, "close a keep-alive HTTP connection idle this long")
	fs.IntVar(&sc.node.MaxSymbols, "max-symbols", 1_000_000, "size bound of the feed's symbol table (records of new symbols past it are counted and skipped)")
	fs.IntVar(&sc.node.MaxReserved, "max-reserved", 100_000, "symbols without data yet that all connections together may hold (503 past it)")
	fs.BoolVar(&sc.demoControls, "demo-controls", false, "enable POST /api/v1/demo/feed?state=down|up (embedded broker outage switch)")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	edge.register(fs, cfg)
	if err := parseServeFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		return badUsage(err)
	}
	cfg.Logger, sc.node.Logger = logger, logger
	cfg.Web = web.Handler()
	if sc.node.Brokers, err = kf.list(false); err != nil {
		return badUsage(err)
	}
	sc.node.Kafka = kf.sec
	if err := validateServe(&sc); err != nil {
		return badUsage(err)
	}
	if err := validateEdge(cfg, &edge); err != nil {
		return badUsage(err)
	}
	if err := edge.apply(&sc, logger); err != nil {
		return badUsage(err)
	}
	if sc.node.Fanout.ServerID == "" {
		sc.node.Fanout.ServerID = "tickstream-" + cfg.Listen
	}
	mode := "Kafka " + strings.Join(sc.node.Brokers, ",")
	var feed *demo.Feed
	if len(sc.node.Brokers) == 0 {
		sc.demo.Topic = sc.node.Topic
		if feed, err = demo.Start(sc.demo); err != nil {
			return err
		}
		defer feed.Close()
		sc.node.Brokers = feed.Brokers()
		if sc.demoControls {
			cfg.DemoFeed = feed
		}
		mode = "embedded broker " + strings.Join(feed.Brokers(), ",") + " with the market simulator"
	}
	n, err := node.New(sc.node)
	if err != nil {
		return err
	}
	srv, err := server.New(n, *cfg)
	if err != nil {
		n.Close()
		return err
	}
	if edge.pprof != "" {
		stop, err := startPprof(edge.pprof, logger)
		if err != nil {
			n.Close()
			return err
		}
		defer stop()
	}
	addr, httpScheme, wsScheme := srv.Addr(), "http", "ws"
	if cfg.TLSCertFile != "" {
		httpScheme, wsScheme = "https", "wss"
	}
	fmt.Fprintf(stdout, "tickstream serving %s (topic %s): dashboard %s://%s/  websocket %s://%s/ws  metrics %s://%s/metrics\n",
		mode, sc.node.Topic, httpScheme, addr, wsScheme, addr, httpScheme, addr)
	return runBounded(ctx, srv, feed, edge.shutdownTimeout)
}

// serveConfig is what serve's flags set: the node, its edge, and the demo
// feed that serve starts when no brokers are given.
type serveConfig struct {
	node         node.Config
	edge         server.Config
	demo         demo.Config
	demoControls bool
}

// serveUsage is the help of serve, before its flags.
const serveUsage = `usage: tickstream serve [flags]

Runs the server. Without --brokers it starts an embedded broker and the market
simulator, and serves anyone (a demo). With --brokers it consumes that Kafka's
--topic and authenticates clients: --jwt-secret (mint their tokens with
'tickstream token'), --jwt-public-key, or --auth=none.

` + configHelp + `
flags:
`

func validateServe(sc *serveConfig) error {
	cfg, n, d := &sc.edge, &sc.node, &sc.demo
	if err := validListen(cfg.Listen); err != nil {
		return err
	}
	checks := []struct {
		ok   bool
		flag string
		msg  string
	}{
		{node.ValidStart(n.Start) == nil, "start", "want checkpoint, earliest, latest or a negative duration such as -1h"},
		{n.CheckpointInterval >= 100*time.Millisecond, "checkpoint-interval", "want at least 100ms"},
		{n.Checkpoint == "" || len(n.Brokers) > 0, "checkpoint", "only with --brokers (the embedded broker forgets its log on restart)"},
		{d.Partitions >= 1 && d.Partitions <= 1024, "partitions", "want 1 to 1024"},
		{d.Symbols >= 1 && d.Symbols <= 1_000_000, "symbols", "want 1 to 1000000"},
		{d.Rate > 0, "rate", "want more than 0"},
		{d.Duration >= 0, "sim-duration", "want 0 or more"},
		{n.Fanout.Heartbeat >= 100*time.Millisecond, "heartbeat", "want at least 100ms"},
		{n.Fanout.MaxSubscriptions >= 1, "max-subscriptions", "want at least 1"},
		{n.Fanout.MaxReserved >= 1, "max-reserved-per-conn", "want at least 1"},
		{n.Fanout.SoftLimit >= 4096, "soft-limit", "want at least 4096"},
		{n.Fanout.SoftLag >= 10*time.Millisecond, "soft-lag", "want at least 10ms"},
		{n.Fanout.HardLimit >= n.Fanout.SoftLimit, "hard-limit", "want at least --soft-limit"},
		{n.Fanout.SlowGrace > 0, "slow-grace", "want more than 0"},
		{n.Fanout.FlushDelay >= 0 && n.Fanout.FlushDelay <= time.Second, "flush-delay", "want 0 to 1s"},
		{n.Fanout.MaxFrameSize >= 1024, "max-frame", "want at least 1024"},
		{cfg.MaxMessageSize >= 256, "max-message", "want at least 256"},
		{cfg.HandshakeTimeout > 0, "handshake-timeout", "want more than 0"},
		{cfg.IdleTimeout > 0, "idle-timeout", "want more than 0"},
		{cfg.WriteTimeout > 0, "write-timeout", "want more than 0"},
		{cfg.HTTPIdleTimeout > 0, "http-idle-timeout", "want more than 0"},
		{n.MaxSymbols >= 1, "max-symbols", "want at least 1"},
		{n.MaxReserved >= 1, "max-reserved", "want at least 1"},
		{!sc.demoControls || len(n.Brokers) == 0, "demo-controls", "only with the embedded broker (no --brokers)"},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("--%s: %s", c.flag, c.msg)
		}
	}
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("--log-format: want text or json")
}

// validListen checks a --listen address, with a hint for the common
// mistake of a bare port.
func validListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, perr := strconv.ParseUint(addr, 10, 16); perr == nil {
			return fmt.Errorf("--listen %q: want host:port: %q for every interface, %q for this machine only", addr, ":"+addr, "127.0.0.1:"+addr)
		}
		return fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:8080 or :8080", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("--listen %q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}
