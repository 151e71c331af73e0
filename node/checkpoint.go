package node

import (
	"context"
	"errors"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/checkpoint"
	"github.com/tickstream/tickstream/snapshot"
)

// checkpointStats are the outcomes of checkpoint writes, for metrics.
type checkpointStats struct {
	lastSaved atomic.Int64  // unix ns of the last checkpoint written, or 0
	failures  atomic.Uint64 // checkpoints that could not be written
}

// CheckpointStats are the outcomes of the node's checkpoint writes.
type CheckpointStats struct {
	LastSaved time.Time // when the last checkpoint was taken; zero before the first
	Failures  uint64    // checkpoints that could not be written
}

// CheckpointStats returns the outcomes of the checkpoint writes so far.
func (n *Node) CheckpointStats() CheckpointStats {
	var s CheckpointStats
	if ns := n.ckpt.lastSaved.Load(); ns != 0 {
		s.LastSaved = time.Unix(0, ns)
	}
	s.Failures = n.ckpt.failures.Load()
	return s
}

// restore loads the checkpoint into the store and returns its offsets. A
// checkpoint that is missing, corrupt or of another topic leaves the store
// empty: ingest then starts cold.
func (n *Node) restore() map[int]int64 {
	path := n.cfg.Checkpoint
	if path == "" {
		return nil
	}
	if removed, err := checkpoint.RemoveTemp(path); err != nil {
		n.log.Warn("checkpoint: cannot remove the temporary files of an interrupted write", "file", path, "err", err)
	} else if len(removed) > 0 {
		n.log.Info("checkpoint: removed the temporary files of an interrupted write", "files", removed)
	}
	cp, err := checkpoint.ReadFile(path, n.cfg.Topic)
	switch {
	case errors.Is(err, os.ErrNotExist):
		n.log.Info("checkpoint: none yet: cold start from the earliest offset", "file", path)
		return nil
	case err != nil:
		n.log.Error("checkpoint refused: cold start from the earliest offset", "file", path, "err", err)
		return nil
	}
	if len(cp.Symbols) > n.cfg.MaxSymbols {
		n.log.Error("checkpoint refused: it holds more symbols than the store may: cold start from the earliest offset",
			"file", path, "symbols", len(cp.Symbols), "max_symbols", n.cfg.MaxSymbols)
		return nil
	}
	withBars := 0
	for _, sym := range cp.Symbols {
		n.store.Restore([]byte(sym.Name), *sym.State)
		if n.bars == nil || sym.Bars == nil {
			continue
		}
		if restored := n.store.Lookup([]byte(sym.Name)); restored != nil {
			n.bars.Restore(restored, sym.State.Seq, cp.BarLens, *sym.Bars)
			withBars++
		}
	}
	if n.bars != nil && withBars == 0 && len(cp.Symbols) > 0 {
		n.log.Warn("checkpoint: it holds no bars (written by a version without bars, or with --bars off): bars start empty; start once with --start -24h (no checkpoint) to rebuild them from the log",
			"file", path)
	}
	n.log.Info("checkpoint: warm start", "file", path, "symbols", len(cp.Symbols), "symbols_with_bars", withBars,
		"partitions", len(cp.Offsets), "age", time.Since(cp.Created).Round(time.Millisecond))
	return cp.Offsets
}

// runCheckpointed runs the consumer until ctx ends, saving a checkpoint
// every interval and a last one once ingest has stopped.
func (n *Node) runCheckpointed(ctx context.Context) error {
	var saved map[int]int64
	save := func() {
		cp, err := n.saveCheckpoint(saved)
		if err != nil {
			n.ckpt.failures.Add(1)
			n.log.Error("checkpoint: not saved", "file", n.cfg.Checkpoint, "err", err)
			return
		}
		if cp != nil {
			saved = cp.Offsets
			n.ckpt.lastSaved.Store(cp.Created.UnixNano())
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(n.cfg.CheckpointInterval)
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
	err := n.consumer.Run(ctx)
	close(stop)
	wg.Wait()
	save()
	return err
}

// symbolMark is the bars' mark of the symbol at index i of a checkpoint's
// Symbols.
type symbolMark struct {
	i    int
	mark bars.Mark
}

// saveCheckpoint writes a checkpoint unless the offsets are still those of
// the last one (nothing was read since), in which case it returns nil.
func (n *Node) saveCheckpoint(last map[int]int64) (*checkpoint.Checkpoint, error) {
	cp := &checkpoint.Checkpoint{Topic: n.cfg.Topic, Symbols: make([]checkpoint.Symbol, 0, n.store.Len())}
	unchanged := false
	// States are immutable and bars but the newest final: collecting the
	// pointers and marking the bars (bars.Store.Mark) is all that needs the
	// appliers paused; copying the bars, encoding and writing happen after.
	// The marks go into a slice sized before the pause: a map would hash
	// and grow while the appliers wait.
	var marks []symbolMark
	if n.bars != nil {
		cp.BarLens = n.bars.Lens()
		marks = make([]symbolMark, 0, cap(cp.Symbols))
	}
	n.consumer.Quiesce(func(offsets map[int]int64) {
		cp.Created = time.Now()
		cp.Offsets = offsets
		if unchanged = last != nil && maps.Equal(offsets, last); unchanged {
			return
		}
		n.store.Range(func(sym *snapshot.Symbol) bool {
			if st := sym.Load(); st.Seq > 0 {
				if n.bars != nil {
					if m, ok := n.bars.Mark(sym); ok {
						marks = append(marks, symbolMark{i: len(cp.Symbols), mark: m})
					}
				}
				cp.Symbols = append(cp.Symbols, checkpoint.Symbol{Name: sym.Name, State: st})
			}
			return true
		})
	})
	if unchanged {
		return nil, nil
	}
	for _, sm := range marks {
		sr := n.bars.Copy(sm.mark)
		cp.Symbols[sm.i].Bars = &sr
	}
	if err := checkpoint.WriteFile(n.cfg.Checkpoint, cp); err != nil {
		return nil, err
	}
	n.log.Debug("checkpoint: saved", "file", n.cfg.Checkpoint, "symbols", len(cp.Symbols), "partitions", len(cp.Offsets))
	return cp, nil
}
