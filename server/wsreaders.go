package server

import (
	"log/slog"
	"sync"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// wsReaders is the read side of every open WebSocket connection: it runs
// their readers, by the poller where there is one (plain TCP on Linux) and
// a goroutine each otherwise (TLS; other systems), and closes those from
// which nothing came for the idle timeout. One sweep a second compares each
// connection's last read with the clock, instead of a read deadline (a
// runtime timer) per connection.
type wsReaders struct {
	idle  time.Duration
	log   *slog.Logger
	epoch time.Time
	// poller is nil where there is none; set before the server serves.
	poller connPoller

	mu    sync.Mutex
	conns []*wsConn // by slot; nil in a free one
	gens  []uint32  // by slot: how many connections it has named
	free  []uint32

	stop chan struct{}
	wg   sync.WaitGroup
}

// connPoller reads many connections with a few goroutines
// (wspoll_linux.go).
type connPoller interface {
	// add has the poller drive c, a connection just upgraded, or says it
	// cannot (c is not a plain socket, or the poller stops).
	add(c *wsConn) bool
	// close closes the socket of c, a connection it drives, and ends it.
	close(c *wsConn) error
	// stop stops the poller and ends the connections it drives.
	stop()
}

func newWSReaders(idle time.Duration, log *slog.Logger) *wsReaders {
	return &wsReaders{idle: idle, log: log, epoch: time.Now(), stop: make(chan struct{})}
}

// now is the time on the monotonic clock, in ns since r was made.
func (r *wsReaders) now() int64 { return int64(time.Since(r.epoch)) }

// run starts the poller and the idle sweep; the returned function stops
// them.
func (r *wsReaders) run() (stop func()) {
	p, err := newPoller(r)
	if err != nil {
		r.log.Warn("websocket: no poller: a goroutine reads each connection", "err", err)
	} else if p != nil {
		r.poller = p
	}
	r.wg.Add(1)
	go r.sweepEvery(min(time.Second, r.idle/4))
	return func() {
		if r.poller != nil {
			r.poller.stop()
		}
		close(r.stop)
		r.wg.Wait()
	}
}

// start makes c one of the connections read, and starts its reader once
// it has read early, the bytes that came with the upgrade request.
func (r *wsReaders) start(c *wsConn, early []byte) {
	c.active.Store(r.now())
	r.place(c)
	if len(early) > 0 && !c.read(early, false) {
		c.finish() // closed already: nothing more to read
		return
	}
	if r.poller != nil && r.poller.add(c) {
		return
	}
	go c.readLoop()
}

// place gives c a slot, and the slot's next generation.
func (r *wsReaders) place(c *wsConn) {
	r.mu.Lock()
	if n := len(r.free); n > 0 {
		c.slot = r.free[n-1]
		r.free = r.free[:n-1]
		r.conns[c.slot] = c
	} else {
		c.slot = uint32(len(r.conns))
		r.conns = append(r.conns, c)
		r.gens = append(r.gens, 0)
	}
	r.gens[c.slot]++
	c.gen = r.gens[c.slot]
	r.mu.Unlock()
}

// lookupLocked returns the connection in slot if the slot is of generation
// gen still; r.mu is held.
func (r *wsReaders) lookupLocked(slot, gen uint32) *wsConn {
	if int(slot) < len(r.conns) && r.gens[slot] == gen {
		return r.conns[slot]
	}
	return nil
}

// polledConns returns the connections the poller drives.
func (r *wsReaders) polledConns() []*wsConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var polled []*wsConn
	for _, c := range r.conns {
		if c != nil && c.polled() {
			polled = append(polled, c)
		}
	}
	return polled
}

// remove forgets c, a connection that has ended.
func (r *wsReaders) remove(c *wsConn) {
	r.mu.Lock()
	if int(c.slot) < len(r.conns) && r.conns[c.slot] == c {
		r.conns[c.slot] = nil
		r.free = append(r.free, c.slot)
	}
	r.mu.Unlock()
}

func (r *wsReaders) sweepEvery(interval time.Duration) {
	defer r.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	var idle []*wsConn
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		idle = r.sweep(idle[:0])
		clear(idle)
	}
}

// sweep closes the connections silent for the idle timeout, as the read
// deadline of gws's reader did: with a close frame of 1000. idle is
// scratch space, returned.
func (r *wsReaders) sweep(idle []*wsConn) []*wsConn {
	since := r.now() - int64(r.idle)
	r.mu.Lock()
	for _, c := range r.conns {
		if c != nil && c.active.Load() < since {
			idle = append(idle, c)
		}
	}
	r.mu.Unlock()
	for _, c := range idle {
		r.log.Debug("websocket: idle timeout", "remote", c.ip, "idle", r.idle)
		c.closeWith(codec.CloseNormal, codec.CloseNormal, "idle timeout", true)
	}
	return idle
}
