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
	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/node"
	"github.com/tickstream/tickstream/server"
	"github.com/tickstream/tickstream/web"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stdout, serveUsage)
	var (
		sc        = serveConfig{node: node.DefaultConfig(), edge: server.DefaultConfig(), demo: demo.DefaultConfig()}
		cfg       = &sc.edge
		kf        kafkaFlags
		logFormat string
		logLevel  string
		edge      edgeFlags
	)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTP `address` for the dashboard, /ws, the API and /metrics: host:port, :port for every interface")
	kf.register(fs, "Kafka `host:port,...` to consume; empty runs the embedded broker and the market simulator")
	fs.StringVar(&sc.node.Topic, "topic", sc.node.Topic, "Kafka `topic` of price updates")
	fs.StringVar(&sc.node.Start, "start", sc.node.Start, "where ingest starts: checkpoint (resume from --checkpoint, else earliest), earliest, latest, or a negative `duration` such as -1h")
	fs.StringVar(&sc.node.Checkpoint, "checkpoint", sc.node.Checkpoint, "`file` to save the snapshot and partition offsets to, and resume from on restart")
	fs.DurationVar(&sc.node.CheckpointInterval, "checkpoint-interval", sc.node.CheckpointInterval, "how often to save the checkpoint (also saved on shutdown)")
	fs.IntVar(&sc.demo.Partitions, "partitions", sc.demo.Partitions, "partitions of the embedded broker's topic")
	fs.IntVar(&sc.demo.Symbols, "symbols", sc.demo.Symbols, "symbols of the embedded market simulator")
	fs.Float64Var(&sc.demo.Rate, "rate", sc.demo.Rate, "updates per second of the embedded market simulator")
	fs.Int64Var(&sc.demo.Seed, "seed", sc.demo.Seed, "seed of the embedded market simulator")
	fs.DurationVar(&sc.demo.Duration, "sim-duration", sc.demo.Duration, "stop the embedded market simulator after this long (0: never)")
	fs.DurationVar(&sc.demo.History, "sim-history", sc.demo.History, "give the embedded market this much of a past before it goes live, e.g. 8h: updates stamped over it (--rate a second, at most 200000), so that bars and sparklines start with a shape (0: none)")
	fs.StringVar(&sc.node.Fanout.ServerID, "server-id", "", "node name sent in HELLO (default: tickstream-<listen address>)")
	fs.DurationVar(&sc.node.Fanout.Heartbeat, "heartbeat", sc.node.Fanout.Heartbeat, "HEARTBEAT interval of an idle connection")
	fs.IntVar(&sc.node.Fanout.MaxSubscriptions, "max-subscriptions", sc.node.Fanout.MaxSubscriptions, "symbols one connection may subscribe to (413 past it)")
	fs.IntVar(&sc.node.Fanout.MaxReserved, "max-reserved-per-conn", sc.node.Fanout.MaxReserved, "symbols without data yet (not sent by the feed) one connection may hold, subscribed or remembered for a re-SUB (413 past it)")
	fs.IntVar(&sc.node.Fanout.SoftLimit, "soft-limit", sc.node.Fanout.SoftLimit, "outbound backlog `bytes` past which a connection gets conflated deltas")
	fs.DurationVar(&sc.node.Fanout.SoftLag, "soft-lag", sc.node.Fanout.SoftLag, "a connection whose socket has not taken a write for this long gets conflated deltas too")
	fs.DurationVar(&sc.node.Fanout.MaxStaleness, "max-staleness", sc.node.Fanout.MaxStaleness, "freshness budget: a connection whose oldest message not yet taken by its socket is older than this gets conflated deltas too (the newest state of each symbol instead of a queue of old ones)")
	fs.IntVar(&sc.node.Fanout.HardLimit, "hard-limit", sc.node.Fanout.HardLimit, "outbound backlog `bytes` a connection may stay over for --slow-grace before 4008")
	fs.DurationVar(&sc.node.Fanout.SlowGrace, "slow-grace", sc.node.Fanout.SlowGrace, "how long a connection may stay over --hard-limit, or block a write")
	fs.DurationVar(&sc.node.Fanout.FlushDelay, "flush-delay", sc.node.Fanout.FlushDelay, "hold each connection's writer this long to pack more messages per frame")
	fs.IntVar(&sc.node.Fanout.MaxFrameSize, "max-frame", sc.node.Fanout.MaxFrameSize, "largest outbound frame in `bytes` (a single larger message still goes whole)")
	fs.BoolVar(&cfg.Compression, "compression", cfg.Compression, "permessage-deflate for clients that offer it")
	fs.IntVar(&cfg.MaxMessageSize, "max-message", cfg.MaxMessageSize, "largest inbound message in `bytes` (1009 past it)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "WebSocket handshake timeout")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a connection silent this long (pings count)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "timeout of one frame write, or of 16 KiB of an HTTP response")
	fs.DurationVar(&cfg.HTTPIdleTimeout, "http-idle-timeout", cfg.HTTPIdleTimeout, "close a keep-alive HTTP connection idle this long")
	fs.IntVar(&sc.node.MaxSymbols, "max-symbols", sc.node.MaxSymbols, "size bound of the feed's symbol table (records of new symbols past it are counted and skipped)")
	fs.IntVar(&sc.node.MaxReserved, "max-reserved", sc.node.MaxReserved, "symbols without data yet that all connections together may hold (503 past it)")
	fs.Var(barsFlag{&sc.node}, "bars", "OHLCV bar `intervals` of every symbol as length:retention durations, each length whole seconds dividing 24h (e.g. 1s:15m,1m:24h,1h:30d), or off; a symbol keeps its last retention/length bars (sparse: no trade, no bar)")
	fs.Var(bytesFlag{&sc.node.Bars.MaxBytes}, "bars-max-memory", "`bytes` the bars of all symbols may hold together (48 a bar), e.g. 256MiB or 2GiB: past it a symbol's ring that would grow overwrites its oldest bar instead")
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
	cfg.AllowedOrigins = edge.allowedOrigins()
	if err := validateServe(&sc, &edge); err != nil {
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
		// Before the node starts: it is ready only once it has read the past.
		if n, err := feed.WriteHistory(ctx); err != nil {
			return err
		} else if n > 0 {
			logger.Info("simulator history written", "updates", n, "span", sc.demo.History)
		}
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

// validateServe checks serve's settings: first the bounds serve keeps for
// a production node, above what the packages accept (their tests go
// below them), and the rules between flags; then each package's own rules
// (its Validate), reported under the flag that sets the field.
func validateServe(sc *serveConfig, e *edgeFlags) error {
	cfg, d := &sc.edge, &sc.demo
	if err := validListen(cfg.Listen); err != nil {
		return err
	}
	n := sc.node
	if len(n.Brokers) == 0 {
		n.Brokers = []string{"demo"} // the demo feed's address is known once it runs
	}
	checks := []struct {
		ok   bool
		flag string
		msg  string
	}{
		{n.CheckpointInterval >= 100*time.Millisecond, "checkpoint-interval", "want at least 100ms"},
		{n.Checkpoint == "" || len(sc.node.Brokers) > 0, "checkpoint", "only with --brokers (the embedded broker forgets its log on restart)"},
		{n.Fanout.Heartbeat >= 100*time.Millisecond, "heartbeat", "want at least 100ms"},
		{n.Fanout.SoftLimit >= 4096, "soft-limit", "want at least 4096"},
		{n.Fanout.SoftLag >= 10*time.Millisecond, "soft-lag", "want at least 10ms"},
		{n.Fanout.MaxStaleness >= time.Millisecond, "max-staleness", "want at least 1ms"},
		{n.Fanout.FlushDelay >= 0 && n.Fanout.FlushDelay <= time.Second, "flush-delay", "want 0 to 1s"},
		{n.Fanout.MaxFrameSize >= 1024, "max-frame", "want at least 1024"},
		{cfg.MaxMessageSize >= 256, "max-message", "want at least 256"},
		{cfg.Limits.SocketSendBuffer == -1 || cfg.Limits.SocketSendBuffer >= 4096, "socket-send-buffer", "want -1 or at least 4096"},
		{e.shutdownTimeout > 0, "shutdown-timeout", "want more than 0"},
		{!sc.demoControls || len(sc.node.Brokers) == 0, "demo-controls", "only with the embedded broker (no --brokers)"},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("--%s: %s", c.flag, c.msg)
		}
	}
	for _, err := range []error{n.Validate(), cfg.Validate(), d.Validate()} {
		if err != nil {
			return settingError(err)
		}
	}
	return nil
}

// serveFlags names the flag that sets each field of serve's Configs, as a
// config.FieldError names it.
var serveFlags = map[string]string{
	"Topic": "topic", "Start": "start", "CheckpointInterval": "checkpoint-interval",
	"MaxSymbols": "max-symbols", "MaxReserved": "max-reserved",
	"Fanout.Heartbeat": "heartbeat", "Fanout.SoftLimit": "soft-limit", "Fanout.SoftLag": "soft-lag",
	"Fanout.MaxStaleness": "max-staleness", "Fanout.HardLimit": "hard-limit", "Fanout.SlowGrace": "slow-grace", "Fanout.MaxSubscriptions": "max-subscriptions",
	"Fanout.MaxReserved": "max-reserved-per-conn", "Fanout.MaxFrameSize": "max-frame", "Fanout.FlushDelay": "flush-delay",
	"Listen": "listen", "AllowedOrigins": "allowed-origins", "MaxMessageSize": "max-message",
	"HandshakeTimeout": "handshake-timeout", "IdleTimeout": "idle-timeout", "WriteTimeout": "write-timeout",
	"HTTPIdleTimeout":       "http-idle-timeout",
	"Limits.MaxConnections": "max-connections", "Limits.MaxConnectionsPerIP": "max-connections-per-ip",
	"Limits.RequestRate": "request-rate", "Limits.RequestBurst": "request-burst",
	"Limits.MaxHTTPConnections": "max-http-connections",
	"Bars.Intervals":            "bars", "Bars.MaxBytes": "bars-max-memory",
	"Partitions": "partitions", "Symbols": "symbols", "Rate": "rate", "Duration": "sim-duration", "History": "sim-history",
}

// settingError words a package's refusal of a setting as the one-line error
// of the flag that set it.
func settingError(err error) error {
	var fe *config.FieldError
	if errors.As(err, &fe) {
		if flag, ok := serveFlags[fe.Field]; ok {
			return fmt.Errorf("--%s: want %s", flag, fe.Want)
		}
	}
	return err
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
