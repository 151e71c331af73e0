package fanout

import (
	"testing"
	"unsafe"

	"github.com/tickstream/tickstream/codec"
)

// TestSubscriptionSize keeps a subscription in the allocator's 80-byte size
// class: a connection holds one per symbol, so each size class above costs
// 16 bytes more per symbol per connection (issue 12, memory per
// connection). A new field has to fit, or raise the bound on purpose.
func TestSubscriptionSize(t *testing.T) {
	if size := unsafe.Sizeof(subscription{}); size > 80 {
		t.Errorf("subscription is %d bytes, want at most 80", size)
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
