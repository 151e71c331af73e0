// Package node is one tickstream node without its edge: it owns the
// snapshot store, the fanout hub, the Kafka consumer and the checkpointer,
// and wires them into a one-way pipeline — ingest hands each record's
// update to the store (ingest.Applier), the store tells the hub of each
// change (snapshot.Observer), the hub writes to its clients' transports.
// Package server serves a node over HTTP and WebSocket.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/ingest"
	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/snapshot"
)

// StartCheckpoint is the start position that resumes from the checkpoint
// file, and starts cold from the earliest offset when there is none or it
// is refused.
const StartCheckpoint = "checkpoint"

// validStart reports whether start is a start position Config accepts.
func validStart(start string) error {
	if start == StartCheckpoint {
		return nil
	}
	_, err := ingest.ParseStart(start)
	return err
}

// Config configures a Node. Brokers are required; zero values of the
// others take the defaults noted (DefaultConfig).
type Config struct {
	// Brokers are the Kafka brokers to consume.
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
	// Fanout tunes the engine (limits, heartbeat, server id).
	Fanout fanout.Config
	// Bars sets the bar intervals, their retention and the memory bound
	// of all bars (bars.DefaultConfig; its Logger defaults to Logger).
	Bars bars.Config
	// BarsOff builds no bars: Node.Bars returns nil.
	BarsOff bool
	// Logger receives the node's logs (default slog.Default()).
	Logger *slog.Logger
}

// DefaultConfig returns the node's default settings, those a zero field
// of Config takes (the engine's are fanout.DefaultConfig).
func DefaultConfig() Config {
	return Config{
		Topic:              "ticks",
		Start:              StartCheckpoint,
		CheckpointInterval: 10 * time.Second,
		MaxSymbols:         1_000_000,
		MaxReserved:        100_000,
		Fanout:             fanout.DefaultConfig(),
		Bars:               bars.DefaultConfig(),
		Logger:             slog.Default(),
	}
}

// Validate reports the first setting out of range, as a
// config.FieldError naming it (Fanout.HardLimit for the engine's). It
// checks the values as given: New fills the zero fields from DefaultConfig
// first.
func (c Config) Validate() error {
	return config.First(
		config.Check(len(c.Brokers) > 0, "Brokers", c.Brokers, "at least one host:port"),
		config.Check(c.Topic != "", "Topic", c.Topic, "a topic name"),
		config.Check(validStart(c.Start) == nil, "Start", c.Start, StartCheckpoint+", "+ingest.StartEarliest+", "+ingest.StartLatest+" or a negative duration such as -1h"),
		config.Check(c.CheckpointInterval > 0, "CheckpointInterval", c.CheckpointInterval, "more than 0"),
		config.Check(c.MaxSymbols > 0, "MaxSymbols", c.MaxSymbols, "at least 1"),
		config.Check(c.MaxReserved > 0, "MaxReserved", c.MaxReserved, "at least 1"),
		config.Within("Fanout", c.Fanout.Validate()),
		config.Within("Bars", c.barsValidate()),
	)
}

// barsValidate validates the bars' settings when bars are on.
func (c Config) barsValidate() error {
	if c.BarsOff {
		return nil
	}
	return c.Bars.Validate()
}

// Node is a running pipeline: Kafka → ingest → store → bars → hub.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    *snapshot.Store
	bars     *bars.Store // nil when bars are off
	hub      *fanout.Hub
	consumer *ingest.Consumer
	ckpt     checkpointStats
}

// New builds a node: the store, the bars as its observer and the hub as
// theirs (the hub as the store's when bars are off), the store
// restored from the checkpoint when Start is StartCheckpoint, and the
// consumer that feeds the store. Run consumes; Close closes the clients.
// Zero fields of cfg take their DefaultConfig value; New refuses a Config
// that Validate refuses then.
func New(cfg Config) (*Node, error) {
	if cfg.Bars.Logger == nil {
		cfg.Bars.Logger = cfg.Logger
	}
	config.FillZero(&cfg, DefaultConfig())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	dialer, err := cfg.Kafka.Dialer(5 * time.Second)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	n.store = snapshot.New(snapshot.WithMaxSymbols(cfg.MaxSymbols), snapshot.WithMaxReserved(cfg.MaxReserved))
	if !cfg.BarsOff {
		if n.bars, err = bars.New(cfg.Bars); err != nil {
			return nil, err
		}
	}
	if n.bars != nil {
		cfg.Fanout.Bars = n.bars // left nil when off (not a nil *bars.Store): SUBs for bars are refused
	}
	if n.hub, err = fanout.NewHub(n.store, cfg.Fanout); err != nil {
		return nil, err
	}
	if n.bars != nil {
		// Between the store and the hub, so that the hub's reads of the
		// bars in Publish see the change it publishes.
		n.bars.SetObserver(n.hub)
		n.store.SetObserver(n.bars)
	}
	icfg := ingest.Config{
		Brokers:  cfg.Brokers,
		Topic:    cfg.Topic,
		Start:    cfg.Start,
		Dialer:   dialer,
		Logger:   cfg.Logger,
		OnStatus: n.feedStatus,
	}
	if cfg.Start == StartCheckpoint {
		icfg.Start = ingest.StartEarliest
		icfg.Resume = n.restore()
	}
	if n.consumer, err = ingest.New(icfg, n.store); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Config returns the node's configuration with its defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Store returns the node's snapshot store.
func (n *Node) Store() *snapshot.Store { return n.store }

// Bars returns the node's bars, or nil when they are off.
func (n *Node) Bars() *bars.Store { return n.bars }

// Hub returns the node's fanout engine.
func (n *Node) Hub() *fanout.Hub { return n.hub }

// Ingest returns the node's Kafka consumer.
func (n *Node) Ingest() *ingest.Consumer { return n.consumer }

// Run consumes until ctx ends and, when a checkpoint file is configured,
// saves a checkpoint every interval and a last one once ingest has
// stopped. The hub goes on serving what the store holds until Close.
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.Checkpoint == "" {
		return n.consumer.Run(ctx)
	}
	return n.runCheckpointed(ctx)
}

// Close stops the hub's heartbeats and closes every client with 1001.
// Call it once the edge has stopped accepting connections.
func (n *Node) Close() {
	n.hub.Close(codec.CloseGoingAway, "server shutting down")
}

// statusWords are the protocol's words (STATUS) for the feed states of
// ingest, which knows nothing of the protocol.
var statusWords = [...]string{
	ingest.FeedLive:       codec.StatusLive,
	ingest.FeedStale:      codec.StatusStale,
	ingest.FeedRecovering: codec.StatusRecovering,
}

// feedStatus tells the hub, and so every client, of a change of the feed.
func (n *Node) feedStatus(state ingest.FeedState, detail string) {
	n.hub.SetStatus(statusWords[state], detail)
}
