package server

import (
	"bytes"
	"compress/flate"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tickstream/tickstream/codec"
)

// recordSink keeps what a frameReader hands it.
type recordSink struct {
	messages, pings [][]byte
}

func (s *recordSink) message(p []byte) { s.messages = append(s.messages, bytes.Clone(p)) }
func (s *recordSink) ping(p []byte)    { s.pings = append(s.pings, bytes.Clone(p)) }

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

func wire(frames ...frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.bytes()...)
	}
	return b
}

// TestFrameReader checks what the reader makes of streams, fed whole and
// then one byte at a time: the messages and pings it hands on, and the end.
func TestFrameReader(t *testing.T) {
	bin := func(fin bool, p string) frame { return frame{fin: fin, opcode: 0x2, payload: []byte(p)} }
	compressed := func(p string) frame {
		return frame{fin: true, rsv: 0x40, opcode: 0x2, payload: deflated(t, []byte(p))}
	}
	big := strings.Repeat("x", 1024)
	cases := []struct {
		name     string
		deflate  bool
		stream   []byte
		messages []string
		pings    []string
		end      readEnd // zero: still reading
	}{
		{name: "two messages", stream: wire(bin(true, "one"), text(true, "two")), messages: []string{"one", "two"}},
		{name: "empty message", stream: wire(bin(true, "")), messages: []string{""}},
		{name: "16-bit length", stream: wire(bin(true, big[:1000])), messages: []string{big[:1000]}},
		{name: "fragments with a ping between", stream: wire(bin(false, "a"), ping([]byte("p")), cont(false, "b"), frame{fin: true, opcode: 0xa}, cont(true, "c")),
			messages: []string{"abc"}, pings: []string{"p"}},
		{name: "empty fragments", stream: wire(text(false, ""), cont(false, ""), cont(true, "")), messages: []string{""}},
		{name: "message at the size limit", stream: wire(bin(false, big[:600]), cont(true, big[:424])), messages: []string{big[:1024]}},
		{name: "message over the size limit", stream: wire(bin(false, big[:600]), cont(true, big[:425])),
			end: readEnd{send: codec.CloseTooBig, reason: "message too big", peer: codec.CloseTooBig, failed: true}},
		{name: "compressed message", deflate: true, stream: wire(compressed(big), bin(true, "plain")), messages: []string{big, "plain"}},
		{name: "compressed fragments", deflate: true, stream: wire(frame{rsv: 0x40, opcode: 0x1, payload: deflated(t, []byte("héllo"))[:3]}, cont(true, string(deflated(t, []byte("héllo"))[3:]))),
			messages: []string{"héllo"}},
		{name: "compressed message inflating past the limit", deflate: true, stream: wire(compressed(big + big)),
			end: readEnd{send: codec.CloseTooBig, reason: "message too big once inflated", peer: codec.CloseTooBig, failed: true}},
		{name: "compressed data that is not deflate", deflate: true, stream: wire(frame{fin: true, rsv: 0x40, opcode: 0x2, payload: []byte{0xff, 0xff, 0xff}}),
			end: readEnd{send: codec.CloseInvalidData, reason: "invalid compressed data", peer: codec.CloseInvalidData, failed: true}},
		{name: "RSV1 without deflate", stream: wire(compressed("x")),
			end: readEnd{send: codec.CloseProtocolError, reason: "reserved bit RSV1 set outside the first frame of a compressed message", peer: codec.CloseProtocolError, failed: true}},
		{name: "text not UTF-8", stream: wire(text(true, "\xff")),
			end: readEnd{send: codec.CloseInvalidData, reason: "text message not UTF-8", peer: codec.CloseInvalidData, failed: true}},
		{name: "empty close", stream: wire(bin(true, "before"), closeFrame(nil), bin(true, "after")), messages: []string{"before"},
			end: readEnd{peer: codec.CloseNoStatus}},
		{name: "close 1001", stream: wire(closeCode(1001, "bye")), end: readEnd{send: codec.CloseNormal, peer: 1001}},
		{name: "close 4000 echoed", stream: wire(closeCode(4000, "")), end: readEnd{send: 4000, peer: 4000}},
		{name: "close 1005", stream: wire(closeCode(1005, "")), end: readEnd{send: codec.CloseProtocolError, reason: "invalid close code", peer: 1005, failed: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []bool{false, true} {
				r := frameReader{maxSize: 1024, deflate: tc.deflate}
				var sink recordSink
				var end readEnd
				var ended bool
				stream := bytes.Clone(tc.stream)
				if split {
					for i := range stream {
						if end, ended = r.feed(stream[i:i+1], &sink); ended {
							break
						}
					}
				} else {
					end, ended = r.feed(stream, &sink)
				}
				if got := strs(sink.messages); !slices.Equal(got, tc.messages) {
					t.Errorf("split %t: messages %q, want %q", split, got, tc.messages)
				}
				if got := strs(sink.pings); !slices.Equal(got, tc.pings) {
					t.Errorf("split %t: pings %q, want %q", split, got, tc.pings)
				}
				if ended != (tc.end != readEnd{}) || end != tc.end {
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
	stream := wire(frame{fin: true, rsv: 0x40, opcode: 0x2, payload: bomb})
	r := frameReader{maxSize: 64 << 10, deflate: true}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	end, ended := r.feed(stream, &recordSink{})
	runtime.ReadMemStats(&after)
	if !ended || end.send != codec.CloseTooBig {
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

// FuzzFrameReader checks that no stream makes the reader panic or hold
// more than the size limit, and that it reads a stream the same however the
// stream is cut into reads.
func FuzzFrameReader(f *testing.F) {
	f.Add(wire(text(false, "ab"), ping([]byte("p")), cont(true, "c")), []byte{1, 3}, false)
	f.Add(wire(frame{fin: true, opcode: 0x2, length64: 1 << 63, payload: []byte{1}}), []byte{5, 1}, false)
	f.Add(wire(frame{fin: true, rsv: 0x40, opcode: 0x2, payload: deflated(f, bytes.Repeat([]byte("ab"), 3000))}), []byte{0, 7}, true)
	f.Add(wire(frame{rsv: 0x40, opcode: 0x1, payload: deflated(f, []byte("x"))}, cont(true, "")), []byte{2}, true)
	f.Add(wire(closeCode(1000, "bye")), []byte{3}, false)
	f.Add(wire(frame{fin: true, opcode: 0x2, payload: make([]byte, 300)}), []byte{200, 1}, false)
	const limit = 1024
	f.Fuzz(func(t *testing.T, stream, cuts []byte, deflate bool) {
		run := func(pieces [][]byte) (recordSink, readEnd, bool) {
			r := frameReader{maxSize: limit, deflate: deflate}
			var sink recordSink
			for _, p := range pieces {
				if end, ended := r.feed(p, &sink); ended {
					return sink, end, true
				}
				if cap(r.payload) > 2*limit+64 || cap(r.msg) > 2*limit+64 {
					t.Fatalf("the reader holds %d and %d bytes, over the limit of %d", cap(r.payload), cap(r.msg), limit)
				}
			}
			return sink, readEnd{}, false
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
			if len(p) > maxControl {
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
	stream := wire(frame{fin: true, opcode: 0x2, payload: codec.Binary.AppendSub(nil, 7, syms, nil)})
	buf := make([]byte, len(stream))
	var sink countSink
	r := frameReader{maxSize: 64 << 10}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, stream) // the reader unmasks in place
		if _, ended := r.feed(buf, &sink); ended {
			b.Fatal("the reading ended")
		}
	}
	if sink.messages != b.N {
		b.Fatalf("%d messages for %d frames", sink.messages, b.N)
	}
}

// countSink counts what a frameReader hands it.
type countSink struct{ messages int }

func (s *countSink) message([]byte) { s.messages++ }
func (s *countSink) ping([]byte)    {}
