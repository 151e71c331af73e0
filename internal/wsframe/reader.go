// Package wsframe reads and writes WebSocket frames (RFC 6455 §5; RFC 7692
// for permessage-deflate) without a goroutine or a buffer per connection:
// a Reader is fed bytes as they arrive, in pieces of any size, and keeps
// between two reads only what a partial frame or a fragmented message needs.
// The server reads its clients' frames with it, the load benchmark its
// connections' frames from the server.
package wsframe

import (
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/tickstream/tickstream/codec"
)

// Reader reads the frames one side of a WebSocket connection sends, from
// bytes fed to it as they arrive, in pieces of any size. Between two reads
// it keeps only what a partial frame or a fragmented message needs, nothing
// when the connection is idle: an idle connection then costs no goroutine
// and no buffer (gws's reader needs a goroutine blocked in its ReadLoop).
//
// It checks everything the receiving side must: the mask (a client's frames
// are masked, a server's are not), reserved bits (RSV1 only on the first
// frame of a compressed message), opcodes, control frames of at most 125
// bytes and never fragmented, the order of fragments, the 64-bit length's
// top bit, the message size limit (also once inflated), the UTF-8 of text
// messages and close reasons, and the close code. A frame that breaks a
// rule ends the reading with the code to close with; bad input cannot make
// it panic or hold more than the size limit (FuzzReader).
//
// Its fields are ordered to pack it (every server connection has one).
type Reader struct {
	// MaxSize is the largest message, compressed or not.
	MaxSize int
	// Deflate is whether permessage-deflate was negotiated: RSV1 marks a
	// compressed message.
	Deflate bool
	// Client is whether the Reader is a client's, reading a server's
	// frames, which are not masked; a server's Reader wants every frame
	// masked.
	Client bool
	done   bool // a close frame was read or a rule broken: the rest is ignored

	// The frame being read: its header while it is incomplete, then the
	// header's fields.
	hdr    [14]byte
	hdrLen uint8
	opcode byte
	fin    bool
	rsv1   bool
	key    [4]byte

	// The fragmented message being assembled: its opcode (0 when none),
	// whether it is compressed, its payload so far.
	msgOpcode   byte
	msgDeflated bool

	length  int    // the frame's payload length
	got     int    // payload bytes of the frame read so far
	payload []byte // the frame's payload when it spans reads
	msg     []byte
}

// Sink receives what a Reader reads, while it is fed.
type Sink interface {
	// Message receives a whole text or binary message, inflated; p is
	// valid only during the call.
	Message(p []byte)
	// Ping receives a ping's payload, valid only during the call.
	Ping(p []byte)
}

// End says how a connection's reading ended: the close frame to send and
// the code the connection ends with.
type End struct {
	// Send is the close code to answer with; 0 sends a close frame with
	// no payload (the answer to one).
	Send   codec.CloseCode
	Reason string
	// Peer is the code the connection ends with: the peer's own when it
	// closed, the code sent when the reader failed the connection.
	Peer codec.CloseCode
	// PeerReason is the reason in the peer's close frame.
	PeerReason string
	// Failed is whether a rule was broken (as opposed to a close frame).
	Failed bool
}

func failure(code codec.CloseCode, reason string) (End, bool) {
	return End{Send: code, Reason: reason, Peer: code, Failed: true}, true
}

// The opcodes (RFC 6455 §5.2), and the largest payload of a control frame.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xa
	MaxControl     = 125
)

// Feed reads b, the next bytes from the peer, and calls sink for every
// message and ping it completes. It may unmask b in place. It returns true
// with how to close when the reading ends; every later call returns at once.
func (r *Reader) Feed(b []byte, sink Sink) (End, bool) {
	for len(b) > 0 && !r.done {
		var p []byte
		if !r.inPayload() {
			r.hdr[r.hdrLen] = b[0]
			r.hdrLen++
			b = b[1:]
			if !r.inPayload() {
				continue
			}
			if end, ok := r.header(); ok {
				r.done = true
				return end, true
			}
			if r.length > 0 {
				continue
			}
		} else {
			n := min(len(b), r.length-r.got)
			chunk := b[:n]
			b = b[n:]
			if r.key != [4]byte{} { // a server's frame has none, and a zero key masks nothing
				Mask(chunk, r.key, r.got)
			}
			r.got += n
			switch {
			case r.got < r.length:
				r.payload = append(r.payload, chunk...)
				continue
			case r.payload != nil:
				p = append(r.payload, chunk...)
			default:
				p = chunk // the whole payload came in this read: no copy
			}
		}
		end, ok := r.frame(p, sink)
		r.hdrLen, r.got, r.payload = 0, 0, nil
		if ok {
			r.done = true
			return end, true
		}
	}
	return End{}, false
}

// inPayload is whether the current frame's header is complete.
func (r *Reader) inPayload() bool {
	if r.hdrLen < 2 {
		return false
	}
	n := 2
	switch r.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if r.hdr[1]&0x80 != 0 {
		n += 4
	}
	return int(r.hdrLen) >= n
}

// header judges the complete header in r.hdr and takes its fields.
func (r *Reader) header() (End, bool) {
	b0, b1 := r.hdr[0], r.hdr[1]
	r.opcode, r.fin, r.rsv1 = b0&0x0f, b0&0x80 != 0, b0&0x40 != 0
	length := uint64(b1 & 0x7f)
	rest := r.hdr[2:]
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		length = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
	}
	control := r.opcode >= 8
	switch {
	case b1&0x80 == 0 && !r.Client:
		return failure(codec.CloseProtocolError, "unmasked client frame")
	case b1&0x80 != 0 && r.Client:
		return failure(codec.CloseProtocolError, "masked server frame")
	case b0&0x30 != 0:
		return failure(codec.CloseProtocolError, "reserved bit RSV2 or RSV3 set")
	case r.rsv1 && (!r.Deflate || control || r.opcode == OpContinuation):
		return failure(codec.CloseProtocolError, "reserved bit RSV1 set outside the first frame of a compressed message")
	case length>>63 != 0:
		return failure(codec.CloseProtocolError, "payload length with its most significant bit set")
	case r.opcode > OpBinary && r.opcode < OpClose || r.opcode > OpPong:
		return failure(codec.CloseProtocolError, "reserved opcode")
	case control && !r.fin:
		return failure(codec.CloseProtocolError, "fragmented control frame")
	case control && length > MaxControl:
		return failure(codec.CloseProtocolError, "control frame over 125 bytes")
	case r.opcode == OpContinuation && r.msgOpcode == 0:
		return failure(codec.CloseProtocolError, "continuation frame without a message to continue")
	case (r.opcode == OpText || r.opcode == OpBinary) && r.msgOpcode != 0:
		return failure(codec.CloseProtocolError, "new message inside a fragmented one")
	case !control && length > uint64(r.MaxSize-len(r.msg)):
		return failure(codec.CloseTooBig, "message too big")
	}
	r.key = [4]byte{}
	if b1&0x80 != 0 {
		copy(r.key[:], rest)
	}
	r.length = int(length)
	return End{}, false
}

// frame handles a complete frame whose unmasked payload is p.
func (r *Reader) frame(p []byte, sink Sink) (End, bool) {
	switch r.opcode {
	case OpPing:
		sink.Ping(p)
		return End{}, false
	case OpPong:
		return End{}, false // the read itself shows the peer alive
	case OpClose:
		return peerClose(p)
	case OpContinuation:
		r.msg = append(r.msg, p...)
		if !r.fin {
			return End{}, false
		}
		opcode, deflated, msg := r.msgOpcode, r.msgDeflated, r.msg
		r.msgOpcode, r.msgDeflated, r.msg = 0, false, nil
		return r.deliver(opcode, deflated, msg, sink)
	}
	if !r.fin {
		r.msgOpcode, r.msgDeflated = r.opcode, r.rsv1
		r.msg = append([]byte(nil), p...)
		return End{}, false
	}
	return r.deliver(r.opcode, r.rsv1, p, sink)
}

// deliver hands a whole message to sink, inflated and checked.
func (r *Reader) deliver(opcode byte, deflated bool, p []byte, sink Sink) (End, bool) {
	if deflated {
		var err error
		if p, err = inflate(p, r.MaxSize); err != nil {
			if errors.Is(err, errInflatedTooBig) {
				return failure(codec.CloseTooBig, "message too big once inflated")
			}
			return failure(codec.CloseInvalidData, "invalid compressed data")
		}
	}
	if opcode == OpText && !utf8.Valid(p) {
		return failure(codec.CloseInvalidData, "text message not UTF-8")
	}
	sink.Message(p)
	return End{}, false
}

// peerClose judges the peer's close frame as gws does (RFC 6455 §7.4): a
// valid code of the protocol's own is answered with 1000, an application's
// (3000-4999) is echoed, an empty close gets an empty one; a payload of one
// byte or a code that may not be sent fails with 1002, a reason that is not
// UTF-8 with 1007.
func peerClose(p []byte) (End, bool) {
	if len(p) == 0 {
		return End{Peer: codec.CloseNoStatus}, true
	}
	if len(p) == 1 {
		return failure(codec.CloseProtocolError, "close payload of one byte")
	}
	code := codec.CloseCode(binary.BigEndian.Uint16(p))
	if !utf8.Valid(p[2:]) {
		return End{Send: codec.CloseInvalidData, Reason: "close reason not UTF-8", Peer: code, Failed: true}, true
	}
	reason := string(p[2:])
	switch {
	case code < 1000 || code >= 5000 || code >= 1016 && code < 3000,
		code == 1004 || code == 1005 || code == 1006 || code == 1014 || code == 1015:
		return End{Send: codec.CloseProtocolError, Reason: "invalid close code", Peer: code, PeerReason: reason, Failed: true}, true
	case code < 3000:
		return End{Send: codec.CloseNormal, Peer: code, PeerReason: reason}, true
	}
	return End{Send: code, Peer: code, PeerReason: reason}, true
}

// Mask masks or unmasks b, the payload bytes from offset on, with key
// (RFC 6455 §5.3).
func Mask(b []byte, key [4]byte, offset int) {
	k := binary.LittleEndian.Uint32(key[:])
	if s := uint(offset&3) * 8; s != 0 {
		k = k>>s | k<<(32-s)
	}
	k64 := uint64(k)<<32 | uint64(k)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(k)
		k = k>>8 | k<<24
	}
}

// deflateTail ends a compressed message (RFC 7692 §7.2.2) with the empty
// stored block its sender took off, and a final empty block, so that the
// inflater reaches the end of the stream.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

var errInflatedTooBig = errors.New("inflated message over the size limit")

// inflaters keeps flate readers for reuse: each holds a 32 KiB window, made
// only for the rare compressed message a client sends.
var inflaters sync.Pool

// inflate decompresses a message compressed without context takeover (each
// message alone, the only mode the server negotiates), holding at most
// about limit bytes however much the data would inflate to.
func inflate(p []byte, limit int) ([]byte, error) {
	src := &deflateSource{p: p}
	fr, _ := inflaters.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else if err := fr.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	defer func() {
		_ = fr.(flate.Resetter).Reset(&deflateSource{}, nil) // holds no payload while pooled
		inflaters.Put(fr)
	}()
	out := make([]byte, 0, min(limit+1, 4*len(p)+64))
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				return nil, errInflatedTooBig
			}
			out = append(out, 0)[:len(out)] // grows by the runtime's rule
			out = out[:len(out):min(cap(out), limit+1)]
		}
		n, err := fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if len(out) > limit {
			return nil, errInflatedTooBig
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// deflateSource reads a compressed message and then deflateTail. It is an
// io.ByteReader, so that flate reads it as it is, without a bufio.Reader
// of its own.
type deflateSource struct {
	p    []byte
	tail int
}

func (s *deflateSource) Read(b []byte) (int, error) {
	if len(s.p) > 0 {
		n := copy(b, s.p)
		s.p = s.p[n:]
		return n, nil
	}
	if s.tail == len(deflateTail) {
		return 0, io.EOF
	}
	n := copy(b, deflateTail[s.tail:])
	s.tail += n
	return n, nil
}

func (s *deflateSource) ReadByte() (byte, error) {
	if len(s.p) > 0 {
		c := s.p[0]
		s.p = s.p[1:]
		return c, nil
	}
	if s.tail == len(deflateTail) {
		return 0, io.EOF
	}
	c := deflateTail[s.tail]
	s.tail++
	return c, nil
}
