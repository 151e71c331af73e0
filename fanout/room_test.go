package fanout

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// recordConn is a Transport that keeps a copy of every frame it is given.
type recordConn struct {
	mu     sync.Mutex
	frames [][]byte
}

func (r *recordConn) WriteFrame(p []byte) error {
	r.mu.Lock()
	r.frames = append(r.frames, bytes.Clone(p))
	r.mu.Unlock()
	return nil
}

func (r *recordConn) Close(codec.CloseCode, string) {}

// stream returns the bytes of the frames after room, in order, and the
// number of frames.
func (r *recordConn) stream(t *testing.T, room int) ([]byte, int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []byte
	for i, f := range r.frames {
		if len(f) <= room {
			t.Fatalf("frame %d is %d bytes, no more than its room of %d", i, len(f), room)
		}
		b = append(b, f[room:]...)
	}
	return b, len(r.frames)
}

// TestFrameRoom checks that a transport asking for room in front of its
// frames gets every frame with that room first and the same messages
// after it as a transport that asks for none (frames may coalesce
// differently), and that the engine counts only the messages' bytes.
func TestFrameRoom(t *testing.T) {
	run := func(room int) ([]byte, int, uint64) {
		// Small frames, so that a burst is cut into several; no HEARTBEATs.
		store, hub := newTestHub(t, Config{Heartbeat: time.Hour, MaxFrameSize: 300})
		syms := symbols(20)
		for i, s := range syms {
			apply(t, store, s, float64(i))
		}
		rec := &recordConn{}
		c := hub.Register(rec, ClientOptions{Format: codec.Binary, FrameRoom: room})
		c.Subscribe(1, syms, codec.DefaultSubOptions())
		quiet := func() bool {
			rec.mu.Lock()
			n := len(rec.frames)
			rec.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return n > 0 && len(rec.frames) == n
		}
		waitFor(t, "the SNAPSHOTs", quiet)
		for i := range 200 {
			apply(t, store, syms[i%len(syms)], float64(1000+i))
		}
		waitFor(t, "the DELTAs", quiet)
		b, n := rec.stream(t, room)
		return b, n, hub.Stats().Bytes
	}
	plain, plainFrames, plainBytes := run(0)
	for _, room := range []int{1, MaxFrameRoom} {
		t.Run(fmt.Sprintf("room=%d", room), func(t *testing.T) {
			got, frames, counted := run(room)
			if !bytes.Equal(got, plain) {
				t.Errorf("the messages after the room differ from those without (%d bytes against %d)", len(got), len(plain))
			}
			if counted != plainBytes || counted != uint64(len(plain)) {
				t.Errorf("bytes counted %d, want %d (without room %d)", counted, len(plain), plainBytes)
			}
			t.Logf("%d frames with room %d, %d without", frames, room, plainFrames)
		})
	}
}
