package server

import (
	"testing"
	"time"
)

// TestPending checks that wait returns at once with nothing in flight, and
// otherwise once everything counted, also what was counted while it
// waited, is done.
func TestPending(t *testing.T) {
	var p pending
	p.wait()
	p.add()
	returned := make(chan struct{})
	go func() {
		p.wait()
		close(returned)
	}()
	time.Sleep(10 * time.Millisecond) // let wait block
	p.add()
	p.done()
	select {
	case <-returned:
		t.Fatal("wait returned with one still in flight")
	case <-time.After(50 * time.Millisecond):
	}
	p.done()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return once all were done")
	}
	p.add()
	p.done()
	p.wait()
}
