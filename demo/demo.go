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
	// History is the past that WriteHistory gives the market (0: none):
	// updates stamped over [now-History, now), Rate per second of it but
	// at most MaxHistoryUpdates, so that a node reading the topic starts
	// with bars of that span (a dashboard's sparklines have a day's shape).
	History time.Duration
}

// MaxHistoryUpdates bounds the updates of Config.History: 200 000 write in
// about a second and give the most active symbols a bar every minute of a
// day; quieter symbols get sparser bars, as on a real market.
const MaxHistoryUpdates = 200_000

// MaxHistory bounds Config.History: a week.
const MaxHistory = 7 * 24 * time.Hour

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
		config.Check(c.History >= 0 && c.History <= MaxHistory, "History", c.History, "0 to 168h"),
	)
}

// Feed is a running embedded broker with its topic; Run feeds it.
type Feed struct {
	cfg    Config
	broker *embedded.Broker
	// market is the simulated market, the same for WriteHistory and Run:
	// the live run goes on from where the history left each price.
	market *sim.Market
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
	return &Feed{cfg: cfg, broker: b, market: sim.NewMarket(sim.Config{Symbols: cfg.Symbols, Seed: cfg.Seed})}, nil
}

// Brokers returns the broker's address, for the node to consume.
func (f *Feed) Brokers() []string { return f.broker.Addrs() }

// Run produces the simulated market to the topic until ctx ends or
// Duration has passed; it returns nil then.
func (f *Feed) Run(ctx context.Context) error {
	p, err := sim.NewProducer(sim.ProducerConfig{Brokers: f.broker.Addrs(), Topic: f.cfg.Topic})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer p.Close()
	if _, err := p.Run(ctx, f.market, f.cfg.Rate, f.cfg.Duration); err != nil && ctx.Err() == nil {
		return fmt.Errorf("simulator: %w", err)
	}
	return nil
}

// WriteHistory writes the market's past of Config.History (nothing when it
// is 0), ending now, before Run: call it before the node starts, so that the
// node is ready only once it has read the history. It returns the number of
// updates written.
func (f *Feed) WriteHistory(ctx context.Context) (int64, error) {
	if f.cfg.History <= 0 {
		return 0, nil
	}
	p, err := sim.NewProducer(sim.ProducerConfig{Brokers: f.broker.Addrs(), Topic: f.cfg.Topic})
	if err != nil {
		return 0, fmt.Errorf("simulator history: %w", err)
	}
	defer p.Close()
	n := int(min(f.cfg.Rate*f.cfg.History.Seconds(), MaxHistoryUpdates))
	now := time.Now()
	st, err := p.History(ctx, f.market, now.Add(-f.cfg.History), now, max(n, 1))
	if err != nil {
		return st.Records, fmt.Errorf("simulator history: %w", err)
	}
	return st.Records, nil
}

// SetDown switches a simulated outage on or off: while it is on, the
// broker drops every request's connection, as a broker that went away.
func (f *Feed) SetDown(down bool) { f.broker.SetDown(down) }

// Down reports whether the simulated outage is on.
func (f *Feed) Down() bool { return f.broker.Down() }

// Close stops the broker. Stop Run first.
func (f *Feed) Close() { f.broker.Close() }
