package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/tickstream/tickstream/bench"
	"github.com/tickstream/tickstream/embedded"
)

const benchUsage = `usage: tickstream bench [--scenario NAME] [--embedded | --url URL [--brokers HOST:PORT,...]] [flags]

The load benchmark. Opens --conns WebSocket connections to a tickstream server,
each subscribing to --symbols-per-conn of --symbols symbols, feeds the server's
Kafka topic with the market simulator at --rate updates per second, and
measures what the connections receive: latency from each update's event time
to its receipt (HDR histograms), deliveries per second, wire bytes per update,
connect and first-snapshot time, errors and close codes, and the server's CPU
and memory when it runs on this machine. It checks the protocol's ordering
contract on every message and, once the feed stops, that every connection's
state equals the server's; a violation fails the run (exit status 1).

--embedded starts an embedded broker in this process and a server in a child
process (this binary's serve command), so that the server's CPU and memory are
its own. Otherwise --url names a running server and --brokers the Kafka it
consumes (with serve's --tls-* and --sasl-* flags for a secured one); without
--brokers the run only measures the server's own feed. A wss:// server whose
certificate a private CA signed needs that CA in --server-ca.

Scenarios (flags given on the command line override them):
  dashboard  2000 connections, 20 symbols each, maxHz 4
  firehose   4 connections, every symbol, every update
  skew       1000 connections of 10 Zipf-chosen symbols (popular symbols)
  storm      2000 connections that all reconnect at once after the warm-up
  overload   4000 connections of 10 of 400 symbols fed at about twice what the
             server can deliver in time; judged by the p99 age of what arrives
             (--p99, 100ms), with the excess conflated rather than queued
  conns      18000 connections of 20 of 1000 symbols at 20 updates/s: the
             server's memory per connection (needs ulimit -n above 18000)

--find-max steps the rate up by --step-factor until p99 passes --p99 or
deliveries fall behind, and reports the highest sustained deliveries/s.

--overload judges each step by the p99 age of what arrives (under --p99)
instead: conflation is the expected answer to overload, and the server's
conflation counters are reported. --serve-flags passes more flags to the
--embedded server (e.g. "--max-staleness 50ms").

On Linux the connections over ws:// without compression are read by the
benchmark's own epoll poller, a few goroutines for all of them, so that the
load generator costs little CPU and leaves the run queue to the feed's
producer, whose delay counts in every update's age; wss:// and compressed
connections, and other systems, use the Go SDK's client (a goroutine each).
--sdk-reader uses the SDK's client for every connection, to measure the
server with the clients SDK applications run.

--history runs reconnect storms with bar history instead: all --conns connect
at once, each subscribing to its symbols with --bars and --bar-count, and each
is timed and weighed (wire bytes) until its first chart, the BARS of every
symbol; storms without bars, and storms asking only for the bars of the last
two intervals (what the TypeScript SDK asks for when it reconnects), alternate
with them (--history-rounds of each), and the server's CPU is sampled around
each. Nothing is fed; with --embedded the topic first gets --history-span of
the market's past, so the server has bars.

Every flag can also be set as TICKSTREAM_<FLAG> (e.g. TICKSTREAM_URL).

flags:
`

// benchOptions are the flags of bench that are not part of bench.Config.
type benchOptions struct {
	scenario    string
	history     bool
	historySpan time.Duration
	embedded    bool
	kafka       kafkaFlags
	serverCA    serverCAFlag
	fields      string
	format      string
	jsonFile    string
	plotFile    string
	partition   int
	logLevel    string
	cpuProf     string
	// serveFlags are more flags of the --embedded server.
	serveFlags string
}

// benchFlags registers the flags of bench on fs, bound to cfg and o, with
// cfg's values as defaults.
func benchFlags(fs *flag.FlagSet, cfg *bench.Config, o *benchOptions) {
	fs.StringVar(&o.scenario, "scenario", "", "start from a named scenario: "+strings.Join(bench.Scenarios, ", "))
	fs.BoolVar(&o.embedded, "embedded", false, "start an embedded broker and a server (child process) for this run")
	fs.StringVar(&cfg.URL, "url", cfg.URL, "WebSocket `URL` of the server")
	o.serverCA.register(fs)
	o.kafka.register(fs, "Kafka `host:port,...` the server consumes, to feed it (none: measure the server's own feed)")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "Kafka `topic` the server consumes")
	fs.IntVar(&o.partition, "partitions", 4, "embedded: partitions of the topic")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "WebSocket connections")
	fs.IntVar(&cfg.SymbolsPerConn, "symbols-per-conn", cfg.SymbolsPerConn, "symbols each connection subscribes to")
	fs.IntVar(&cfg.SlowConns, "slow-conns", cfg.SlowConns, "more connections that subscribe and never read (4 KiB receive buffer); ws:// only")
	fs.BoolVar(&cfg.SlowReconnect, "slow-reconnect", cfg.SlowReconnect, "reopen a --slow-conns connection when the server closes it (loopback)")
	fs.IntVar(&cfg.SlowSymbolsPerConn, "slow-symbols-per-conn", cfg.SlowSymbolsPerConn, "symbols each --slow-conns connection subscribes to (0: --symbols-per-conn)")
	fs.IntVar(&cfg.Symbols, "symbols", cfg.Symbols, "symbols to choose from (the simulator's most active first)")
	fs.Float64Var(&cfg.Zipf, "zipf", cfg.Zipf, "Zipf exponent (>1) of the symbol choice; 0 chooses uniformly")
	fs.Float64Var(&cfg.MaxHz, "max-hz", cfg.MaxHz, "subscription maxHz (0: every update)")
	fs.StringVar(&o.fields, "fields", "", "subscription fields, `a,b,...` (ts is always added; default all)")
	fs.StringVar(&o.format, "format", "msgpack", "subprotocol: msgpack or json")
	fs.BoolVar(&cfg.Compression, "compression", cfg.Compression, "offer permessage-deflate")
	fs.BoolVar(&cfg.SDKReader, "sdk-reader", cfg.SDKReader, "read every connection with the Go SDK's client (a goroutine each) instead of the benchmark's epoll poller")
	fs.Float64Var(&cfg.RampRate, "ramp", cfg.RampRate, "open at most this many connections per second (0: no pacing)")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", cfg.DialConcurrency, "dials in flight")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", cfg.DialTimeout, "bound of one connection's dial, HELLO and snapshots")
	fs.IntVar(&cfg.SourceIPs, "source-ips", cfg.SourceIPs, "spread connections over this many 127.0.0.x source addresses (0: one per 500)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "updates per second fed to the topic (the first step with --find-max)")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "uncounted feed before each measured step")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each step")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the symbol choice and the simulator")
	fs.BoolVar(&cfg.Storm, "storm", cfg.Storm, "reconnect every connection at once after the warm-up")
	fs.BoolVar(&cfg.FindMax, "find-max", cfg.FindMax, "step the rate up until p99 or delivery fails")
	fs.Float64Var(&cfg.StepFactor, "step-factor", cfg.StepFactor, "find-max: rate factor between steps")
	fs.IntVar(&cfg.MaxSteps, "max-steps", cfg.MaxSteps, "find-max: most steps")
	fs.DurationVar(&cfg.P99Limit, "p99", cfg.P99Limit, "find-max: p99 latency limit of a sustained step (plus 1/maxHz)")
	fs.BoolVar(&cfg.Overload, "overload", cfg.Overload, "judge steps by the p99 age of what arrives (--p99), conflation expected, and report the server's conflation")
	fs.StringVar(&o.serveFlags, "serve-flags", "", "embedded: more flags of the server, space-separated (e.g. \"--max-staleness 50ms\")")
	fs.IntVar(&cfg.ServerPID, "server-pid", cfg.ServerPID, "server process to sample CPU and RSS from (0: the one listening on the URL's loopback port, -1: none)")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "progress and latency series interval")
	fs.StringVar(&o.jsonFile, "json", "", "write every figure as JSON to `file`")
	fs.StringVar(&o.plotFile, "plot", "", "write latency plots to `file` (.html with SVG, or .png)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.BoolVar(&o.history, "history", false, "run reconnect storms with bar history (see above) instead of the load steps")
	fs.StringVar(&cfg.Bars, "bars", cfg.Bars, "history: the bar `interval` each SUB asks for")
	fs.IntVar(&cfg.BarCount, "bar-count", cfg.BarCount, "history: the bars of history each SUB asks for per symbol (barCount)")
	fs.IntVar(&cfg.HistoryRounds, "history-rounds", cfg.HistoryRounds, "history: storms of each kind, with and without bars, alternating")
	fs.DurationVar(&o.historySpan, "history-span", 24*time.Hour, "history with --embedded: the market's past written to the topic before the server starts")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of the benchmark process (clients, producer, embedded broker) to `file`, to tell whether the load generator limits the run")
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// Two passes: the first finds the scenario, whose values become the
	// defaults of the second, so that explicit flags override it.
	var o benchOptions
	probe := newFlagSet("bench", io.Discard, "")
	pc := bench.DefaultConfig()
	benchFlags(probe, &pc, &o)
	if err := parseFlags(probe, args); err != nil && !errors.Is(err, flag.ErrHelp) {
		o.scenario = "" // the second pass reports it
	}
	cfg := bench.DefaultConfig()
	if o.scenario != "" {
		var err error
		if cfg, err = bench.Scenario(o.scenario); err != nil {
			return usagef("--scenario: %w", err)
		}
	}
	fs := newFlagSet("bench", stdout, benchUsage)
	benchFlags(fs, &cfg, &o)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := o.apply(&cfg, given); err != nil {
		return badUsage(err)
	}
	if cfg.Transport != nil {
		defer cfg.Transport.CloseIdleConnections()
	}
	tty := isTerminal(stderr)
	if _, ok := stderr.(*os.File); !ok {
		// The child server's output is copied into stderr by a goroutine
		// of os/exec unless stderr is a file: serialize it with the
		// progress lines and the log.
		stderr = &lockedWriter{w: stderr}
	}
	logger, err := newLogger(stderr, "text", o.logLevel)
	if err != nil {
		return badUsage(err)
	}
	if o.plotFile != "" {
		if _, err := bench.PlotFormat(o.plotFile); err != nil {
			return usagef("--plot: %w", err)
		}
	}
	for _, f := range []string{o.jsonFile, o.plotFile} {
		if f != "" {
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return err
			}
		}
	}

	if o.embedded {
		var prepare func(context.Context) error
		if o.history {
			prepare = func(ctx context.Context) error {
				n, err := bench.WriteHistory(ctx, cfg, o.historySpan, benchHistoryUpdates)
				logger.Info("bench: market history written", "updates", n, "span", o.historySpan)
				return err
			}
		}
		stop, err := startBenchServer(ctx, &cfg, o.partition, strings.Fields(o.serveFlags), stderr, prepare)
		if err != nil {
			return err
		}
		defer stop()
	}

	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	if o.history {
		return runHistoryBench(ctx, cfg, o, logger, stdout)
	}

	var n int
	cfg.Progress = func(p bench.Progress) {
		line := bench.ProgressLine(p)
		switch {
		case tty:
			fmt.Fprintf(stderr, "\r%s%s", line, ansiClearLine)
		case n%5 == 0: // a log keeps one line in five
			fmt.Fprintln(stderr, line)
		}
		n++
	}
	res, err := bench.Run(ctx, cfg, logger)
	if tty {
		fmt.Fprint(stderr, "\r"+ansiClearLine)
	}
	if res == nil {
		return err
	}
	if werr := bench.WriteSummary(stdout, res); werr != nil && err == nil {
		err = werr
	}
	if o.jsonFile != "" {
		if werr := writeFile(o.jsonFile, func(w io.Writer) error { return bench.WriteJSON(w, res) }); werr != nil && err == nil {
			err = werr
		}
	}
	if o.plotFile != "" {
		if werr := writeFile(o.plotFile, func(w io.Writer) error { return bench.WritePlot(w, res, o.plotFile) }); werr != nil && err == nil {
			err = werr
		}
	}
	if err == nil && !res.Passed {
		err = fmt.Errorf("run failed: %s", strings.Join(res.Failures, "; "))
	}
	return err
}

// benchHistoryUpdates is how many updates --history --embedded writes over
// --history-span: as many as serve --sim-history.
const benchHistoryUpdates = 200_000

// runHistoryBench runs bench --history and writes its figures.
func runHistoryBench(ctx context.Context, cfg bench.Config, o benchOptions, logger *slog.Logger, stdout io.Writer) error {
	// The embedded server's topic has its history: nothing more is fed.
	cfg.Rate, cfg.Brokers = 0, nil
	res, err := bench.RunHistory(ctx, cfg, logger)
	if res == nil {
		return err
	}
	if werr := bench.WriteHistorySummary(stdout, res); werr != nil && err == nil {
		err = werr
	}
	if o.jsonFile != "" {
		if werr := writeFile(o.jsonFile, func(w io.Writer) error { return bench.WriteHistoryJSON(w, res) }); werr != nil && err == nil {
			err = werr
		}
	}
	if err == nil && !res.Passed {
		err = fmt.Errorf("run failed: %s", strings.Join(res.Failures, "; "))
	}
	return err
}

// apply copies the options that need parsing into cfg.
func (o *benchOptions) apply(cfg *bench.Config, given map[string]bool) error {
	switch o.format {
	case "msgpack":
		cfg.JSON = false
	case "json":
		cfg.JSON = true
	default:
		return fmt.Errorf("--format %q: want msgpack or json", o.format)
	}
	if o.fields != "" {
		cfg.Fields = strings.Split(o.fields, ",")
	}
	if o.kafka.brokers != "" || o.kafka.secured() {
		if o.embedded {
			return errors.New("--embedded and --brokers, --tls or --sasl-* exclude each other: --embedded starts its own broker")
		}
		var err error
		if cfg.Brokers, err = o.kafka.list(true); err != nil {
			return err
		}
		if cfg.Transport, err = o.kafka.transport(); err != nil {
			return err
		}
	}
	if o.serverCA.file != "" && (o.embedded || !strings.HasPrefix(cfg.URL, "wss://")) {
		return errors.New("--server-ca needs a wss:// --url: it is the CA of that server's certificate")
	}
	var err error
	if cfg.TLSConfig, err = o.serverCA.config(); err != nil {
		return err
	}
	if o.serveFlags != "" && !o.embedded {
		return errors.New("--serve-flags needs --embedded: it passes flags to the server that --embedded starts")
	}
	if o.embedded && given["url"] {
		return errors.New("--url and --embedded exclude each other: --embedded starts its own server")
	}
	if !o.embedded && len(cfg.Brokers) == 0 && !given["rate"] {
		cfg.Rate = 0 // nothing to feed: measure the server's own feed
	}
	if o.history {
		switch {
		case given["rate"] || given["find-max"] || given["storm"] || given["slow-conns"] || given["overload"]:
			return errors.New("--history feeds nothing and runs its own storms: --rate, --find-max, --storm, --slow-conns and --overload do not apply")
		case o.plotFile != "":
			return errors.New("--history writes no latency plot: drop --plot")
		case len(cfg.Brokers) > 0:
			return errors.New("--history feeds nothing: drop --brokers (the server's topic must hold bars already: serve --sim-history, or --embedded)")
		}
	}
	if o.partition < 1 || o.partition > 1024 {
		return fmt.Errorf("--partitions %d: want 1 to 1024", o.partition)
	}
	return nil
}

// lockedWriter is a writer safe for concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// writeFile writes a file through fn, reporting the first error.
func writeFile(name string, fn func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// benchServerWait bounds the wait for the child server's /healthz.
const benchServerWait = 20 * time.Second

// startBenchServer starts an embedded broker in this process, runs prepare
// (when not nil) on it, and starts a server consuming it in a child
// process, on loopback ports, and points cfg at them; extra are more flags
// of the server. stop ends both.
func startBenchServer(ctx context.Context, cfg *bench.Config, partitions int, extra []string, stderr io.Writer, prepare func(context.Context) error) (stop func(), err error) {
	broker, err := embedded.Start(cfg.Topic, partitions)
	if err != nil {
		return nil, err
	}
	cfg.Brokers = broker.Addrs()
	if prepare != nil {
		// Before the server starts, which reads it from the start (a
		// history run waits for its /readyz).
		if err := prepare(ctx); err != nil {
			broker.Close()
			return nil, err
		}
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		broker.Close()
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		broker.Close()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	args := append([]string{"serve", "--listen", addr, "--brokers", strings.Join(cfg.Brokers, ","),
		"--topic", cfg.Topic, "--log-level", "warn", fmt.Sprintf("--compression=%t", cfg.Compression)}, extra...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	// A server reading Kafka may insist on client authentication; the
	// benchmark's loopback server serves anyone. The environment, unlike a
	// flag, is ignored by a serve command that has no such setting.
	cmd.Env = append(os.Environ(), "TICKSTREAM_AUTH=none")
	detach(cmd)
	if err := cmd.Start(); err != nil {
		broker.Close()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop = func() {
		_ = terminate(cmd.Process)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		broker.Close()
	}
	if err := waitHealthy(ctx, "http://"+addr+"/healthz", exited, &waitErr); err != nil {
		stop()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	cfg.URL = "ws://" + addr + "/ws"
	cfg.ServerPID = cmd.Process.Pid
	return stop, nil
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago, for a child process to listen on.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("embedded server: find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitHealthy polls url until it answers 200, the child exits, or
// benchServerWait passes.
func waitHealthy(ctx context.Context, url string, exited <-chan struct{}, waitErr *error) error {
	ctx, cancel := context.WithTimeout(ctx, benchServerWait)
	defer cancel()
	switch err := bench.PollOK(ctx, nil, url, exited); {
	case errors.Is(err, bench.ErrPollStopped):
		return fmt.Errorf("exited before serving: %v", *waitErr)
	case err != nil:
		return fmt.Errorf("not healthy within %v: %w", benchServerWait, err)
	}
	return nil
}
