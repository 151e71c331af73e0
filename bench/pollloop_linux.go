//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/epoll"
)

// clientPoller reads the benchmark's plain ws:// connections on a few
// goroutines instead of one each: with thousands of connections beside the
// feed's producer and broker in one process, a reader goroutine per
// connection (client.Conn's gws ReadLoop) costs two reads, a park and a
// wake per frame, and its goroutines crowd the run queue ahead of the
// producer's, whose delay counts in every update's age.
//
// It is not the server's epoll poller (server/wspoll_linux.go), whose one
// waiter hands each ready connection to a pool of workers and re-arms it
// (EPOLLONESHOT) so that a slow request handler delays no other
// connection. A benchmark connection's handling is short (its Book and the
// latency recording), so each pollLoop waits on an epoll set of its own
// and reads its connections itself, level-triggered: no hand-off and no
// epoll_ctl per read.
type clientPoller struct {
	loops []*pollLoop
	next  atomic.Uint32
	wg    sync.WaitGroup
}

// pollLoop is one goroutine in epoll_wait on the connections given to it,
// reading each when it is readable into a buffer shared by all of them.
type pollLoop struct {
	log *slog.Logger
	set *epoll.Set

	mu      sync.Mutex
	conns   map[uint64]*pollConn
	lastID  uint64
	stopped bool

	buf []byte // owned by the loop's goroutine
}

// pollReadBuffer is a loop's read buffer: a read takes what a connection
// has, up to this; more waits for the next round.
const pollReadBuffer = 64 << 10

// sweepInterval is how often a loop looks for connections whose heartbeat
// stopped (client.Conn's read deadline, three heartbeats).
const sweepInterval = time.Second

// newConnPoller starts a poller of one loop per CPU the process may use.
func newConnPoller(log *slog.Logger) (connPoller, error) {
	p := &clientPoller{}
	for range runtime.GOMAXPROCS(0) {
		l, err := newPollLoop(log)
		if err != nil {
			p.stop()
			return nil, err
		}
		p.loops = append(p.loops, l)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run()
		}()
	}
	return p, nil
}

func newPollLoop(log *slog.Logger) (*pollLoop, error) {
	set, err := epoll.New()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	l := &pollLoop{log: log, set: set, conns: map[uint64]*pollConn{}, buf: make([]byte, pollReadBuffer)}
	return l, nil
}

// dial opens a connection read by one of the loops, in turn: see
// dialPolled.
func (p *clientPoller) dial(ctx context.Context, rawURL string, laddr *net.TCPAddr, format codec.Format, wire *atomic.Int64,
	onMessage func(*codec.Message), onClose func(int, string)) (benchConn, error) {
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	c, err := dialPolled(ctx, l, rawURL, laddr, format, wire, onMessage, onClose)
	if err != nil {
		return nil, err // not a nil *pollConn in a benchConn
	}
	return c, nil
}

// stop ends the loops; a connection still open is closed, as dropped
// (1006).
func (p *clientPoller) stop() {
	for _, l := range p.loops {
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		l.set.Wake()
	}
	p.wg.Wait()
	for _, l := range p.loops {
		for _, c := range l.snapshot(nil) {
			c.end(int(codec.CloseAbnormal), "the benchmark's poller stopped")
		}
		l.set.Close()
	}
}

// add makes c, just upgraded, one of l's connections: it reads early, the
// bytes that came with the 101, then has the epoll set watch c.
func (l *pollLoop) add(c *pollConn, early []byte) error {
	c.loop = l
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		_ = syscall.Close(c.fd)
		return errors.New("the benchmark's poller stopped")
	}
	l.lastID++
	c.id = l.lastID
	l.conns[c.id] = c
	l.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = time.Now()
	c.read(early, c.active)
	if c.ended {
		return nil // closed by the server at once: the dial reports it
	}
	if err := l.set.Control(syscall.EPOLL_CTL_ADD, c.fd, syscall.EPOLLIN|syscall.EPOLLRDHUP, c.id); err != nil {
		c.endLocked(int(codec.CloseAbnormal), err.Error())
		return err
	}
	return nil
}

// remove forgets c, which is ending.
func (l *pollLoop) remove(c *pollConn) {
	l.mu.Lock()
	delete(l.conns, c.id)
	l.mu.Unlock()
}

// snapshot appends l's connections to dst.
func (l *pollLoop) snapshot(dst []*pollConn) []*pollConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		dst = append(dst, c)
	}
	return dst
}

// run waits for readable connections and reads them, until stop; once a
// second it ends the connections whose heartbeat stopped.
func (l *pollLoop) run() {
	events := make([]syscall.EpollEvent, 256)
	var ready []*pollConn
	nextSweep := time.Now().Add(sweepInterval)
	for {
		wait := max(time.Until(nextSweep), 0)
		n, err := l.set.Wait(events, int(wait/time.Millisecond)+1)
		if err != nil {
			l.log.Error("bench: epoll_wait failed: connections are no longer read", "err", err)
			return
		}
		now := time.Now()
		l.mu.Lock()
		for i := range events[:n] {
			id := epoll.Key(&events[i])
			if id == epoll.WakeKey {
				l.mu.Unlock()
				return
			}
			// A connection ended since the wait returned is gone.
			if c := l.conns[id]; c != nil {
				ready = append(ready, c)
			}
		}
		l.mu.Unlock()
		for _, c := range ready {
			l.serve(c, now)
		}
		clear(ready)
		ready = ready[:0]
		if now.After(nextSweep) {
			ready = l.sweep(now, ready)
			nextSweep = now.Add(sweepInterval)
		}
	}
}

// serve reads what c has, up to the buffer; the epoll set, level-triggered,
// reports it again if there is more.
func (l *pollLoop) serve(c *pollConn, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	n, err := syscall.Read(c.fd, l.buf)
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return
	case err != nil:
		c.endLocked(int(codec.CloseAbnormal), err.Error())
		return
	case n == 0:
		c.endLocked(int(codec.CloseAbnormal), "EOF")
		return
	}
	c.wire.Add(int64(n))
	c.read(l.buf[:n], now)
}

// sweep ends the connections from which nothing came for three
// heartbeats, as client.Conn's read deadline does. scratch is returned,
// cleared.
func (l *pollLoop) sweep(now time.Time, scratch []*pollConn) []*pollConn {
	scratch = l.snapshot(scratch)
	for _, c := range scratch {
		c.mu.Lock()
		if !c.ended && c.silent(now) {
			c.endLocked(client.CloseTimeout, fmt.Sprintf("nothing received for 3 heartbeats of %v", c.heartbeat))
		}
		c.mu.Unlock()
	}
	clear(scratch)
	return scratch[:0]
}
