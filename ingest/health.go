package ingest

import (
	"fmt"
	"sort"
	"time"
)

// health is the feed's state machine, run once a second by Run's goroutine:
//
//	live ──(a partition shows no sign of a working broker for StaleAfter)──▶ stale
//	stale ──(every partition answers again)──▶ recovering
//	recovering ──(every partition answered since, and is at the end of its log)──▶ live
//	recovering ──(a partition stops answering)──▶ stale
//	live ──(a partition's log was found truncated or recreated)──▶ recovering
//
// After an outage the feed always passes through recovering: until every
// partition has fetched again, ingest cannot know that it is at the end of
// the log, and /readyz follows the state.
type health struct {
	outageStart  time.Time // when the feed went stale
	recoverStart time.Time // when the brokers answered again, or a rebuild began
	afterOutage  bool      // recovering from an outage rather than a rebuild
	pending      *rebuildNotice
}

// rebuildNotice tells the state machine that a partition found its log
// truncated or recreated and is rebuilding.
type rebuildNotice struct {
	detail string
}

// noteRebuild puts the feed in recovering with detail, until ingest has
// caught up (or after the outage, if the brokers are down).
func (c *Consumer) noteRebuild(detail string) {
	c.rebuildMu.Lock()
	c.rebuild = &rebuildNotice{detail}
	c.rebuildMu.Unlock()
}

// peekRebuild returns the rebuild noticed since the last check, which stays
// pending (Live is false) until clearRebuild.
func (c *Consumer) peekRebuild() *rebuildNotice {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	return c.rebuild
}

func (c *Consumer) clearRebuild(n *rebuildNotice) {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	if c.rebuild == n {
		c.rebuild = nil
	}
}

// checkHealth moves the feed's state machine (see health) and tells
// OnStatus when the state changes.
func (c *Consumer) checkHealth(now time.Time) {
	h := &c.health
	c.mu.Lock()
	var dead []int
	var lag int64
	behind := 0
	for _, p := range c.parts {
		// A fetch that did not fail is a sign of a working broker even
		// when it brings no record (an idle partition); Fetches counts
		// failed attempts too, and Errors the failed ones.
		if st := p.reader.Stats(); st.Messages > 0 || st.Fetches > st.Errors {
			p.alive.Store(now.UnixNano())
		}
		alive := time.Unix(0, p.alive.Load())
		if now.Sub(alive) > c.cfg.StaleAfter {
			dead = append(dead, p.id)
		}
		l := max(0, p.hwm.Load()-p.next.Load())
		lag += l
		if l > 0 || !alive.After(h.recoverStart) {
			behind++
		}
	}
	unreachable := len(c.parts) == 0 && now.Sub(c.metaAlive) > c.cfg.StaleAfter
	c.mu.Unlock()
	sort.Ints(dead)

	if n := c.peekRebuild(); n != nil {
		h.pending = n
		// Once the state below is stored, h.pending carries it.
		defer c.clearRebuild(n)
	}
	prev := c.State()
	state, detail := prev, ""
	switch {
	case len(dead) > 0 || unreachable:
		if prev == FeedStale {
			return
		}
		state = FeedStale
		h.outageStart = now
		c.outages.Add(1)
		detail = fmt.Sprintf("no answer from the brokers for partitions %v of %s", dead, c.cfg.Topic)
		if unreachable {
			detail = fmt.Sprintf("cannot list the partitions of %s", c.cfg.Topic)
		}
		c.log.Warn("ingest: feed stale", "partitions", dead, "detail", detail)
	case prev == FeedStale:
		state = FeedRecovering
		h.recoverStart, h.afterOutage = now, true
		c.outage.Store(int64(now.Sub(h.outageStart)))
		detail = fmt.Sprintf("the brokers answer again after %v; ingest is catching up with the log of %s", now.Sub(h.outageStart).Round(time.Second), c.cfg.Topic)
		if h.pending != nil {
			detail, h.pending = h.pending.detail, nil
		}
		c.log.Info("ingest: feed recovering", "outage", now.Sub(h.outageStart).Round(time.Millisecond), "lag", lag)
	case h.pending != nil:
		state = FeedRecovering
		detail, h.pending = h.pending.detail, nil
		if prev != FeedRecovering {
			h.recoverStart, h.afterOutage = now, false
		}
		c.log.Info("ingest: feed recovering", "detail", detail)
	case prev == FeedRecovering && behind == 0:
		state = FeedLive
		took := now.Sub(h.recoverStart)
		detail = "ingest is reading every partition"
		if h.afterOutage {
			c.catchUp.Store(int64(took))
			c.log.Info("ingest: feed live again: caught up after the outage",
				"outage", time.Duration(c.outage.Load()).Round(time.Millisecond), "catch_up", took.Round(time.Millisecond))
		} else {
			c.log.Info("ingest: feed live again: rebuilt", "took", took.Round(time.Millisecond))
		}
	default:
		return
	}
	c.state.Store(uint32(state))
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(state, detail)
	}
}

// Ready reports whether ingest has caught up with the log as it was when
// each partition was found. It stays true afterwards: Live says whether
// the feed is current now.
func (c *Consumer) Ready() bool { return c.ready.Load() }

// Live reports whether the feed is live: every partition's broker answers,
// and ingest is not catching up after an outage or a rebuild.
func (c *Consumer) Live() bool {
	return c.State() == FeedLive && c.peekRebuild() == nil
}

// State returns the feed's state.
func (c *Consumer) State() FeedState { return FeedState(c.state.Load()) }

// FeedState is the health of the feed as ingest sees it. The node tells
// clients of it in the protocol's words (STATUS); ingest knows nothing of
// the protocol.
type FeedState uint32

// The states of the feed.
const (
	// FeedLive: every partition's broker answers and ingest is at the end
	// of the log.
	FeedLive FeedState = iota
	// FeedStale: a broker stopped answering; the state is the last known.
	FeedStale
	// FeedRecovering: the brokers answer again (or a log was rebuilt) and
	// ingest is catching up.
	FeedRecovering
)

// String names the state, for logs.
func (s FeedState) String() string {
	switch s {
	case FeedStale:
		return "stale"
	case FeedRecovering:
		return "recovering"
	}
	return "live"
}
