package fanout

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// topic is the subscriber list of one symbol. Publishers read it through
// an atomic pointer; subscribe and unsubscribe replace it under mu, so they
// never stall a publisher.
type topic struct {
	mu   sync.Mutex
	subs atomic.Pointer[[]*subscription]
}

func (t *topic) add(s *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old []*subscription
	if p := t.subs.Load(); p != nil {
		old = *p
	}
	// Appending in place is safe while there is room: a publisher reads
	// only the length it loaded, and remove always copies, so on one
	// backing array the published lengths only grow. Growing by doubling
	// keeps a subscription storm linear instead of quadratic in garbage.
	next := old
	if len(old) == cap(old) {
		next = make([]*subscription, len(old), 2*len(old)+4)
		copy(next, old)
	}
	next = append(next, s)
	t.subs.Store(&next)
}

func (t *topic) remove(s *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.subs.Load()
	if p == nil {
		return
	}
	old := *p
	for i, x := range old {
		if x == s {
			next := make([]*subscription, 0, len(old)-1)
			next = append(next, old[:i]...)
			next = append(next, old[i+1:]...)
			t.subs.Store(&next)
			return
		}
	}
}

// subscription is one symbol subscribed by one client. Every field but
// client and sym is guarded by client.mu. Its fields are laid out to fill
// 64 bytes, the allocator's 64-byte size class and one cache line: a
// connection holds one per symbol (20 symbols: 1.3 KB, against 1.9 KB at
// the 96-byte class of the same fields in declaration order).
type subscription struct {
	client *Client
	sym    *snapshot.Symbol

	fields codec.FieldMask
	dirty  bool // listed in client.dirty
	// snapDue: a SNAPSHOT was asked for while the client was congested;
	// the writer sends one of the newest state when it drains.
	snapDue bool
	// parked: taken off its topic's list while its client is stuck
	// (Client.park).
	parked  bool
	removed bool

	interval time.Duration // from maxHz; 0 sends every update
	// nextDue, with interval: the earliest time of the next message, on
	// the hub's monotonic clock (Hub.mono).
	nextDue int64

	// sent is the state the client holds for this symbol (on the fields of
	// this subscription): the last SNAPSHOT or DELTA queued for it.
	sent *snapshot.State
	// pending, when not nil, is a newer state still to be sent as one
	// merged DELTA (conflation, maxHz, or a change that raced a snapshot).
	pending *snapshot.State
	// bars: the bars this subscription gets (bars.go); nil for none.
	bars *subBars
}

// list returns the topic whose subscriber list s joins: the symbol's,
// created when s was (Hub.topic never drops a topic), so that s need not
// keep a pointer to it (8 bytes of every subscription of every client).
func (s *subscription) list() *topic { return s.client.hub.topic(s.sym.ID, false) }
