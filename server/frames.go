package server

import (
	"encoding/binary"
	"errors"
	"io"
)

// frameGuard sits between a WebSocket connection and gws's reader and fails
// the frame headers that gws v1.8.9 lets through against RFC 6455 §5.2 and
// RFC 7692 §6: RSV2 and RSV3 when permessage-deflate is negotiated (gws
// checks the reserved bits only without it), RSV1 on a control frame or a
// continuation frame, and a 64-bit length with its top bit set (on which
// gws's reader panics). gws checks the rest of the header itself. The guard
// only reads headers: payload bytes pass through uncounted but for their
// number.
type frameGuard struct {
	src io.Reader
	// deflate is whether permessage-deflate was negotiated: RSV1 then marks
	// the first frame of a compressed message.
	deflate bool
	// fail closes the connection with 1002 and the reason; set once the
	// connection is upgraded, before its read loop starts.
	fail func(reason string)

	hdr  [14]byte
	have int    // header bytes collected
	skip uint64 // payload bytes of the current frame still to pass
	err  error
}

var errMalformedFrame = errors.New("websocket: malformed frame")

func (g *frameGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.src.Read(p)
	if reason := g.scan(p[:n]); reason != "" {
		g.err = errMalformedFrame
		g.fail(reason)
		return 0, g.err
	}
	return n, err
}

// scan follows the frames in b, a continuation of the stream, and returns
// why a header is malformed, or "".
func (g *frameGuard) scan(b []byte) string {
	for len(b) > 0 {
		if g.skip > 0 {
			n := min(uint64(len(b)), g.skip)
			g.skip -= n
			b = b[n:]
			continue
		}
		g.hdr[g.have] = b[0]
		g.have++
		b = b[1:]
		if g.have < 2 || g.have < headerSize(&g.hdr) {
			continue
		}
		length, reason := g.check()
		if reason != "" {
			return reason
		}
		g.have, g.skip = 0, length
	}
	return ""
}

// headerSize is the size of the header whose first two bytes are in h.
func headerSize(h *[14]byte) int {
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// check judges the complete header in g.hdr and returns its payload length.
func (g *frameGuard) check() (uint64, string) {
	b0 := g.hdr[0]
	opcode := b0 & 0x0f
	length := uint64(g.hdr[1] & 0x7f)
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(g.hdr[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(g.hdr[2:10])
	}
	switch {
	case b0&0x30 != 0:
		return 0, "reserved bit RSV2 or RSV3 set"
	case b0&0x40 != 0 && (!g.deflate || opcode == 0 || opcode >= 8):
		return 0, "reserved bit RSV1 set outside the first frame of a compressed message"
	case length>>63 != 0:
		return 0, "payload length with its most significant bit set"
	}
	return length, ""
}
