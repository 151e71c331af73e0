// Package demo is tickstream's demo feed: an in-process Kafka-protocol
// broker (package embedded) fed by the market simulator (package sim), for
// `tickstream serve` without --brokers and for tests that need a feed
// without an external Kafka. A node consumes it like any other broker.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/sim"
)

// Config configures a Feed. Zero values take the defaults noted
// (DefaultConfig).
type Config struct {
	// Topic is the price topic (default "ticks").
	Topic string
	// Partitions of the topic (default 4).
	Partitions int
	// Symbols the simulator quotes (default 500).
	Symbols int
	// Rate is the simulator's updates per second (default 2000).
	Rate float64
	// Seed of the simulated market (default 1).
	Seed int64
	// Duration stops the simulator after this long (0: never); the broker
	// goes on serving the log.
	Duration time.Duration
}

// DefaultConfig returns the feed's default settings, those a zero field
// of Config takes.
func DefaultConfig() Config {
	return Config{Topic: "ticks", Partitions: 4, Symbols: 500, Rate: 2000, Seed: 1}
}

// Validate reports the first setting out of range, as a
// config.FieldError naming it. It checks the values as given: Start fills
// the zero fields from DefaultConfig first.
func (c Config) Validate() error {
	return config.First(
		config.Check(c.Topic != "", "Topic", c.Topic, "a topic name"),
		config.Check(c.Partitions >= 1 && c.Partitions <= 1024, "Partitions", c.Partitions, "1 to 1024"),
		config.Check(c.Symbols >= 1 && c.Symbols <= 1_000_000, "Symbols", c.Symbols, "1 to 1000000"),
		config.Check(c.Rate > 0, "Rate", c.Rate, "more than 0"),
		config.Check(c.Duration >= 0, "Duration", c.Duration, "0 or more"),
	)
}

// Feed is a running embedded broker with its topic; Run feeds it.
type Feed struct {
	cfg    Config
	broker *embedded.Broker
}

// Start starts the broker on a loopback port with the topic created. Zero
// fields of cfg take their DefaultConfig value; Start refuses a Config
// that Validate refuses then.
func Start(cfg Config) (*Feed, error) {
	config.FillZero(&cfg, DefaultConfig())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	b, err := embedded.Start(cfg.Topic, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	return &Feed{cfg: cfg, broker: b}, nil
}

// Brokers returns the broker's address, for the node to consume.
func (f *Feed) Brokers() []string { return f.broker.Addrs() }

// Run produces the simulated market to the topic until ctx ends or
// Duration has passed; it returns nil then.
func (f *Feed) Run(ctx context.Context) error {
	market := sim.NewMarket(sim.Config{Symbols: f.cfg.Symbols, Seed: f.cfg.Seed})
	p, err := sim.NewProducer(sim.ProducerConfig{Brokers: f.broker.Addrs(), Topic: f.cfg.Topic})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer p.Close()
	if _, err := p.Run(ctx, market, f.cfg.Rate, f.cfg.Duration); err != nil && ctx.Err() == nil {
		return fmt.Errorf("simulator: %w", err)
	}
	return nil
}

// SetDown switches a simulated outage on or off: while it is on, the
// broker drops every request's connection, as a broker that went away.
func (f *Feed) SetDown(down bool) { f.broker.SetDown(down) }

// Down reports whether the simulated outage is on.
func (f *Feed) Down() bool { return f.broker.Down() }

// Close stops the broker. Stop Run first.
func (f *Feed) Close() { f.broker.Close() }
