package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/checkpoint"
	"github.com/tickstream/tickstream/ingest"
	"github.com/tickstream/tickstream/snapshot"
)

// StartCheckpoint is the start position that resumes from the checkpoint
// file, and starts cold from the earliest offset when there is none or it
// is refused.
const StartCheckpoint = "checkpoint"

// checkpointStats are the outcomes of checkpoint writes, for metrics.
type checkpointStats struct {
	lastSaved atomic.Int64  // unix ns of the last checkpoint written, or 0
	failures  atomic.Uint64 // checkpoints that could not be written
}

// ValidStart reports whether start is a start position Config accepts.
func ValidStart(start string) error {
	if start == StartCheckpoint {
		return nil
	}
	_, err := ingest.ParseStart(start)
	return err
}

// newConsumer builds the Kafka consumer. With the default start position it
// first restores the store from the checkpoint, so that every partition
// resumes right after the last record the checkpoint holds.
func (s *Server) newConsumer(brokers []string) (*ingest.Consumer, error) {
	if s.cfg.Start == "" {
		s.cfg.Start = StartCheckpoint
	}
	if s.cfg.CheckpointInterval <= 0 {
		s.cfg.CheckpointInterval = 10 * time.Second
	}
	if err := ValidStart(s.cfg.Start); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	dialer, err := s.cfg.Kafka.Dialer(5 * time.Second)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	cfg := ingest.Config{
		Brokers:  brokers,
		Topic:    s.cfg.Topic,
		Start:    s.cfg.Start,
		Dialer:   dialer,
		Logger:   s.log,
		OnStatus: s.hub.SetStatus,
	}
	if s.cfg.Start == StartCheckpoint {
		cfg.Start = ingest.StartEarliest
		cfg.Resume = s.restore()
	}
	return ingest.New(cfg, s.store)
}

// restore loads the checkpoint into the store and returns its offsets. A
// checkpoint that is missing, corrupt or of another topic leaves the store
// empty: ingest then starts cold.
func (s *Server) restore() map[int]int64 {
	path := s.cfg.Checkpoint
	if path == "" {
		return nil
	}
	if removed, err := checkpoint.RemoveTemp(path); err != nil {
		s.log.Warn("checkpoint: cannot remove the temporary files of an interrupted write", "file", path, "err", err)
	} else if len(removed) > 0 {
		s.log.Info("checkpoint: removed the temporary files of an interrupted write", "files", removed)
	}
	cp, err := checkpoint.ReadFile(path, s.cfg.Topic)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.log.Info("checkpoint: none yet: cold start from the earliest offset", "file", path)
		return nil
	case err != nil:
		s.log.Error("checkpoint refused: cold start from the earliest offset", "file", path, "err", err)
		return nil
	}
	if len(cp.Symbols) > s.cfg.MaxSymbols {
		s.log.Error("checkpoint refused: it holds more symbols than the store may: cold start from the earliest offset",
			"file", path, "symbols", len(cp.Symbols), "max_symbols", s.cfg.MaxSymbols)
		return nil
	}
	for _, sym := range cp.Symbols {
		s.store.Restore([]byte(sym.Name), *sym.State)
	}
	s.log.Info("checkpoint: warm start", "file", path, "symbols", len(cp.Symbols),
		"partitions", len(cp.Offsets), "age", time.Since(cp.Created).Round(time.Millisecond))
	return cp.Offsets
}

// runIngest runs the consumer until ctx ends and, when a checkpoint file is
// configured, saves a checkpoint every interval and a last one once ingest
// has stopped.
func (s *Server) runIngest(ctx context.Context) error {
	if s.cfg.Checkpoint == "" {
		return s.consumer.Run(ctx)
	}
	var saved map[int]int64
	save := func() {
		cp, err := s.saveCheckpoint(saved)
		if err != nil {
			s.ckpt.failures.Add(1)
			s.log.Error("checkpoint: not saved", "file", s.cfg.Checkpoint, "err", err)
			return
		}
		if cp != nil {
			saved = cp.Offsets
			s.ckpt.lastSaved.Store(cp.Created.UnixNano())
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(s.cfg.CheckpointInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				save()
			}
		}
	}()
	err := s.consumer.Run(ctx)
	close(stop)
	wg.Wait()
	save()
	return err
}

// saveCheckpoint writes a checkpoint unless the offsets are still those of
// the last one (nothing was read since), in which case it returns nil.
func (s *Server) saveCheckpoint(last map[int]int64) (*checkpoint.Checkpoint, error) {
	cp := &checkpoint.Checkpoint{Topic: s.cfg.Topic, Symbols: make([]checkpoint.Symbol, 0, s.store.Len())}
	unchanged := false
	// States are immutable: collecting the pointers is all that needs the
	// appliers paused; encoding and writing happen after.
	s.consumer.Quiesce(func(offsets map[int]int64) {
		cp.Created = time.Now()
		cp.Offsets = offsets
		if unchanged = last != nil && maps.Equal(offsets, last); unchanged {
			return
		}
		s.store.Range(func(sym *snapshot.Symbol) bool {
			if st := sym.Load(); st.Seq > 0 {
				cp.Symbols = append(cp.Symbols, checkpoint.Symbol{Name: sym.Name, State: st})
			}
			return true
		})
	})
	if unchanged {
		return nil, nil
	}
	if err := checkpoint.WriteFile(s.cfg.Checkpoint, cp); err != nil {
		return nil, err
	}
	s.log.Debug("checkpoint: saved", "file", s.cfg.Checkpoint, "symbols", len(cp.Symbols), "partitions", len(cp.Offsets))
	return cp, nil
}
