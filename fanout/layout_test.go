package fanout

import (
	"testing"
	"unsafe"

	"github.com/tickstream/tickstream/codec"
)

// TestSubscriptionSize keeps a subscription in the allocator's 64-byte size
// class, one cache line: a connection holds one per symbol, so each size
// class above costs 16 bytes more per symbol per connection (issue 12,
// memory per connection). A new field has to fit, or raise the bound on
// purpose.
func TestSubscriptionSize(t *testing.T) {
	if size := unsafe.Sizeof(subscription{}); size > 64 {
		t.Errorf("subscription is %d bytes, want at most 64", size)
	}
}

// TestFrameSymbolsNotKept checks that a client does not keep the symbol
// list of a large SUB, which aliases the frame, after handling it.
func TestFrameSymbolsNotKept(t *testing.T) {
	_, hub := newTestHub(t, Config{})
	fc := newFakeConn(t, codec.Binary)
	c := hub.Register(fc, ClientOptions{Format: codec.Binary})
	syms := symbols(50)
	opts := codec.DefaultSubOptions()
	fc.send(c, codec.Binary.AppendSub(nil, 1, syms, &opts))
	if n := cap(c.cmd.Syms); n > keptSyms {
		t.Errorf("the client keeps room for %d symbols after a SUB of %d, want at most %d", n, len(syms), keptSyms)
	}
	fc.send(c, codec.Binary.AppendSnap(nil, 2, syms[:2]))
	for i, s := range c.cmd.Syms[:cap(c.cmd.Syms)] {
		if s != nil {
			t.Errorf("symbol %d of the last frame still held: %q", i, s)
		}
	}
}

// TestClientHotFields keeps the fields that every delivery and every write
// touch in a Client's first two cache lines: at 10 000 connections each
// further line is a cache miss per delivery. A Client starts on a cache
// line because its size class does: Go's classes from 512 bytes up are
// multiples of 64 (the 480-byte one is not).
func TestClientHotFields(t *testing.T) {
	var c Client
	hot := map[string]uintptr{
		"hub": unsafe.Offsetof(c.hub), "t": unsafe.Offsetof(c.t), "mu": unsafe.Offsetof(c.mu),
		"format": unsafe.Offsetof(c.format), "closed": unsafe.Offsetof(c.closed), "closing": unsafe.Offsetof(c.closing),
		"parked": unsafe.Offsetof(c.parked), "conflating": unsafe.Offsetof(c.conflating), "wstate": unsafe.Offsetof(c.wstate),
		"out": unsafe.Offsetof(c.out), "bufMsgs": unsafe.Offsetof(c.bufMsgs), "frameStart": unsafe.Offsetof(c.frameStart),
		"inflight": unsafe.Offsetof(c.inflight), "queuedAt": unsafe.Offsetof(c.queuedAt), "inflightAt": unsafe.Offsetof(c.inflightAt),
		"lastWrite": unsafe.Offsetof(c.lastWrite), "writeStart": unsafe.Offsetof(c.writeStart) + 7,
		"dirty": unsafe.Offsetof(c.dirty) + 23,
	}
	for name, end := range hot {
		if end >= 128 {
			t.Errorf("Client.%s ends at byte %d, past the first two cache lines", name, end)
		}
	}
	if size := unsafe.Sizeof(c); size <= 480 {
		t.Errorf("Client is %d bytes: its size class may not start it on a cache line", size)
	}
}
