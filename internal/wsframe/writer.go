package wsframe

import "encoding/binary"

// Header is a frame's header (RFC 6455 §5.2).
type Header struct {
	Fin    bool
	RSV    byte // the three reserved bits, in their places (0x70)
	Opcode byte
	// Masked is whether the payload is masked with Key, as every frame a
	// client sends must be.
	Masked bool
	Key    [4]byte
	Length uint64
}

// Len is the length of the header Append writes: 2 to 14 bytes.
func (h Header) Len() int {
	n := 2
	switch {
	case h.Length > 0xffff:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// Append appends the header, in the shortest length encoding.
func (h Header) Append(dst []byte) []byte {
	b0 := h.RSV&0x70 | h.Opcode&0x0f
	if h.Fin {
		b0 |= 0x80
	}
	var mask byte
	if h.Masked {
		mask = 0x80
	}
	switch {
	case h.Length <= 125:
		dst = append(dst, b0, mask|byte(h.Length))
	case h.Length <= 0xffff:
		dst = append(dst, b0, mask|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, mask|127)
		dst = binary.BigEndian.AppendUint64(dst, h.Length)
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}

// AppendFrame appends a frame of header h carrying payload, masked if h
// is; h.Length is set from the payload.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	h.Length = uint64(len(payload))
	dst = h.Append(dst)
	start := len(dst)
	dst = append(dst, payload...)
	if h.Masked {
		Mask(dst[start:], h.Key, 0)
	}
	return dst
}
