//go:build linux

package server

import (
	"errors"
	"runtime"
	"sync"
	"syscall"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/epoll"
)

// epollPoller reads every plain TCP WebSocket connection without a
// goroutine per connection: an idle connection is only an fd in an epoll
// set. One goroutine waits in epoll_wait; the connections that become
// readable go to a few workers (GOMAXPROCS) that read them without
// blocking, run their frame readers and handlers, and re-arm them.
//
// An fd is registered EPOLLONESHOT, so one worker at a time holds a
// connection and its frames are handled in order; the event carries the
// connection's slot and the slot's generation, never the fd (fd numbers
// are reused as soon as a socket is closed, and an event read before the
// close may be handled after it). A closed fd leaves the epoll set without
// an event: the connection's socket (wsSocket) tells the poller when it is
// closed, by anyone.
type epollPoller struct {
	readers *wsReaders
	set     *epoll.Set

	// ctlMu keeps the set from being closed under an epoll_ctl.
	ctlMu   sync.RWMutex
	stopped bool

	qmu      sync.Mutex
	qcond    sync.Cond
	queue    []*wsConn
	stopping bool

	wg sync.WaitGroup
}

// pollReadBuffer is a worker's read buffer, shared by the connections it
// serves; a worker reads a connection at most pollReads times before
// serving others.
const (
	pollReadBuffer = 16 << 10
	pollReads      = 4
)

func newPoller(r *wsReaders) (connPoller, error) {
	set, err := epoll.New()
	if err != nil {
		return nil, err
	}
	p := &epollPoller{readers: r, set: set}
	p.qcond.L = &p.qmu
	p.wg.Add(1)
	go p.wait()
	for range runtime.GOMAXPROCS(0) {
		p.wg.Add(1)
		go p.work()
	}
	return p, nil
}

// add has the poller drive c, if c is a plain TCP connection and the
// poller is running. The first worker reads what the socket has, then
// registers it.
func (p *epollPoller) add(c *wsConn) bool {
	sc, ok := c.sock.Conn.(syscall.Conn)
	if !ok {
		return false // TLS: its records are read through crypto/tls
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	c.rc = rc
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if p.stopping {
		return false
	}
	c.pollState.Store(pollOn | pollBusy)
	p.queue = append(p.queue, c)
	p.qcond.Signal()
	return true
}

// close closes c's socket, out of the epoll set first, and has a worker
// end the connection unless one holds it (that one will).
func (p *epollPoller) close(c *wsConn) error {
	p.ctlMu.RLock()
	if !p.stopped {
		_ = c.rc.Control(func(fd uintptr) {
			_ = p.set.Delete(int(fd))
		})
	}
	p.ctlMu.RUnlock()
	err := c.sock.Conn.Close()
	for {
		old := c.pollState.Load()
		if old&pollClosed != 0 {
			return err
		}
		if c.pollState.CompareAndSwap(old, old|pollClosed|pollBusy) {
			if old&pollBusy == 0 {
				p.push(c)
			}
			return err
		}
	}
}

// push queues c for a worker. A stopping poller queues nothing: stop ends
// every connection left.
func (p *epollPoller) push(c *wsConn) {
	p.qmu.Lock()
	if !p.stopping {
		p.queue = append(p.queue, c)
		p.qcond.Signal()
	}
	p.qmu.Unlock()
}

// pop takes the next connection to serve; nil when the poller stops.
func (p *epollPoller) pop() *wsConn {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	for len(p.queue) == 0 {
		if p.stopping {
			return nil
		}
		p.qcond.Wait()
	}
	c := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	if len(p.queue) == 0 {
		p.queue = p.queue[:0:0] // drop the drained array rather than creep along it
	}
	return c
}

// wait is the goroutine in epoll_wait: it hands every connection that
// became readable to the workers.
func (p *epollPoller) wait() {
	defer p.wg.Done()
	events := make([]syscall.EpollEvent, 256)
	var ready []*wsConn
	for {
		n, err := p.set.Wait(events, -1)
		if err != nil {
			p.readers.log.Error("websocket: epoll_wait failed: connections are no longer read", "err", err)
			return
		}
		ready = ready[:0]
		p.readers.mu.Lock()
		for i := range events[:n] {
			key := epoll.Key(&events[i])
			if key == epoll.WakeKey {
				p.readers.mu.Unlock()
				return
			}
			// A stale event (of a connection closed since, whose slot may
			// serve another now) names a free slot or an older generation.
			if c := p.readers.lookupLocked(uint32(key), uint32(key>>32)); c != nil {
				ready = append(ready, c)
			}
		}
		p.readers.mu.Unlock()
		for _, c := range ready {
			// Armed and open: the worker will re-arm it. A closed one
			// is ended by the closer's push.
			if c.pollState.CompareAndSwap(pollOn, pollOn|pollBusy) {
				p.push(c)
			}
		}
		clear(ready)
	}
}

// pollWorker is one worker's state, with the functions it hands to the
// connections' RawConn made once.
type pollWorker struct {
	p      *epollPoller
	buf    []byte
	n      int
	err    error
	c      *wsConn
	op     int
	readFn func(fd uintptr) bool
	ctlFn  func(fd uintptr)
}

func (p *epollPoller) work() {
	defer p.wg.Done()
	w := &pollWorker{p: p, buf: make([]byte, pollReadBuffer)}
	// Returning true, the read never parks: the fd is known readable or
	// the read fails with EAGAIN. RawConn holds the fd open meanwhile.
	w.readFn = func(fd uintptr) bool {
		w.n, w.err = syscall.Read(int(fd), w.buf)
		return true
	}
	w.ctlFn = func(fd uintptr) {
		w.err = p.set.Control(w.op, int(fd), syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLONESHOT, uint64(w.c.slot)|uint64(w.c.gen)<<32)
	}
	for c := p.pop(); c != nil; c = p.pop() {
		w.serve(c)
	}
}

// serve reads c, which the worker holds, and releases it.
func (w *pollWorker) serve(c *wsConn) {
	rearm := false
	if c.pollState.Load()&pollClosed == 0 {
		rearm = w.drain(c)
	}
	w.release(c, rearm)
}

// drain reads what c has, up to pollReads reads, and says whether to wait
// for more.
func (w *pollWorker) drain(c *wsConn) bool {
	for range pollReads {
		w.n, w.err = 0, nil
		if err := c.rc.Read(w.readFn); err != nil {
			// Closed under the worker, or past a deadline a closer set.
			_ = c.sock.Close()
			return false
		}
		switch {
		case errors.Is(w.err, syscall.EAGAIN):
			return true
		case errors.Is(w.err, syscall.EINTR):
			continue
		case w.err != nil || w.n == 0: // reset, or the client's FIN
			c.closeWith(codec.CloseNormal, codec.CloseNormal, "", true)
			return false
		}
		if !c.read(w.buf[:w.n], true) {
			return false
		}
		if w.n < len(w.buf) {
			return true
		}
	}
	return true
}

// release lets go of c: it ends a connection closed meanwhile, or arms it
// for its next event. The hold is dropped before the fd is armed: an event
// may come at once, and finds the connection free.
func (w *pollWorker) release(c *wsConn, rearm bool) {
	op := syscall.EPOLL_CTL_MOD
	if rearm && !c.added {
		op = syscall.EPOLL_CTL_ADD
		c.added = true
	}
	for {
		old := c.pollState.Load()
		if old&pollClosed != 0 {
			c.finish()
			return
		}
		if c.pollState.CompareAndSwap(old, old&^pollBusy) {
			break
		}
	}
	if !rearm {
		return // ending: the close will queue it
	}
	w.p.ctlMu.RLock()
	defer w.p.ctlMu.RUnlock()
	if w.p.stopped {
		return
	}
	w.c, w.op, w.err = c, op, nil
	err := c.rc.Control(w.ctlFn)
	w.c = nil
	if err == nil && w.err != nil && !errors.Is(w.err, syscall.ENOENT) { // ENOENT: being closed
		// The connection would never be read again (ENOMEM, ENOSPC: the
		// user's max_user_watches): close it, loudly.
		w.p.readers.log.Error("websocket: cannot poll a connection: closing it", "remote", c.ip, "err", w.err)
		go func() { _ = c.sock.Close() }()
	}
}

// stop ends the poller: the workers serve what is queued, then every
// connection still open is closed and ended.
func (p *epollPoller) stop() {
	p.qmu.Lock()
	p.stopping = true
	p.qcond.Broadcast()
	p.qmu.Unlock()
	p.set.Wake()
	p.wg.Wait()
	p.ctlMu.Lock()
	p.stopped = true
	p.set.Close()
	p.ctlMu.Unlock()
	for _, c := range p.readers.polledConns() {
		_ = c.sock.Conn.Close()
		c.finish()
	}
}
