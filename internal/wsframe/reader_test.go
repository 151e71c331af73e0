package wsframe

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tickstream/tickstream/codec"
)

// recordSink keeps what a Reader hands it.
type recordSink struct {
	messages, pings [][]byte
}

func (s *recordSink) Message(p []byte) { s.messages = append(s.messages, bytes.Clone(p)) }
func (s *recordSink) Ping(p []byte)    { s.pings = append(s.pings, bytes.Clone(p)) }

// deflated compresses p as a permessage-deflate sender does: a raw deflate
// stream flushed, without its last four bytes (RFC 7692 §7.2.1).
func deflated(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{0x00, 0x00, 0xff, 0xff})
}

// frame is a frame as a test writes it: its header and payload. The
// header is masked with testKey, as a client's, unless unmasked; its
// Length is the payload's unless set (to send a length that lies).
type frame struct {
	h        Header
	unmasked bool
	payload  []byte
}

var testKey = [4]byte{0x9c, 0x05, 0xe1, 0x7a}

func (f frame) bytes() []byte {
	h := f.h
	h.Masked, h.Key = !f.unmasked, testKey
	if h.Length == 0 {
		return AppendFrame(nil, h, f.payload)
	}
	b := h.Append(nil)
	start := len(b)
	b = append(b, f.payload...)
	Mask(b[start:], testKey, 0)
	return b
}

// data is a text, binary or continuation frame.
func data(opcode byte, fin bool, p string) frame {
	return frame{h: Header{Fin: fin, Opcode: opcode}, payload: []byte(p)}
}

// control is a ping, pong or close frame.
func control(opcode byte, p []byte) frame {
	return frame{h: Header{Fin: true, Opcode: opcode}, payload: p}
}

// closing is a close frame with a code and reason.
func closing(code uint16, reason string) frame {
	return control(OpClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// wire is the frames on the wire, masked as a client's.
func wire(frames ...frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.bytes()...)
	}
	return b
}

// serverWire is the frames on the wire unmasked, as a server's.
func serverWire(frames ...frame) []byte {
	for i := range frames {
		frames[i].unmasked = true
	}
	return wire(frames...)
}

// TestFrameReader checks what the reader makes of streams, fed whole and
// then one byte at a time: the messages and pings it hands on, and the end.
func TestFrameReader(t *testing.T) {
	compressed := func(p string) frame {
		return frame{h: Header{Fin: true, RSV: 0x40, Opcode: 0x2}, payload: deflated(t, []byte(p))}
	}
	big := strings.Repeat("x", 1024)
	cases := []struct {
		name     string
		deflate  bool
		client   bool
		stream   []byte
		messages []string
		pings    []string
		end      End // zero: still reading
	}{
		{name: "two messages", stream: wire(data(OpBinary, true, "one"), data(OpText, true, "two")), messages: []string{"one", "two"}},
		{name: "empty message", stream: wire(data(OpBinary, true, "")), messages: []string{""}},
		{name: "16-bit length", stream: wire(data(OpBinary, true, big[:1000])), messages: []string{big[:1000]}},
		{name: "fragments with a ping between", stream: wire(data(OpBinary, false, "a"), control(OpPing, []byte("p")), data(OpContinuation, false, "b"), frame{h: Header{Fin: true, Opcode: 0xa}}, data(OpContinuation, true, "c")),
			messages: []string{"abc"}, pings: []string{"p"}},
		{name: "empty fragments", stream: wire(data(OpText, false, ""), data(OpContinuation, false, ""), data(OpContinuation, true, "")), messages: []string{""}},
		{name: "message at the size limit", stream: wire(data(OpBinary, false, big[:600]), data(OpContinuation, true, big[:424])), messages: []string{big[:1024]}},
		{name: "message over the size limit", stream: wire(data(OpBinary, false, big[:600]), data(OpContinuation, true, big[:425])),
			end: End{Send: codec.CloseTooBig, Reason: "message too big", Peer: codec.CloseTooBig, Failed: true}},
		{name: "compressed message", deflate: true, stream: wire(compressed(big), data(OpBinary, true, "plain")), messages: []string{big, "plain"}},
		{name: "compressed fragments", deflate: true, stream: wire(frame{h: Header{RSV: 0x40, Opcode: 0x1}, payload: deflated(t, []byte("héllo"))[:3]}, data(OpContinuation, true, string(deflated(t, []byte("héllo"))[3:]))),
			messages: []string{"héllo"}},
		{name: "compressed message inflating past the limit", deflate: true, stream: wire(compressed(big + big)),
			end: End{Send: codec.CloseTooBig, Reason: "message too big once inflated", Peer: codec.CloseTooBig, Failed: true}},
		{name: "compressed data that is not deflate", deflate: true, stream: wire(frame{h: Header{Fin: true, RSV: 0x40, Opcode: 0x2}, payload: []byte{0xff, 0xff, 0xff}}),
			end: End{Send: codec.CloseInvalidData, Reason: "invalid compressed data", Peer: codec.CloseInvalidData, Failed: true}},
		{name: "RSV1 without deflate", stream: wire(compressed("x")),
			end: End{Send: codec.CloseProtocolError, Reason: "reserved bit RSV1 set outside the first frame of a compressed message", Peer: codec.CloseProtocolError, Failed: true}},
		{name: "text not UTF-8", stream: wire(data(OpText, true, "\xff")),
			end: End{Send: codec.CloseInvalidData, Reason: "text message not UTF-8", Peer: codec.CloseInvalidData, Failed: true}},
		{name: "empty close", stream: wire(data(OpBinary, true, "before"), control(OpClose, nil), data(OpBinary, true, "after")), messages: []string{"before"},
			end: End{Peer: codec.CloseNoStatus}},
		{name: "close 1001", stream: wire(closing(1001, "bye")), end: End{Send: codec.CloseNormal, Peer: 1001, PeerReason: "bye"}},
		{name: "close 4000 echoed", stream: wire(closing(4000, "")), end: End{Send: 4000, Peer: 4000}},
		{name: "an unmasked frame to a server", stream: serverWire(data(OpBinary, true, "x")),
			end: End{Send: codec.CloseProtocolError, Reason: "unmasked client frame", Peer: codec.CloseProtocolError, Failed: true}},
		{name: "a server's frames to a client", client: true,
			stream:   serverWire(data(OpBinary, false, "a"), control(OpPing, []byte("p")), data(OpContinuation, true, "b"), data(OpText, true, "c"), closing(4001, "going")),
			messages: []string{"ab", "c"}, pings: []string{"p"}, end: End{Send: 4001, Peer: 4001, PeerReason: "going"}},
		{name: "a server's short frame after a longer header", client: true,
			stream: serverWire(data(OpBinary, true, big[:300]), data(OpBinary, true, "after")), messages: []string{big[:300], "after"}},
		{name: "a masked frame to a client", client: true, stream: wire(data(OpBinary, true, "x")),
			end: End{Send: codec.CloseProtocolError, Reason: "masked server frame", Peer: codec.CloseProtocolError, Failed: true}},
		{name: "close 1005", stream: wire(closing(1005, "")), end: End{Send: codec.CloseProtocolError, Reason: "invalid close code", Peer: 1005, Failed: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []bool{false, true} {
				r := Reader{MaxSize: 1024, Deflate: tc.deflate, Client: tc.client}
				var sink recordSink
				var end End
				var ended bool
				stream := bytes.Clone(tc.stream)
				if split {
					for i := range stream {
						if end, ended = r.Feed(stream[i:i+1], &sink); ended {
							break
						}
					}
				} else {
					end, ended = r.Feed(stream, &sink)
				}
				if got := strs(sink.messages); !slices.Equal(got, tc.messages) {
					t.Errorf("split %t: messages %q, want %q", split, got, tc.messages)
				}
				if got := strs(sink.pings); !slices.Equal(got, tc.pings) {
					t.Errorf("split %t: pings %q, want %q", split, got, tc.pings)
				}
				if ended != (tc.end != End{}) || end != tc.end {
					t.Errorf("split %t: end %+v (%t), want %+v", split, end, ended, tc.end)
				}
				if !ended && (r.payload != nil || r.msg != nil || r.hdrLen != 0) {
					t.Errorf("split %t: the reader holds %d payload bytes, %d of a message, %d of a header between frames", split, len(r.payload), len(r.msg), r.hdrLen)
				}
			}
		})
	}
}

func strs(b [][]byte) []string {
	var s []string
	for _, p := range b {
		s = append(s, string(p))
	}
	return s
}

// TestDeflateBomb checks that a small compressed message that would inflate
// to 32 MiB fails with 1009 having allocated little more than the size
// limit, not the message.
func TestDeflateBomb(t *testing.T) {
	bomb := deflated(t, make([]byte, 32<<20))
	stream := wire(frame{h: Header{Fin: true, RSV: 0x40, Opcode: 0x2}, payload: bomb})
	r := Reader{MaxSize: 64 << 10, Deflate: true}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	end, ended := r.Feed(stream, &recordSink{})
	runtime.ReadMemStats(&after)
	if !ended || end.Send != codec.CloseTooBig {
		t.Fatalf("end %+v (%t), want 1009", end, ended)
	}
	// The inflater's state (about 40 KB and a 32 KiB window) and the
	// output up to the limit, growing.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d-byte message inflating to 32 MiB: %d bytes allocated", len(bomb), allocated)
	if allocated > 1<<20 {
		t.Errorf("%d bytes allocated for a message bounded at 64 KiB", allocated)
	}
}

// FuzzReader checks that no stream makes the reader, a server's or a
// client's, panic or hold more than the size limit, and that it reads a
// stream the same however the stream is cut into reads.
func FuzzReader(f *testing.F) {
	f.Add(wire(data(OpText, false, "ab"), control(OpPing, []byte("p")), data(OpContinuation, true, "c")), []byte{1, 3}, false, false)
	f.Add(wire(frame{h: Header{Fin: true, Opcode: 0x2, Length: 1 << 63}, payload: []byte{1}}), []byte{5, 1}, false, false)
	f.Add(wire(frame{h: Header{Fin: true, RSV: 0x40, Opcode: 0x2}, payload: deflated(f, bytes.Repeat([]byte("ab"), 3000))}), []byte{0, 7}, true, false)
	f.Add(wire(frame{h: Header{RSV: 0x40, Opcode: 0x1}, payload: deflated(f, []byte("x"))}, data(OpContinuation, true, "")), []byte{2}, true, false)
	f.Add(wire(closing(1000, "bye")), []byte{3}, false, false)
	f.Add(wire(frame{h: Header{Fin: true, Opcode: 0x2}, payload: make([]byte, 300)}), []byte{200, 1}, false, false)
	f.Add(serverWire(data(OpBinary, false, "ab"), control(OpPing, nil), data(OpContinuation, true, "c"), closing(1001, "")), []byte{3, 1}, false, true)
	const limit = 1024
	f.Fuzz(func(t *testing.T, stream, cuts []byte, deflate, client bool) {
		run := func(pieces [][]byte) (recordSink, End, bool) {
			r := Reader{MaxSize: limit, Deflate: deflate, Client: client}
			var sink recordSink
			for _, p := range pieces {
				if end, ended := r.Feed(p, &sink); ended {
					return sink, end, true
				}
				if cap(r.payload) > 2*limit+64 || cap(r.msg) > 2*limit+64 {
					t.Fatalf("the reader holds %d and %d bytes, over the limit of %d", cap(r.payload), cap(r.msg), limit)
				}
			}
			return sink, End{}, false
		}
		var pieces [][]byte
		rest := bytes.Clone(stream)
		for _, c := range cuts {
			n := min(int(c), len(rest))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		wSink, wEnd, wEnded := run([][]byte{bytes.Clone(stream)})
		pSink, pEnd, pEnded := run(pieces)
		if wEnd != pEnd || wEnded != pEnded {
			t.Fatalf("end in pieces %+v (%t), whole %+v (%t)", pEnd, pEnded, wEnd, wEnded)
		}
		if !slices.EqualFunc(wSink.messages, pSink.messages, bytes.Equal) || !slices.EqualFunc(wSink.pings, pSink.pings, bytes.Equal) {
			t.Fatalf("in pieces %d messages and %d pings, whole %d and %d", len(pSink.messages), len(pSink.pings), len(wSink.messages), len(wSink.pings))
		}
		for _, m := range wSink.messages {
			if len(m) > limit {
				t.Fatalf("a message of %d bytes, over the limit of %d", len(m), limit)
			}
		}
		for _, p := range wSink.pings {
			if len(p) > MaxControl {
				t.Fatalf("a ping of %d bytes", len(p))
			}
		}
	})
}

// BenchmarkFrameReader reads a typical request, a SUB of 20 symbols in one
// masked binary frame, as it comes in one read.
func BenchmarkFrameReader(b *testing.B) {
	syms := make([]string, 20)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYM%02d", i)
	}
	stream := wire(frame{h: Header{Fin: true, Opcode: 0x2}, payload: codec.Binary.AppendSub(nil, 7, syms, nil)})
	buf := make([]byte, len(stream))
	var sink countSink
	r := Reader{MaxSize: 64 << 10}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, stream) // the reader unmasks in place
		if _, ended := r.Feed(buf, &sink); ended {
			b.Fatal("the reading ended")
		}
	}
	if sink.messages != b.N {
		b.Fatalf("%d messages for %d frames", sink.messages, b.N)
	}
}

// countSink counts what a Reader hands it.
type countSink struct{ messages int }

func (s *countSink) Message([]byte) { s.messages++ }
func (s *countSink) Ping([]byte)    {}
