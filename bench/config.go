package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
)

// Limits that bound every run, so that a typo cannot start a run that never
// ends or exhausts the machine.
const (
	// MaxConns bounds Config.Conns: 127.0.0.0/8 has room for far more
	// source ports, but each connection needs a file descriptor.
	MaxConns = 1_000_000
	// MaxRate bounds Config.Rate and the steps of a find-max run.
	MaxRate = 1e7
	// MaxDuration bounds Config.Duration and Config.Warmup.
	MaxDuration = 24 * time.Hour
	// MaxSteps bounds the steps of a find-max run.
	MaxSteps = 30
)

// DefaultURL is the WebSocket endpoint of a server started with its
// defaults.
const DefaultURL = "ws://127.0.0.1:8080/ws"

// Config configures a benchmark run. The zero value is not valid: start from
// DefaultConfig or Scenario.
type Config struct {
	// URL is the server's WebSocket endpoint, ws://host:port/ws.
	URL string
	// TLSConfig configures TLS to a wss:// URL's server, for its
	// connections and its HTTP endpoints (https://): RootCAs for a
	// certificate that a private CA signed; nil: the system's roots.
	TLSConfig *tls.Config
	// Brokers and Topic name the Kafka topic the server consumes. With
	// brokers, the run feeds the topic at Rate; without, it only measures
	// what the server's own feed delivers (the final-state check is then
	// skipped, since the feed never goes quiet).
	Brokers []string
	Topic   string
	// Transport, when set, carries the feed's connections to the brokers
	// (TLS, SASL); the caller closes its idle connections after Run.
	Transport *kafka.Transport

	// Conns is the number of WebSocket connections.
	Conns int
	// SymbolsPerConn is how many symbols each connection subscribes to
	// (K); it is at most Symbols.
	SymbolsPerConn int
	// Symbols is the universe the connections choose from and the market
	// simulator updates (S): the simulator's first Symbols tickers.
	Symbols int
	// Zipf, when above 1, skews the choice of symbols: the symbol of
	// popularity rank r is chosen with weight 1/r^Zipf. Otherwise the
	// choice is uniform.
	Zipf float64
	// MaxHz and Fields are the subscription options (protocol v1 SUB):
	// 0 and nil for every update of every field. ts is always added to
	// Fields, since the latency is measured from it.
	MaxHz  float64
	Fields []string
	// JSON selects the tickstream.v1.json subprotocol instead of
	// MessagePack.
	JSON bool
	// Compression offers permessage-deflate.
	Compression bool
	// SDKReader reads every connection with the Go SDK (client.Conn: a
	// gws reader goroutine each), as an application built on the SDK
	// does. Otherwise, on Linux, the connections over ws:// without
	// compression are read by the benchmark's own epoll poller, a few
	// goroutines for all of them, which costs the load generator far less
	// CPU and leaves the run queue to the feed's producer.
	SDKReader bool
	// RampRate opens at most this many connections per second; 0 opens
	// them as fast as DialConcurrency allows.
	RampRate float64
	// DialConcurrency bounds the dials in flight.
	DialConcurrency int
	// DialTimeout bounds one connection's dial, upgrade, HELLO, ACK and
	// snapshots.
	DialTimeout time.Duration
	// SourceIPs spreads the connections over this many source addresses
	// 127.0.0.1, 127.0.0.2, ... when the server is on loopback, as real
	// clients come from many addresses (and a server limits connections
	// per address), and so that more than one address's ephemeral ports
	// (about 28k) can be used; 0 chooses one address per 500 connections.
	SourceIPs int

	// SlowConns opens this many more connections that subscribe to
	// SlowSymbolsPerConn symbols (0: SymbolsPerConn) each and never read,
	// with a 4 KiB receive buffer, as stalled or hostile clients do: what
	// they cost the server and the other connections is then measured.
	// On loopback the server's end of each is watched, to see when the
	// server closes it; their figures are in Result.Slow. ws:// only.
	SlowConns          int
	SlowSymbolsPerConn int
	// SlowReconnect reopens a slow connection the server closed (on
	// loopback), so that SlowConns stay attached all along.
	SlowReconnect bool

	// Rate is the updates per second fed to the topic.
	Rate float64
	// Warmup is fed before each measured step and not counted.
	Warmup time.Duration
	// Duration is the measured time of each step.
	Duration time.Duration
	// Seed seeds the symbol choices and the market simulator.
	Seed int64

	// Bars and BarCount are the bar options (SUB bars, barCount) of the
	// history rounds of RunHistory, and HistoryRounds the number of its
	// rounds of each kind; Run does not use them.
	Bars          string
	BarCount      int
	HistoryRounds int

	// Storm closes every connection at the end of the first warm-up and
	// reopens them all at once, measuring how long the server takes to
	// give all of them their snapshots again.
	Storm bool

	// FindMax steps Rate up by StepFactor after each step that passes,
	// until one fails (p99 over P99Limit, or deliveries falling behind)
	// or MaxSteps ran, and reports the highest sustained step.
	FindMax    bool
	StepFactor float64
	MaxSteps   int
	// P99Limit is the p99 latency a step must stay under. With MaxHz, the
	// conflation interval 1/MaxHz is added: a conflated update waits for
	// it by design.
	P99Limit time.Duration

	// Overload judges a step by the freshness of what arrives, for a feed
	// that offers more than the server can write: the p99 age (event time
	// to receipt) must stay under P99Limit, and the excess is expected to
	// be conflated rather than queued, so conflation does not fail it.
	// Each step then reports the server's conflation counters
	// (Step.Overload).
	Overload bool

	// ServerPID is the server process whose CPU and RSS are sampled from
	// /proc; 0 looks it up by the URL's port when the server is on
	// loopback, -1 samples nothing.
	ServerPID int

	// Interval is the period of the progress reports and of the latency
	// series.
	Interval time.Duration
	// Progress, when set, is called every Interval from the run's own
	// goroutine.
	Progress func(Progress)
}

// DefaultConfig returns a small run against DefaultURL: 100 connections of
// 10 symbols out of 500, 2000 updates/s, 5s warm-up and 20s measured.
func DefaultConfig() Config {
	return Config{
		URL:             DefaultURL,
		Topic:           sim.DefaultTopic,
		Conns:           100,
		SymbolsPerConn:  10,
		Symbols:         sim.DefaultSymbols,
		RampRate:        0,
		DialConcurrency: 64,
		DialTimeout:     10 * time.Second,
		Rate:            2000,
		Warmup:          5 * time.Second,
		Duration:        20 * time.Second,
		Seed:            1,
		StepFactor:      1.5,
		MaxSteps:        12,
		P99Limit:        50 * time.Millisecond,
		Interval:        time.Second,
		Bars:            "1m",
		BarCount:        390,
		HistoryRounds:   3,
	}
}

// Scenarios are the names Scenario knows, in the order of the standard
// suite.
var Scenarios = []string{"dashboard", "firehose", "skew", "storm", "overload", "conns"}

// Scenario returns DefaultConfig shaped as a named scenario:
//
//   - dashboard: many connections (2000), 20 symbols each, maxHz 4.
//   - firehose: few connections (4), every symbol, every update.
//   - skew: 1000 connections of 10 symbols chosen Zipf-skewed (s = 1.1),
//     so that a few popular symbols have most subscribers.
//   - storm: 2000 connections of 5 symbols that all reconnect at once
//     after the warm-up.
//   - overload: 4000 connections of 10 of 400 symbols (100 subscribers
//     per symbol, about 12 messages per second per connection) fed at
//     OverloadRate, about twice the find-max knee of that shape on the
//     2-core machine of docs/BENCHMARKS.md; judged by the p99 age of what
//     arrives (100 ms), with the excess conflated rather than queued.
//   - conns: 18000 connections of 20 of 1000 symbols at 20 updates/s
//     (7200 deliveries/s) after a 30 s warm-up, for the server's memory
//     per connection (Result.Memory); a process needs ulimit -n above
//     18000.
func Scenario(name string) (Config, error) {
	c := DefaultConfig()
	switch name {
	case "dashboard":
		c.Conns, c.SymbolsPerConn, c.MaxHz = 2000, 20, 4
	case "firehose":
		c.Conns, c.SymbolsPerConn = 4, c.Symbols
		c.Rate = 5000
	case "skew":
		c.Conns, c.SymbolsPerConn, c.Zipf = 1000, 10, 1.1
	case "storm":
		c.Conns, c.SymbolsPerConn, c.Storm = 2000, 5, true
		c.Rate = 1000
	case "overload":
		c.Conns, c.SymbolsPerConn, c.Symbols = 4000, 10, 400
		c.Rate, c.P99Limit, c.Overload = OverloadRate, 100*time.Millisecond, true
	case "conns":
		c.Conns, c.SymbolsPerConn, c.Symbols = 18_000, 20, 1000
		// The feed's first writes (every symbol's state, 360 000
		// deliveries) take the server seconds: the warm-up lets them
		// drain, so that the memory is that of a steady state.
		c.Rate, c.DialTimeout, c.Warmup = 20, 30*time.Second, 30*time.Second
	default:
		return c, fmt.Errorf("bench: unknown scenario %q: want one of %s", name, strings.Join(Scenarios, ", "))
	}
	return c, nil
}

// validate checks c and fills what depends on other fields.
func (c *Config) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("bench: URL %q: want ws://host:port/ws or wss://", c.URL)
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("bench: broker %q is not host:port", b)
		}
	}
	checks := []struct {
		ok  bool
		msg string
	}{
		{c.Conns >= 1 && c.Conns <= MaxConns, fmt.Sprintf("Conns %d: want 1 to %d", c.Conns, MaxConns)},
		{c.Symbols >= 1 && c.Symbols <= sim.MaxSymbols, fmt.Sprintf("Symbols %d: want 1 to %d", c.Symbols, sim.MaxSymbols)},
		{c.SymbolsPerConn >= 1 && c.SymbolsPerConn <= c.Symbols && c.SymbolsPerConn <= codec.MaxSymbolsPerCommand,
			fmt.Sprintf("SymbolsPerConn %d: want 1 to Symbols (%d), at most %d", c.SymbolsPerConn, c.Symbols, codec.MaxSymbolsPerCommand)},
		{c.SlowConns >= 0 && c.SlowConns <= MaxConns, fmt.Sprintf("SlowConns %d: want 0 to %d", c.SlowConns, MaxConns)},
		{c.SlowConns == 0 || u.Scheme == "ws", "SlowConns: want a ws:// URL"},
		{c.SlowSymbolsPerConn >= 0 && c.SlowSymbolsPerConn <= c.Symbols && c.SlowSymbolsPerConn <= codec.MaxSymbolsPerCommand,
			fmt.Sprintf("SlowSymbolsPerConn %d: want 0 to Symbols (%d), at most %d", c.SlowSymbolsPerConn, c.Symbols, codec.MaxSymbolsPerCommand)},
		{c.Zipf == 0 || c.Zipf > 1 && c.Zipf < 10, fmt.Sprintf("Zipf %v: want 0 (uniform) or an exponent above 1 and below 10", c.Zipf)},
		{c.MaxHz >= 0 && c.MaxHz <= codec.MaxHzLimit, fmt.Sprintf("MaxHz %v: want 0 to %d", c.MaxHz, codec.MaxHzLimit)},
		{c.RampRate >= 0 && !math.IsInf(c.RampRate, 0), fmt.Sprintf("RampRate %v: want 0 (no ramp) or connections per second", c.RampRate)},
		{c.DialConcurrency >= 1 && c.DialConcurrency <= 100_000, fmt.Sprintf("DialConcurrency %d: want 1 to 100000", c.DialConcurrency)},
		{c.DialTimeout > 0 && c.DialTimeout <= time.Hour, fmt.Sprintf("DialTimeout %v: want above 0, at most 1h", c.DialTimeout)},
		{c.SourceIPs >= 0 && c.SourceIPs <= 1<<16, fmt.Sprintf("SourceIPs %d: want 0 (automatic) to 65536", c.SourceIPs)},
		{c.Rate >= 0 && c.Rate <= MaxRate, fmt.Sprintf("Rate %v: want 0 to %g updates per second", c.Rate, MaxRate)},
		{c.Rate == 0 || len(c.Brokers) > 0, fmt.Sprintf("Rate %v needs Brokers to feed", c.Rate)},
		{c.Warmup >= 0 && c.Warmup <= MaxDuration, fmt.Sprintf("Warmup %v: want 0 to %v", c.Warmup, MaxDuration)},
		{c.Duration >= time.Second && c.Duration <= MaxDuration, fmt.Sprintf("Duration %v: want 1s to %v", c.Duration, MaxDuration)},
		{!c.FindMax || c.Rate > 0, "FindMax needs a Rate and Brokers to feed"},
		{!c.FindMax || c.StepFactor > 1 && c.StepFactor <= 10, fmt.Sprintf("StepFactor %v: want above 1, at most 10", c.StepFactor)},
		{!c.FindMax || c.MaxSteps >= 1 && c.MaxSteps <= MaxSteps, fmt.Sprintf("MaxSteps %d: want 1 to %d", c.MaxSteps, MaxSteps)},
		{c.P99Limit > 0, fmt.Sprintf("P99Limit %v: want above 0", c.P99Limit)},
		{c.Interval >= 10*time.Millisecond && c.Interval <= time.Minute, fmt.Sprintf("Interval %v: want 10ms to 1m", c.Interval)},
		{c.ServerPID >= -1, fmt.Sprintf("ServerPID %d: want -1, 0 or a process id", c.ServerPID)},
	}
	for _, ch := range checks {
		if !ch.ok {
			return errors.New("bench: " + ch.msg)
		}
	}
	if c.Topic == "" {
		c.Topic = sim.DefaultTopic
	}
	for _, f := range c.Fields {
		if _, ok := codec.FieldIndex(f); !ok {
			return fmt.Errorf("bench: unknown field %q: want names of the v1 table (%s)", f, strings.Join(codec.FieldNames[:], ","))
		}
	}
	if len(c.Fields) > 0 && !slices.Contains(c.Fields, "ts") {
		c.Fields = append(slices.Clone(c.Fields), "ts")
	}
	return nil
}

// subOptions returns the SUB options of every connection.
func (c *Config) subOptions() *codec.SubOptions {
	o := codec.DefaultSubOptions()
	o.MaxHz = c.MaxHz
	if len(c.Fields) > 0 {
		o.Fields = 0
		for _, f := range c.Fields {
			i, _ := codec.FieldIndex(f)
			o.Fields |= 1 << uint(i)
		}
	}
	return &o
}

// p99Limit is the p99 a step must stay under: P99Limit plus, with MaxHz,
// the conflation interval that a conflated update waits by design.
func (c *Config) p99Limit() time.Duration {
	if c.MaxHz > 0 {
		return c.P99Limit + time.Duration(float64(time.Second)/c.MaxHz)
	}
	return c.P99Limit
}

// httpClient returns a client of the server's HTTP endpoints (/metrics,
// the snapshot, /readyz), with c.TLSConfig for https:// as its WebSocket
// connections have for wss://.
func (c *Config) httpClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = c.TLSConfig.Clone()
	return &http.Client{Transport: t}
}
