package fanout

import (
	"testing"
	"unsafe"
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
