package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
)

const produceUsage = `usage: tickstream produce --brokers HOST:PORT,... [flags]
       tickstream produce --brokers HOST:PORT,... --replay FILE [--speed X] [--skip-bad] [flags]

Feeds a Kafka topic with price updates, keyed by symbol.

Without --replay, runs the market simulator: it first writes the full state of
every symbol, so that each has a snapshot, then --rate updates per second (quote
changes and trades, the most popular symbols the most often) until --duration
has passed or the command is interrupted.

With --replay, writes the updates of a recorded file instead ("-" reads standard
input): JSONL, one JSON object per line in the ingest format ({"sym":"AAPL",
"bid":187.23,...}), or CSV with a header row naming the columns (sym and field
names; an empty cell leaves the field out). The format is detected from the
first line. --speed paces the file by the ts of its records.

Every flag can also be set as TICKSTREAM_<FLAG> (e.g. TICKSTREAM_BROKERS).

flags:
`

// maxRate bounds --rate; far beyond what one producer sustains, it only
// catches typos.
const maxRate = 1e6

func runProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		brokers, topic, format, acks string
		symbols                      int
		rate, speed                  float64
		duration                     time.Duration
		seed                         int64
		replay                       string
		skipBad                      bool
		logFormat, logLevel          string
	)
	fs.StringVar(&brokers, "brokers", "", "Kafka bootstrap `host:port,...` (required)")
	fs.StringVar(&topic, "topic", sim.DefaultTopic, "Kafka `topic` to write to")
	fs.StringVar(&format, "format", "msgpack", "record encoding: msgpack or json")
	fs.StringVar(&acks, "acks", "one", "acknowledgement each write waits for: one (the leader) or all (every in-sync replica)")
	fs.IntVar(&symbols, "symbols", sim.DefaultSymbols, "simulator: number of symbols (real tickers first, then synthetic)")
	fs.Float64Var(&rate, "rate", 2000, "simulator: updates per second")
	fs.DurationVar(&duration, "duration", 0, "simulator: stop after this long (0: until interrupted)")
	fs.Int64Var(&seed, "seed", 1, "simulator: random seed; the same seed gives the same market")
	fs.StringVar(&replay, "replay", "", "write the updates of this JSONL or CSV `file` instead of simulating (- for standard input)")
	fs.Float64Var(&speed, "speed", 1, "replay: 1 paces the file by its ts in real time, 2 twice as fast, 0 as fast as possible")
	fs.BoolVar(&skipBad, "skip-bad", false, "replay: report bad lines and go on, instead of stopping at the first")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, produceUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	cfg := sim.ProducerConfig{Topic: topic}
	var err error
	if cfg.Brokers, err = parseBrokers(brokers); err != nil {
		return err
	}
	if err := validTopic(topic); err != nil {
		return err
	}
	switch format {
	case "msgpack":
		cfg.Format = codec.Binary
	case "json":
		cfg.Format = codec.JSON
	default:
		return fmt.Errorf("--format %q: want msgpack or json", format)
	}
	switch acks {
	case "one":
		cfg.RequiredAcks = kafka.RequireOne
	case "all":
		cfg.RequiredAcks = kafka.RequireAll
	default:
		return fmt.Errorf("--acks %q: want one or all", acks)
	}
	if replay == "" {
		for _, name := range []string{"speed", "skip-bad"} {
			if given[name] {
				return fmt.Errorf("--%s applies only with --replay", name)
			}
		}
		if symbols < 1 || symbols > sim.MaxSymbols {
			return fmt.Errorf("--symbols %d: want 1 to %d", symbols, sim.MaxSymbols)
		}
		if !(rate > 0 && rate <= maxRate) {
			return fmt.Errorf("--rate %v: want a number of updates per second above 0, at most %g", rate, maxRate)
		}
		if duration < 0 {
			return fmt.Errorf("--duration %v: want 0 (until interrupted) or more", duration)
		}
	} else {
		for _, name := range []string{"symbols", "rate", "duration", "seed"} {
			if given[name] {
				return fmt.Errorf("--%s applies only to the simulator, not with --replay", name)
			}
		}
		if !(speed >= 0) || math.IsInf(speed, 0) {
			return fmt.Errorf("--speed %v: want 0 (as fast as possible) or a positive factor", speed)
		}
	}
	if cfg.Logger, err = newLogger(stderr, logFormat, logLevel); err != nil {
		return err
	}

	var in io.Reader
	if replay != "" {
		if replay == "-" {
			in = os.Stdin
		} else {
			f, err := os.Open(replay)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
	}
	p, err := sim.NewProducer(cfg)
	if err != nil {
		return err
	}
	var st sim.Stats
	if replay == "" {
		cfg.Logger.Info("simulating", "brokers", brokers, "topic", topic, "symbols", symbols,
			"rate", rate, "duration", duration, "seed", seed, "format", format)
		st, err = p.Run(ctx, sim.NewMarket(sim.Config{Symbols: symbols, Seed: seed}), rate, duration)
	} else {
		cfg.Logger.Info("replaying", "file", replay, "brokers", brokers, "topic", topic,
			"speed", speed, "format", format)
		st, err = p.Replay(ctx, in, sim.ReplayOptions{Speed: speed, SkipBad: skipBad, Stderr: stderr})
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%s: %w", replay, err)
		}
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintln(stdout, summary(st, replay != "", topic))
	return err
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

// parseBrokers splits a --brokers list and checks each address.
func parseBrokers(list string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		_, port, err := net.SplitHostPort(b)
		if err != nil {
			return nil, fmt.Errorf("--brokers: %q is not host:port", b)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("--brokers: %q has no valid port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("--brokers is required: the Kafka bootstrap host:port,...")
	}
	return out, nil
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
