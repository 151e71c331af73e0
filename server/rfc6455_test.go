package server

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
)

// frame is one WebSocket frame as a client puts it on the wire, with every
// field a peer may get wrong.
type frame struct {
	fin      bool
	rsv      byte // the three reserved bits, in the header's bit positions 0x70
	opcode   byte
	unmasked bool
	payload  []byte
	// length64 sends this value as the 64-bit extended length instead of
	// the payload's length (the payload is still sent).
	length64 uint64
}

func (f frame) bytes() []byte {
	b0 := f.rsv | f.opcode
	if f.fin {
		b0 |= 0x80
	}
	var mask byte = 0x80
	if f.unmasked {
		mask = 0
	}
	out := []byte{b0}
	n := len(f.payload)
	switch {
	case f.length64 != 0:
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, f.length64)
	case n <= 125:
		out = append(out, mask|byte(n))
	case n <= 0xffff:
		out = append(out, mask|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	out = append(out, key[:]...)
	for i, c := range f.payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func wire(frames ...frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.bytes()...)
	}
	return b
}

// deflated compresses p as a permessage-deflate sender does: flushed,
// without the last four bytes (RFC 7692 §7.2.1). Writing to a
// bytes.Buffer at a valid level cannot fail.
func deflated(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0x00, 0x00, 0xff, 0xff})
}

func text(fin bool, p string) frame { return frame{fin: fin, opcode: 0x1, payload: []byte(p)} }
func cont(fin bool, p string) frame { return frame{fin: fin, opcode: 0x0, payload: []byte(p)} }
func ping(p []byte) frame           { return frame{fin: true, opcode: 0x9, payload: p} }
func closeFrame(p []byte) frame     { return frame{fin: true, opcode: 0x8, payload: p} }
func closeCode(code uint16, reason string) frame {
	return closeFrame(append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// rawWS is a WebSocket client on a bare TCP connection: it writes frames
// byte for byte and reads the server's frames as they come.
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRawWS upgrades a TCP connection to /ws with the given subprotocol and
// extensions ("" for none).
func dialRawWS(t *testing.T, addr, protocol string, extensions ...string) *rawWS {
	t.Helper()
	return upgradeRawWS(t, addr, protocol, nil, extensions...)
}

// upgradeRawWS is dialRawWS sending early, frames of a client that does not
// wait for the 101, with the upgrade request.
func upgradeRawWS(t *testing.T, addr, protocol string, early []byte, extensions ...string) *rawWS {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if protocol != "" {
		req += "Sec-WebSocket-Protocol: " + protocol + "\r\n"
	}
	for _, e := range extensions {
		req += "Sec-WebSocket-Extensions: " + e + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"+string(early)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return &rawWS{conn: conn, br: br}
}

func (c *rawWS) write(t *testing.T, frames ...frame) {
	t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f.bytes()...)
	}
	if _, err := c.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// next reads one server frame. Server frames are never masked.
func (c *rawWS) next() (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// until reads server frames (skipping data frames and pings) until one of
// the given opcode arrives.
func (c *rawWS) until(t *testing.T, want byte) []byte {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	seen := ""
	for {
		op, p, err := c.next()
		seen += fmt.Sprintf(" %x:%d", op, len(p))
		if err != nil {
			t.Fatalf("waiting for opcode %#x: %v (after%s)", want, err, seen)
		}
		if op == want {
			return p
		}
		if op == 0x8 {
			t.Fatalf("close %v while waiting for opcode %#x", describeClose(p), want)
		}
	}
}

// closed reads until the server's close frame and returns its code (0 for
// an empty close), then checks that the server ends the TCP connection.
func (c *rawWS) closed(t *testing.T) int {
	t.Helper()
	p := c.until(t, 0x8)
	code := 0
	if len(p) >= 2 {
		code = int(binary.BigEndian.Uint16(p))
	}
	if _, err := c.br.ReadByte(); err == nil {
		t.Error("data after the close frame")
	}
	return code
}

func describeClose(p []byte) string {
	if len(p) < 2 {
		return fmt.Sprintf("%x", p)
	}
	return fmt.Sprintf("%d %q", binary.BigEndian.Uint16(p), p[2:])
}

// TestRFC6455 drives the server with raw frames, the cases of
// Autobahn|Testsuite's groups 1 to 7 that apply to a server that does not
// echo messages: framing, reserved bits, opcodes, fragmentation, control
// frames, UTF-8 and the closing handshake. The answer to each is a close
// code (0 is a close frame with no code), or a pong.
func TestRFC6455(t *testing.T) {
	s := startServer(t, setup{Config: Config{Compression: true}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	invalidUTF8 := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"
	cases := []struct {
		name     string
		protocol string // subprotocol offered; "" for none (binary)
		deflate  bool   // permessage-deflate negotiated
		frames   []frame
		want     int // close code the server answers with
	}{
		// Framing (groups 1 and 2).
		{name: "unmasked client frame", frames: []frame{{fin: true, opcode: 0x2, payload: []byte{0x90}, unmasked: true}}, want: 1002},
		{name: "ping of 126 bytes", frames: []frame{ping(make([]byte, 126))}, want: 1002},
		{name: "64-bit length with the most significant bit set", frames: []frame{{fin: true, opcode: 0x2, length64: 1 << 63, payload: []byte{1, 2, 3, 4}}}, want: 1002},
		{name: "64-bit length of all ones", frames: []frame{{fin: true, opcode: 0x2, length64: ^uint64(0), payload: []byte{1}}}, want: 1002},
		{name: "message over the size limit", frames: []frame{{fin: true, opcode: 0x2, length64: 1 << 40}}, want: 1009},
		// Reserved bits (group 3).
		{name: "RSV1 on a text frame", protocol: codec.SubprotocolJSON, frames: []frame{{fin: true, rsv: 0x40, opcode: 0x1, payload: []byte(`{}`)}}, want: 1002},
		{name: "RSV2 on a binary frame", frames: []frame{{fin: true, rsv: 0x20, opcode: 0x2, payload: []byte{0x90}}}, want: 1002},
		{name: "RSV3 on a ping", frames: []frame{{fin: true, rsv: 0x10, opcode: 0x9}}, want: 1002},
		{name: "RSV1 and RSV3 on a close", frames: []frame{{fin: true, rsv: 0x50, opcode: 0x8}}, want: 1002},
		// With permessage-deflate RSV1 marks a compressed message (RFC 7692);
		// gws then checked no reserved bit at all.
		{name: "deflate: RSV2 on a binary frame", deflate: true, frames: []frame{{fin: true, rsv: 0x20, opcode: 0x2, payload: []byte{0x90}}}, want: 1002},
		{name: "deflate: RSV3 on a binary frame", deflate: true, frames: []frame{{fin: true, rsv: 0x10, opcode: 0x2, payload: []byte{0x90}}}, want: 1002},
		{name: "deflate: RSV1 on a ping", deflate: true, frames: []frame{{fin: true, rsv: 0x40, opcode: 0x9}}, want: 1002},
		{name: "deflate: RSV1 on a close", deflate: true, frames: []frame{{fin: true, rsv: 0x40, opcode: 0x8, payload: []byte{0x03, 0xe8}}}, want: 1002},
		{name: "deflate: RSV1 on a continuation frame", deflate: true, frames: []frame{{opcode: 0x2, payload: []byte{0x93}}, {fin: true, rsv: 0x40, opcode: 0x0, payload: []byte{0x04}}}, want: 1002},
		{name: "deflate: 64-bit length with the most significant bit set", deflate: true, frames: []frame{{fin: true, opcode: 0x2, length64: 1 << 63, payload: []byte{1}}}, want: 1002},
		// A compressed message is held to the size limit once inflated too.
		{name: "deflate: message inflating past the size limit", deflate: true, frames: []frame{{fin: true, rsv: 0x40, opcode: 0x2, payload: deflated(make([]byte, 1<<20))}}, want: 1009},
		{name: "deflate: compressed data that is not deflate", deflate: true, frames: []frame{{fin: true, rsv: 0x40, opcode: 0x2, payload: []byte{0xff, 0xff, 0xff}}}, want: 1007},
		// Opcodes (group 4).
		{name: "reserved data opcode 3", frames: []frame{{fin: true, opcode: 0x3}}, want: 1002},
		{name: "reserved data opcode 7 with payload", frames: []frame{{fin: true, opcode: 0x7, payload: []byte("reserved")}}, want: 1002},
		{name: "reserved control opcode 11", frames: []frame{{fin: true, opcode: 0xb}}, want: 1002},
		{name: "reserved control opcode 15 with payload", frames: []frame{{fin: true, opcode: 0xf, payload: []byte("reserved")}}, want: 1002},
		// Fragmentation (group 5).
		{name: "fragmented ping", frames: []frame{{opcode: 0x9, payload: []byte("frag")}, cont(true, "ment")}, want: 1002},
		{name: "fragmented pong", frames: []frame{{opcode: 0xa, payload: []byte("frag")}, cont(true, "ment")}, want: 1002},
		{name: "continuation without a start", frames: []frame{cont(true, "orphan")}, want: 1002},
		{name: "unfinished continuation without a start", frames: []frame{cont(false, "orphan"), cont(true, "end")}, want: 1002},
		{name: "new text frame inside a fragmented message", protocol: codec.SubprotocolJSON, frames: []frame{text(false, `[4,7,`), text(true, `1]`)}, want: 1002},
		// UTF-8 (group 6).
		{name: "invalid UTF-8 in a text frame", protocol: codec.SubprotocolJSON, frames: []frame{text(true, invalidUTF8)}, want: 1007},
		{name: "invalid UTF-8 across fragments", protocol: codec.SubprotocolJSON, frames: []frame{text(false, "\xce\xba\xe1"), cont(false, "\xbd\xb9\xed"), cont(true, "\xa0\x80")}, want: 1007},
		{name: "truncated code point at the end", protocol: codec.SubprotocolJSON, frames: []frame{text(true, "\xf0\x90\x80")}, want: 1007},
		{name: "invalid UTF-8 in a close reason", frames: []frame{closeCode(1000, invalidUTF8)}, want: 1007},
		// Closing handshake (group 7).
		{name: "close without a payload", frames: []frame{closeFrame(nil)}, want: 0},
		{name: "close of one byte", frames: []frame{closeFrame([]byte{0x03})}, want: 1002},
		{name: "close with a reason of 124 bytes", frames: []frame{closeCode(1000, strings.Repeat("*", 124))}, want: 1002},
		{name: "close with a reason of 123 bytes", frames: []frame{closeCode(1000, strings.Repeat("*", 123))}, want: 1000},
		{name: "close after a fragment", protocol: codec.SubprotocolJSON, frames: []frame{text(false, `[4,7,`), closeCode(1000, "")}, want: 1000},
		{name: "close twice", frames: []frame{closeCode(1000, ""), closeCode(1000, "")}, want: 1000},
		{name: "close then ping", frames: []frame{closeCode(1000, ""), ping([]byte("late"))}, want: 1000},
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, struct {
			name     string
			protocol string
			deflate  bool
			frames   []frame
			want     int
		}{name: fmt.Sprintf("invalid close code %d", code), frames: []frame{closeCode(code, "")}, want: 1002})
	}
	// RFC 6455 §5.5.1: the answer to a close "typically" echoes its code;
	// gws echoes the application codes (3000-4999) and answers 1000 to the
	// protocol's own (1000-1011), which Autobahn's cases 7.7.x accept too.
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011} {
		cases = append(cases, struct {
			name     string
			protocol string
			deflate  bool
			frames   []frame
			want     int
		}{name: fmt.Sprintf("valid close code %d", code), frames: []frame{closeCode(code, "bye")}, want: 1000})
	}
	for _, code := range []uint16{3000, 3999, 4000, 4999} {
		cases = append(cases, struct {
			name     string
			protocol string
			deflate  bool
			frames   []frame
			want     int
		}{name: fmt.Sprintf("valid close code %d is echoed", code), frames: []frame{closeCode(code, "bye")}, want: int(code)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ext []string
			if tc.deflate {
				ext = append(ext, "permessage-deflate")
			}
			c := dialRawWS(t, s.Addr(), tc.protocol, ext...)
			c.until(t, byteIf(tc.protocol == codec.SubprotocolJSON, 0x1, 0x2)) // HELLO
			c.write(t, tc.frames...)
			if got := c.closed(t); got != tc.want {
				t.Errorf("server closed with %d, want %d", got, tc.want)
			}
		})
	}
}

func byteIf(cond bool, a, b byte) byte {
	if cond {
		return a
	}
	return b
}

// TestRFC6455Pings checks the answers to control frames that keep the
// connection open: a ping gets a pong with its payload (also between the
// fragments of a message, and 125 bytes sent one byte at a time), an
// unsolicited pong is ignored.
func TestRFC6455Pings(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 5, Rate: 50}})
	c := dialRawWS(t, s.Addr(), codec.SubprotocolJSON)
	c.until(t, 0x1)
	for _, p := range [][]byte{nil, []byte("hello"), {0x00, 0xff, 0xfe, 0xfd, 0xfc}, bytes.Repeat([]byte{0xfe}, 125)} {
		c.write(t, ping(p))
		if got := c.until(t, 0xa); !bytes.Equal(got, p) {
			t.Errorf("pong %x, want %x", got, p)
		}
	}
	c.write(t, frame{fin: true, opcode: 0xa, payload: []byte("unsolicited")})
	// Byte by byte: the server must reassemble a frame from any split.
	for _, b := range ping([]byte("slow")).bytes() {
		if _, err := c.conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := c.until(t, 0xa); string(got) != "slow" {
		t.Errorf("pong %q after a ping sent byte by byte, want slow", got)
	}
	// A ping between the fragments of a request, which then goes through.
	// The pong may come after the answer: a poll worker does not wait on
	// the socket to answer a ping.
	c.write(t, text(false, `[4,7,`), ping([]byte("between")), cont(true, `1]`))
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for pong, answer := false, false; !pong || !answer; {
		op, p, err := c.next()
		if err != nil {
			t.Fatalf("waiting for the pong and the answer (seen: pong %t, answer %t): %v", pong, answer, err)
		}
		switch {
		case op == 0xa:
			if string(p) != "between" {
				t.Errorf("pong %q, want between", p)
			}
			pong = true
		case op == 0x1 && bytes.Contains(p, []byte(`[24,7,`)):
			answer = true
		case op == 0x8:
			t.Fatalf("close %v while waiting for the pong and the answer", describeClose(p))
		}
	}
	c.write(t, closeCode(1000, ""))
	if got := c.closed(t); got != 1000 {
		t.Errorf("close %d, want 1000", got)
	}
}

// TestReaderDeflate checks that the frame reader inflates compressed
// messages: its rule for permessage-deflate must be gws's, which answers
// the handshake, or every browser's compressed request would fail the
// connection.
func TestReaderDeflate(t *testing.T) {
	s := startServer(t, setup{Config: Config{Compression: true}, Demo: demo.Config{Symbols: 5, Rate: 50}})
	rc := &wireConn{t: t, format: codec.Binary, closed: make(chan struct{})}
	ws, resp, err := gws.NewClient(rc, &gws.ClientOption{
		Addr:              "ws://" + s.Addr() + "/ws",
		RequestHeader:     http.Header{"Sec-WebSocket-Protocol": {codec.SubprotocolBinary}},
		PermessageDeflate: gws.PermessageDeflate{Enabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("permessage-deflate not negotiated: %q", ext)
	}
	rc.ws = ws
	go ws.ReadLoop()
	defer func() {
		_ = ws.WriteClose(1000, nil)
		<-rc.closed
	}()
	// Over gws's threshold of 512 bytes: sent compressed, with RSV1.
	syms := make([]string, 120)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYM%04d", i)
	}
	rc.send(codec.Binary.AppendSub(nil, 7, syms, nil))
	ack, _ := rc.waitMsg("ACK 7", 0, func(m *codec.Message) bool { return m.Op == codec.OpAck && m.ID == 7 })
	if len(ack.Acks) != len(syms) {
		t.Errorf("ACK of %d symbols, want %d", len(ack.Acks), len(syms))
	}
}
