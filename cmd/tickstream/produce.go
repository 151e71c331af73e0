package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
)

const produceUsage = `usage: tickstream produce --brokers HOST:PORT,... [flags]
       tickstream produce --brokers HOST:PORT,... --replay FILE [--speed X] [--skip-bad] [flags]

Feeds a Kafka topic with price updates, keyed by symbol.

First it makes sure --topic exists: a missing topic is created with
--partitions and --replication-factor, and the log says so; a cluster that
refuses to create it stops the command at once with what to do. While no
broker answers, it retries.

Without --replay, runs the market simulator: it first writes the full state of
every symbol, so that each has a snapshot, then --rate updates per second (quote
changes and trades, the most popular symbols the most often) until --duration
has passed or the command is interrupted.

With --replay, writes the updates of a recorded file instead ("-" reads standard
input): JSONL, one JSON object per line in the ingest format ({"sym":"AAPL",
"bid":187.23,...}), or CSV with a header row naming the columns (sym and field
names; an empty cell leaves the field out). The format is detected from the
first line. --speed paces the file by the ts of its records.

Failed writes are retried (a broker outage slows the run down), for at most
--duration. The exit status is 1 when not a single record was written.

Every flag can also be set as TICKSTREAM_<FLAG> (e.g. TICKSTREAM_BROKERS).

flags:
`

// maxRate bounds --rate; far beyond what one producer sustains, it only
// catches typos.
const maxRate = 1e6

// produceOptions are the settings of produce, checked.
type produceOptions struct {
	cfg      sim.ProducerConfig
	topic    sim.TopicSpec
	symbols  int
	rate     float64
	duration time.Duration
	seed     int64
	replay   string
	speed    float64
	skipBad  bool
	format   string
}

// parseProduce reads and checks the command line of produce.
func parseProduce(args []string, stdout, stderr io.Writer) (*produceOptions, error) {
	fs := newFlagSet("produce", stdout, produceUsage)
	var (
		o                   produceOptions
		kf                  kafkaFlags
		topic, acks         string
		logFormat, logLevel string
	)
	kf.register(fs, "Kafka bootstrap `host:port,...` (required)")
	fs.StringVar(&topic, "topic", sim.DefaultTopic, "Kafka `topic` to write to")
	fs.IntVar(&o.topic.Partitions, "partitions", 4, "partitions of --topic if produce creates it (-1: the brokers' num.partitions)")
	fs.IntVar(&o.topic.ReplicationFactor, "replication-factor", sim.BrokerDefault, "replicas of each partition of --topic if produce creates it (-1: the brokers' default.replication.factor)")
	fs.StringVar(&o.format, "format", "msgpack", "record encoding: msgpack or json")
	fs.StringVar(&acks, "acks", "one", "acknowledgement each write waits for: one (the leader) or all (every in-sync replica)")
	fs.IntVar(&o.symbols, "symbols", sim.DefaultSymbols, "simulator: number of symbols (real tickers first, then synthetic)")
	fs.Float64Var(&o.rate, "rate", 2000, "simulator: updates per second")
	fs.DurationVar(&o.duration, "duration", 0, "simulator: stop after this long, e.g. 30s or 5m, retries included (0: until interrupted)")
	fs.Int64Var(&o.seed, "seed", 1, "simulator: random seed; the same seed gives the same market")
	fs.StringVar(&o.replay, "replay", "", "write the updates of this JSONL or CSV `file` instead of simulating (- for standard input)")
	fs.Float64Var(&o.speed, "speed", 1, "replay: 1 paces the file by its ts in real time, 2 twice as fast, 0 as fast as possible")
	fs.BoolVar(&o.skipBad, "skip-bad", false, "replay: report bad lines and go on, instead of stopping at the first")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	o.cfg.Topic = topic
	var err error
	if o.cfg.Brokers, err = kf.list(true); err != nil {
		return nil, badUsage(err)
	}
	if err := validTopic(topic); err != nil {
		return nil, badUsage(err)
	}
	if p := o.topic.Partitions; p < 1 && p != sim.BrokerDefault || p > 100_000 {
		return nil, usagef("--partitions %d: want 1 to 100000, or -1 for the brokers' default", p)
	}
	if r := o.topic.ReplicationFactor; r < 1 && r != sim.BrokerDefault || r > 32767 {
		return nil, usagef("--replication-factor %d: want 1 or more, or -1 for the brokers' default", r)
	}
	switch o.format {
	case "msgpack":
		o.cfg.Format = codec.Binary
	case "json":
		o.cfg.Format = codec.JSON
	default:
		return nil, usagef("--format %q: want msgpack or json", o.format)
	}
	switch acks {
	case "one":
		o.cfg.RequiredAcks = kafka.RequireOne
	case "all":
		o.cfg.RequiredAcks = kafka.RequireAll
	default:
		return nil, usagef("--acks %q: want one or all", acks)
	}
	if o.replay == "" {
		for _, name := range []string{"speed", "skip-bad"} {
			if given[name] {
				return nil, usagef("--%s applies only with --replay", name)
			}
		}
		if o.symbols < 1 || o.symbols > sim.MaxSymbols {
			return nil, usagef("--symbols %d: want 1 to %d", o.symbols, sim.MaxSymbols)
		}
		if !(o.rate > 0 && o.rate <= maxRate) {
			return nil, usagef("--rate %v: want a number of updates per second above 0, at most %g", o.rate, maxRate)
		}
		if o.duration < 0 {
			return nil, usagef("--duration %v: want 0 (until interrupted) or more", o.duration)
		}
	} else {
		for _, name := range []string{"symbols", "rate", "duration", "seed"} {
			if given[name] {
				return nil, usagef("--%s applies only to the simulator, not with --replay", name)
			}
		}
		if !(o.speed >= 0) || math.IsInf(o.speed, 0) {
			return nil, usagef("--speed %v: want 0 (as fast as possible) or a positive factor", o.speed)
		}
	}
	if o.cfg.Logger, err = newLogger(stderr, logFormat, logLevel); err != nil {
		return nil, badUsage(err)
	}
	if o.cfg.Transport, err = kf.transport(); err != nil {
		return nil, badUsage(err)
	}
	return &o, nil
}

func runProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	o, err := parseProduce(args, stdout, stderr)
	if err != nil {
		return err
	}
	defer o.cfg.Transport.CloseIdleConnections()
	log := o.cfg.Logger
	var in io.Reader
	if o.replay != "" {
		if o.replay == "-" {
			in = os.Stdin
		} else {
			f, err := os.Open(o.replay)
			if err != nil {
				return badUsage(fmt.Errorf("--replay: %w", err))
			}
			defer f.Close()
			in = f
		}
	}
	p, err := sim.NewProducer(o.cfg)
	if err != nil {
		return err
	}
	defer p.Close()

	// --duration counts from the start: waiting for a broker is part of it.
	runCtx := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if err := ensureTopic(runCtx, p, o, log); err != nil {
		return err
	}

	var st sim.Stats
	if o.replay == "" {
		log.Info("simulating", "brokers", strings.Join(o.cfg.Brokers, ","), "topic", o.cfg.Topic, "symbols", o.symbols,
			"rate", o.rate, "duration", o.duration, "seed", o.seed, "format", o.format)
		var left time.Duration
		if o.duration > 0 {
			if left = o.duration - time.Since(start); left <= 0 {
				left = time.Millisecond
			}
		}
		st, err = p.Run(ctx, sim.NewMarket(sim.Config{Symbols: o.symbols, Seed: o.seed}), o.rate, left)
	} else {
		log.Info("replaying", "file", o.replay, "brokers", strings.Join(o.cfg.Brokers, ","), "topic", o.cfg.Topic,
			"speed", o.speed, "format", o.format)
		st, err = p.Replay(ctx, in, sim.ReplayOptions{Speed: o.speed, SkipBad: o.skipBad, Stderr: stderr})
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%s: %w", o.replay, err)
		}
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintln(stdout, summary(st, o.replay != "", o.cfg.Topic))
	if err == nil && st.Records == 0 {
		err = nothingWritten(ctx, st)
	}
	return err
}

// ensureTopic makes sure the topic exists (sim.Producer.EnsureTopic) and
// says what it found or made; a refusal says what to do.
func ensureTopic(ctx context.Context, p *sim.Producer, o *produceOptions, log *slog.Logger) error {
	info, err := p.EnsureTopic(ctx, o.topic)
	var te *sim.TopicError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("%w; create the topic with the cluster's tools (kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions N --replication-factor N), "+
			"or give produce credentials that may, or other --partitions and --replication-factor",
			err, o.cfg.Brokers[0], o.cfg.Topic)
	case err != nil:
		return fmt.Errorf("nothing was written: %w", err)
	case info.Created:
		log.Info("created the topic (produce --partitions and --replication-factor)", "topic", o.cfg.Topic,
			"partitions", info.Partitions, "replication_factor", info.ReplicationFactor)
	default:
		log.Info("topic exists", "topic", o.cfg.Topic, "partitions", info.Partitions, "replication_factor", info.ReplicationFactor)
	}
	return nil
}

// nothingWritten is the error of a run that wrote no record: its exit
// status must tell a script that the topic got nothing.
func nothingWritten(ctx context.Context, st sim.Stats) error {
	switch {
	case st.LastError != nil:
		return fmt.Errorf("nothing was written: %d write attempts failed, the last with: %w", st.Errors, st.LastError)
	case ctx.Err() != nil:
		return errors.New("nothing was written: interrupted before the first write")
	}
	return errors.New("nothing was written: the input has no records")
}

// summary is the last line of a run: what was written, how fast, and what
// went wrong along the way.
func summary(st sim.Stats, replayed bool, topic string) string {
	verb := "produced"
	if replayed {
		verb = "replayed"
	}
	s := fmt.Sprintf("%s %d records (%s) to %s in %v: %.0f records/s, %d write errors retried",
		verb, st.Records, formatBytes(st.Bytes), topic, st.Elapsed.Round(time.Millisecond), st.Rate(), st.Errors)
	if replayed {
		s += fmt.Sprintf(", %d bad lines skipped", st.Skipped)
	}
	return s
}

func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, prefix := float64(n)/unit, "kMGTPE"
	for v >= unit && len(prefix) > 1 {
		v /= unit
		prefix = prefix[1:]
	}
	return fmt.Sprintf("%.1f %cB", v, prefix[0])
}

// validTopic applies Kafka's rules for topic names, so that a typo is
// refused here rather than retried forever against the broker.
func validTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("--topic %q: want 1 to 249 characters, not . or ..", t)
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("--topic %q: want only letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}
