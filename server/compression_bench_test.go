package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
	"github.com/tickstream/tickstream/snapshot"
)

// countingConn counts the bytes read from the socket: the wire size,
// WebSocket framing and compression included.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// frameCounter is the benchmark client's handler: it counts frames.
type frameCounter struct {
	gws.BuiltinEventHandler
	frames atomic.Int64
}

func (f *frameCounter) OnMessage(_ *gws.Conn, m *gws.Message) {
	f.frames.Add(1)
	m.Close()
}

// simFrames encodes the simulator's stream as the engine sends it: DELTAs
// of the fields that changed, perFrame messages to a frame.
func simFrames(n, perFrame int) [][]byte {
	store := snapshot.New()
	market := sim.NewMarket(sim.Config{Symbols: 500, Seed: 1})
	now := time.Now()
	var u codec.Update
	for i := range 500 {
		market.Initial(now, i, &u)
		store.Apply(&u)
	}
	var enc deltaEncoder
	store.SetObserver(&enc)
	frames := make([][]byte, n)
	for i := range frames {
		enc.frame, enc.n = nil, 0
		for enc.n < perFrame {
			now = now.Add(500 * time.Microsecond)
			market.Next(now, &u)
			store.Apply(&u)
		}
		frames[i] = enc.frame
	}
	return frames
}

// deltaEncoder appends the DELTA of each change the store tells it of to
// frame.
type deltaEncoder struct {
	frame []byte
	n     int
}

func (e *deltaEncoder) Publish(ch snapshot.Change) {
	e.frame = codec.Binary.AppendState(e.frame, codec.OpDelta, ch.Symbol.ID, ch.Next.Seq, ch.Mask, &ch.Next.Values)
	e.n++
}

// BenchmarkCompression writes the simulator's realistic stream over a real
// gws connection on loopback with (a) no compression, (b) permessage-deflate
// without context takeover (what tickstream negotiates: every frame
// compresses alone, so one compressed frame could serve every subscriber)
// and (c) context takeover (a compression window per connection). B/msg is
// the wire size per DELTA as the client's socket reads it; ns/frame is the
// server's write, compression included.
func BenchmarkCompression(b *testing.B) {
	modes := []struct {
		name     string
		deflate  gws.PermessageDeflate
		takeover bool
	}{
		{name: "none"},
		{name: "no-context-takeover", deflate: gws.PermessageDeflate{Enabled: true, Threshold: 1}},
		{name: "context-takeover", deflate: gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true}},
	}
	for _, perFrame := range []int{1, 8, 64} {
		frames := simFrames(4096, perFrame)
		for _, m := range modes {
			b.Run(fmt.Sprintf("msgs=%d/%s", perFrame, m.name), func(b *testing.B) {
				benchCompression(b, m.deflate, frames, perFrame)
			})
		}
	}
}

func benchCompression(b *testing.B, deflate gws.PermessageDeflate, frames [][]byte, perFrame int) {
	conns := make(chan *gws.Conn, 1)
	up := gws.NewUpgrader(&gws.BuiltinEventHandler{}, &gws.ServerOption{PermessageDeflate: deflate})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			b.Error(err)
			return
		}
		conns <- c
		c.ReadLoop()
	}))
	defer srv.Close()

	var wire atomic.Int64
	raw, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	counter := &frameCounter{}
	client, _, err := gws.NewClientFromConn(counter, &gws.ClientOption{
		Addr:              "ws://" + srv.Listener.Addr().String() + "/",
		PermessageDeflate: deflate,
	}, countingConn{raw, &wire})
	if err != nil {
		b.Fatal(err)
	}
	go client.ReadLoop()
	defer client.WriteClose(1000, nil)
	server := <-conns

	wire.Store(0)
	b.ResetTimer()
	for i := range b.N {
		if err := server.WriteMessage(gws.OpcodeBinary, frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	deadline := time.Now().Add(time.Minute)
	for counter.frames.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("client read %d of %d frames", counter.frames.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	var raw0 int
	for i := range b.N {
		raw0 += len(frames[i%len(frames)])
	}
	msgs := float64(b.N * perFrame)
	b.ReportMetric(float64(wire.Load())/msgs, "B/msg")
	b.ReportMetric(float64(raw0)/float64(wire.Load()), "ratio")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
	b.ReportMetric(0, "ns/op")
}
