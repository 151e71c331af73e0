package fanout

import (
	"math/bits"
	"sync"
)

// outBuf is a client's outbound buffer: the messages queued for its writer
// and the frame boundaries among them. A client holds one only while it has
// something queued: the writer takes it whole and gives it back to the
// hub's pool once written, and the next message queued takes one from the
// pool. So publishing allocates nothing once the pool holds the buffers of
// the busy clients, and a client between messages holds no buffer at all.
type outBuf struct {
	b    []byte
	cuts []int // frame boundaries in b
}

// Buffer size classes, by capacity: 256 B × 8^i. The smallest holds a
// burst of deltas; a buffer that fills moves to the next class, so a
// client's buffer is at most eight times what it holds.
const (
	outBufMinShift = 8 // 256 B
	outBufClasses  = 5 // up to 1 MiB; larger ones are not pooled
)

// outBufPool keeps the buffers of each size class that no client holds,
// up to outBufPoolBytes of each class. It is a plain free list, not a
// sync.Pool: a sync.Pool is emptied by every second garbage collection,
// and its buffers would be allocated again at each; and the publisher
// takes buffers on one core while the writers give them back on the
// others, the case its per-core caches do not serve.
type outBufPool struct {
	classes [outBufClasses]struct {
		mu   sync.Mutex
		free []*outBuf
	}
}

// outBufPoolBytes bounds the free buffers of one class, in bytes: after a
// burst, a pool holds at most outBufClasses times this.
const outBufPoolBytes = 16 << 20

// classOf returns the smallest class whose buffers hold n bytes, or
// outBufClasses when none does.
func classOf(n int) int {
	if n <= 1<<outBufMinShift {
		return 0
	}
	// Each class is 3 bits (×8) above the previous one.
	return (bits.Len(uint(n-1)) - outBufMinShift + 2) / 3
}

// get returns an empty buffer that holds at least n bytes.
func (p *outBufPool) get(n int) *outBuf {
	k := classOf(n)
	if k >= outBufClasses {
		return &outBuf{b: make([]byte, 0, n)}
	}
	cl := &p.classes[k]
	cl.mu.Lock()
	if n := len(cl.free); n > 0 {
		ob := cl.free[n-1]
		cl.free[n-1] = nil
		cl.free = cl.free[:n-1]
		cl.mu.Unlock()
		return ob
	}
	cl.mu.Unlock()
	return &outBuf{b: make([]byte, 0, 1<<(outBufMinShift+3*k))}
}

// put gives back a buffer its owner is done with. A buffer keeps its class
// for life (append never grows one: Client.queue moves to a larger buffer
// first), so its capacity names the class; one larger than every class,
// or past the class's bound, is left to the garbage collector.
func (p *outBufPool) put(ob *outBuf) {
	size := cap(ob.b)
	k := classOf(size)
	if k >= outBufClasses || size != 1<<(outBufMinShift+3*k) {
		return
	}
	ob.b = ob.b[:0]
	ob.cuts = ob.cuts[:0]
	cl := &p.classes[k]
	cl.mu.Lock()
	if (len(cl.free)+1)*size <= outBufPoolBytes {
		cl.free = append(cl.free, ob)
	}
	cl.mu.Unlock()
}
