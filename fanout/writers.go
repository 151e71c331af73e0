package fanout

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// writerPool writes the clients' outbound buffers: a few worker goroutines
// share one queue of the clients that have something to write. A worker
// takes a client, writes what it has queued as one or a few frames, puts
// it back at the end of the queue if more came meanwhile, and takes the
// next, so that under load a delivery costs a queue entry, not a wake of
// a goroutine of its own, and a client between messages holds no
// goroutine (a goroutine per busy client cost about a fifth of the
// server's CPU in wakes and parks at 10 000 connections, and 4 KB of stack
// for each connection that got a message in the last half heartbeat).
//
// There are as many workers as cores, plus one for each write that has
// blocked for a clock tick: a client whose socket does not take its
// frames holds its worker until the write ends, and the hub's clock tick
// (check) starts another in its place, so that the other clients are not
// held up by more than a tick.
type writerPool struct {
	hub    *Hub
	target int // workers not blocked in a write

	// inWrite counts the workers in a write.
	inWrite atomic.Int32

	mu      sync.Mutex
	wait    sync.Cond // idle workers wait on it for the queue
	queue   []queued  // clients to write, first at head
	head    int
	idle    int // workers waiting on wait
	workers []*worker
	blocked int // workers blocked in a write at the last check
	closed  bool
}

// queued is a client waiting for a worker, and the time it started
// waiting (only read for FlushDelay).
type queued struct {
	c  *Client
	at time.Time
}

// worker is one of the pool's goroutines.
type worker struct {
	// writing is the hub clock (unix ns) when the write in progress
	// began, 0 between writes.
	writing atomic.Int64
	// busySince is when the worker last waited for a client or let other
	// goroutines run (see yieldEvery); only its own goroutine uses it.
	busySince time.Time
}

func newWriterPool(h *Hub) *writerPool {
	p := &writerPool{hub: h, target: runtime.GOMAXPROCS(0)}
	p.wait.L = &p.mu
	return p
}

// enqueue puts c at the end of the queue, and wakes or starts a worker
// when none is free to take it. The client's wstate is writerBusy.
func (p *writerPool) enqueue(c *Client) {
	var at time.Time
	if p.hub.cfg.FlushDelay > 0 {
		at = time.Now()
	}
	p.mu.Lock()
	p.queue = append(p.queue, queued{c, at})
	switch {
	case p.idle > 0:
		p.idle--
		p.wait.Signal()
	case len(p.workers) < p.target:
		p.startLocked()
	}
	p.mu.Unlock()
}

// startLocked starts a worker. p.mu is held.
func (p *writerPool) startLocked() {
	w := &worker{busySince: time.Now()}
	p.workers = append(p.workers, w)
	go p.work(w)
}

// next returns the client to write next, waiting for one; nil tells the
// worker to end: the pool has more workers than it needs, or is closed.
func (p *writerPool) next(w *worker) *Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		// A worker started in place of a blocked one ends once the
		// workers free to write are enough again, queue or not: under
		// overload the queue never empties, and a write that only
		// looked blocked (its thread preempted for a tick) would
		// otherwise leave a worker more for good, each one more
		// goroutine taking turns for the same cores.
		if len(p.workers)-int(p.inWrite.Load()) > p.target {
			p.removeLocked(w)
			return nil
		}
		if p.head != len(p.queue) {
			break
		}
		if p.closed {
			p.removeLocked(w)
			return nil
		}
		p.idle++ // enqueue takes it off when it signals, close clears it
		p.wait.Wait()
		w.busySince = time.Now()
	}
	q := p.queue[p.head]
	p.queue[p.head] = queued{}
	p.head++
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	if !q.at.IsZero() {
		// Let more messages join the client's frame: the queue is in
		// order of arrival, so the ones behind are due later still.
		if wait := p.hub.cfg.FlushDelay - time.Since(q.at); wait > 0 {
			p.mu.Unlock()
			time.Sleep(wait)
			p.mu.Lock()
		}
	}
	return q.c
}

// removeLocked forgets a worker that ends. p.mu is held.
func (p *writerPool) removeLocked(w *worker) {
	for i, x := range p.workers {
		if x == w {
			last := len(p.workers) - 1
			p.workers[i] = p.workers[last]
			p.workers[last] = nil
			p.workers = p.workers[:last]
			return
		}
	}
}

// yieldEvery is how long a worker writes from client to client before it
// lets the goroutines waiting for a core run. A worker with clients queued
// never blocks (a write that the socket takes returns at once), so
// without it Go would preempt the workers only every 10ms, and the
// goroutines behind them would wait that long: the ingest of the changes
// the workers then write, the hub's clock (stale, it hides the very
// staleness it measures) and the timers of paced subscriptions.
const yieldEvery = time.Millisecond

func (p *writerPool) work(w *worker) {
	for {
		c := p.next(w)
		if c == nil {
			return
		}
		if c.writeRound(w) {
			p.enqueue(c)
		}
		if time.Since(w.busySince) >= yieldEvery {
			runtime.Gosched()
			w.busySince = time.Now()
		}
	}
}

// check runs on the hub's clock tick: when clients wait while the workers
// not blocked in a write are fewer than target, it starts more. Workers
// whose write began a tick ago or more count as blocked.
func (p *writerPool) check(now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.queue) || p.idle > 0 {
		return
	}
	blocked := 0
	for _, w := range p.workers {
		if since := w.writing.Load(); since != 0 && time.Duration(now-since) >= p.hub.clockPeriod {
			blocked++
		}
	}
	// Clients that stopped reading often stop together (a network
	// failure): the queue is likely to hold more of them behind the ones
	// that blocked since the last tick, so as many more workers start
	// again, doubling until the pool outnumbers them.
	start := p.target - (len(p.workers) - blocked) + max(blocked-p.blocked, 0)
	start = min(start, len(p.queue)-p.head)
	for range start {
		p.startLocked()
	}
	p.blocked = blocked
}

// close lets the idle workers end, and the others once the queue is
// empty.
func (p *writerPool) close() {
	p.mu.Lock()
	p.closed = true
	p.idle = 0
	p.wait.Broadcast()
	p.mu.Unlock()
}

// wake has the client written when there is something to write and it is
// not already queued or being written. c.mu is held.
func (c *Client) wake() {
	if c.wstate == writerBusy || c.closed {
		return
	}
	c.wstate = writerBusy
	c.hub.writers.enqueue(c)
}

// writeRound is one turn of a worker at the client: it queues the pending
// deltas that are due, writes what is buffered (messages queued during the
// write share the next turn's frames), and reports whether the client
// needs another turn. A closing client is closed once it has nothing left
// to write.
func (c *Client) writeRound(w *worker) (again bool) {
	c.mu.Lock()
	if !c.closed && !c.closing && len(c.dirty) > 0 {
		c.flushDirty(time.Now())
	}
	if c.closed {
		c.wstate = writerNone
		c.mu.Unlock()
		return false
	}
	if c.out == nil {
		c.wstate = writerNone
		closing, code, reason := c.closing, c.closeCode, c.closeReason
		c.mu.Unlock()
		if closing {
			c.close(code, reason)
		}
		return false
	}
	out := c.out
	c.out, c.frameStart, c.bufMsgs = nil, 0, 0
	c.inflight, c.inflightAt = len(out.b), c.queuedAt
	start := c.hub.clock.Load()
	c.writeStart.Store(start)
	c.mu.Unlock()

	w.writing.Store(start)
	c.hub.writers.inWrite.Add(1)
	err := c.writeFrames(out)
	c.hub.writers.inWrite.Add(-1)
	w.writing.Store(0)
	c.hub.bufs.put(out)

	c.mu.Lock()
	c.inflight = 0
	c.lastWrite = c.hub.clock.Load()
	if err != nil {
		c.wstate = writerNone
		c.mu.Unlock()
		c.hub.stats.writeErrors.Add(1)
		c.close(codec.CloseInternal, "write failed")
		return false
	}
	c.hub.stats.writeWait.observe(time.Duration(c.lastWrite - c.inflightAt))
	if c.parked && !c.closed {
		c.unpark()
	}
	if c.conflating && c.backlog() < c.hub.cfg.SoftLimit/2 &&
		c.staleness(c.lastWrite) < c.hub.cfg.MaxStaleness/2 {
		c.stopConflating()
	}
	again = !c.closed && (c.out != nil || len(c.dirty) > 0 || c.closing)
	if !again {
		c.wstate = writerNone
	}
	c.mu.Unlock()
	return again
}
