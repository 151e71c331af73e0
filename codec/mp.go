package codec

import (
	"encoding/binary"
	"errors"
	"math"
)

// MaxSafeInt is 2^53: every integer on the wire stays below it in
// magnitude (timestamps, barSince, bar times), so that JavaScript clients
// read it exactly.
const MaxSafeInt = 1 << 53

func appendArrayLen(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x90|byte(n))
	case n < 1<<16:
		return append(dst, 0xdc, byte(n>>8), byte(n))
	default:
		return append(dst, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendMapLen(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x80|byte(n))
	case n < 1<<16:
		return append(dst, 0xde, byte(n>>8), byte(n))
	default:
		return append(dst, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendUint(dst []byte, u uint64) []byte {
	switch {
	case u < 128:
		return append(dst, byte(u))
	case u < 1<<8:
		return append(dst, 0xcc, byte(u))
	case u < 1<<16:
		return append(dst, 0xcd, byte(u>>8), byte(u))
	case u < 1<<32:
		return append(dst, 0xce, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), u)
	}
}

func appendInt(dst []byte, i int64) []byte {
	if i >= 0 {
		return appendUint(dst, uint64(i))
	}
	switch {
	case i >= -32:
		return append(dst, byte(int8(i)))
	case i >= math.MinInt8:
		return append(dst, 0xd0, byte(int8(i)))
	case i >= math.MinInt16:
		return append(dst, 0xd1, byte(uint16(i)>>8), byte(i))
	case i >= math.MinInt32:
		return append(dst, 0xd2, byte(uint32(i)>>24), byte(uint32(i)>>16), byte(uint32(i)>>8), byte(i))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(i))
	}
}

func appendStr(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n < 1<<8:
		dst = append(dst, 0xd9, byte(n))
	case n < 1<<16:
		dst = append(dst, 0xda, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, s...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 0xc3)
	}
	return append(dst, 0xc2)
}

// appendNumber writes v in the most compact form that holds it exactly: an
// integer when v is integral and below 2^53 in magnitude, else a float32 when
// float32 holds v exactly, else a float64.
func appendNumber(dst []byte, v float64) []byte {
	if v == math.Trunc(v) && v > -MaxSafeInt && v < MaxSafeInt {
		return appendInt(dst, int64(v))
	}
	if f := float32(v); float64(f) == v {
		return binary.BigEndian.AppendUint32(append(dst, 0xca), math.Float32bits(f))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(v))
}

var (
	errShort = errors.New("truncated MessagePack")
	errType  = errors.New("wrong MessagePack type")
	errDepth = errors.New("MessagePack nested too deeply")
)

// reader reads the values of a byte slice without allocating, except to
// unescape a JSON string. Its MessagePack methods (mpStr, mpNumber, …) are in
// this file, its JSON methods in json.go, and the value methods the message
// decoders use (str, number, …), which pick one or the other by json, in
// reader.go. Strings it returns alias the input unless they held a JSON
// escape.
type reader struct {
	b    []byte
	i    int
	json bool
}

func (r *reader) done() bool { return r.i >= len(r.b) }

func (r *reader) need(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.i < n {
		return nil, errShort
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p, nil
}

func (r *reader) byte1() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

// peek returns the next type byte without consuming it.
func (r *reader) peek() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	return r.b[r.i], nil
}

func (r *reader) size(width int) (int, error) {
	p, err := r.need(width)
	if err != nil {
		return 0, err
	}
	switch width {
	case 1:
		return int(p[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(p)), nil
	default:
		return int(binary.BigEndian.Uint32(p)), nil
	}
}

func (r *reader) mpArrayLen() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == 0xdc:
		return r.size(2)
	case c == 0xdd:
		return r.size(4)
	}
	r.i--
	return 0, errType
}

func (r *reader) mpMapLen() (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), nil
	case c == 0xde:
		return r.size(2)
	case c == 0xdf:
		return r.size(4)
	}
	r.i--
	return 0, errType
}

// isNil consumes a nil if one is next.
func (r *reader) mpIsNil() bool {
	if r.i < len(r.b) && r.b[r.i] == 0xc0 {
		r.i++
		return true
	}
	return false
}

func (r *reader) mpBoolean() (bool, error) {
	c, err := r.byte1()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	r.i--
	return false, errType
}

func (r *reader) mpStr() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9:
		n, err = r.size(1)
	case c == 0xda:
		n, err = r.size(2)
	case c == 0xdb:
		n, err = r.size(4)
	default:
		r.i--
		return nil, errType
	}
	if err != nil {
		return nil, err
	}
	return r.need(n)
}

// integer reads any MessagePack integer. unsigned is false for negatives.
func (r *reader) integer() (u uint64, neg bool, err error) {
	c, err := r.byte1()
	if err != nil {
		return 0, false, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), false, nil
	case c >= 0xe0:
		return uint64(int64(int8(c))), true, nil
	}
	var p []byte
	switch c {
	case 0xcc, 0xd0:
		p, err = r.need(1)
	case 0xcd, 0xd1:
		p, err = r.need(2)
	case 0xce, 0xd2:
		p, err = r.need(4)
	case 0xcf, 0xd3:
		p, err = r.need(8)
	default:
		r.i--
		return 0, false, errType
	}
	if err != nil {
		return 0, false, err
	}
	switch c {
	case 0xcc:
		return uint64(p[0]), false, nil
	case 0xcd:
		return uint64(binary.BigEndian.Uint16(p)), false, nil
	case 0xce:
		return uint64(binary.BigEndian.Uint32(p)), false, nil
	case 0xcf:
		return binary.BigEndian.Uint64(p), false, nil
	case 0xd0:
		i := int64(int8(p[0]))
		return uint64(i), i < 0, nil
	case 0xd1:
		i := int64(int16(binary.BigEndian.Uint16(p)))
		return uint64(i), i < 0, nil
	case 0xd2:
		i := int64(int32(binary.BigEndian.Uint32(p)))
		return uint64(i), i < 0, nil
	default:
		i := int64(binary.BigEndian.Uint64(p))
		return uint64(i), i < 0, nil
	}
}

// uint reads a non-negative integer.
func (r *reader) mpUint() (uint64, error) {
	start := r.i
	u, neg, err := r.integer()
	if err == nil && neg {
		r.i = start
		return 0, errType
	}
	return u, err
}

// number reads any integer or float as a float64.
func (r *reader) mpNumber() (float64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xca:
		r.i++
		p, err := r.need(4)
		if err != nil {
			return 0, err
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(p))), nil
	case 0xcb:
		r.i++
		p, err := r.need(8)
		if err != nil {
			return 0, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	}
	u, neg, err := r.integer()
	if err != nil {
		return 0, err
	}
	if neg {
		return float64(int64(u)), nil
	}
	return float64(u), nil
}

const maxDepth = 32

// skip consumes one whole value of any type, checking its structure.
func (r *reader) mpSkip() error {
	return r.skipDepth(0)
}

func (r *reader) skipDepth(depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	c, err := r.byte1()
	if err != nil {
		return err
	}
	var n, elems int
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return nil
	case c&0xf0 == 0x80:
		elems = 2 * int(c&0x0f)
	case c&0xf0 == 0x90:
		elems = int(c & 0x0f)
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	default:
		switch c {
		case 0xcc, 0xd0:
			n = 1
		case 0xcd, 0xd1, 0xd4:
			n = 2
		case 0xd5:
			n = 3
		case 0xce, 0xd2, 0xca:
			n = 4
		case 0xd6:
			n = 5
		case 0xcf, 0xd3, 0xcb:
			n = 8
		case 0xd7:
			n = 9
		case 0xd8:
			n = 17
		default:
			if n, elems, err = r.sizedExtent(c); err != nil {
				return err
			}
		}
	}
	if n > 0 {
		if _, err := r.need(n); err != nil {
			return err
		}
	}
	// Every element takes at least one byte: a length beyond what is left
	// is a lie, and is refused before looping over it.
	if elems > len(r.b)-r.i {
		return errShort
	}
	for ; elems > 0; elems-- {
		if err := r.skipDepth(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// sizedExtent reads the length that follows type byte c of a value whose
// length is written out (str 8/16/32, bin, ext, array 16/32, map 16/32) and
// returns the length of its payload in bytes (n) or, for an array or map,
// its number of elements (keys and values counted apart).
func (r *reader) sizedExtent(c byte) (n, elems int, err error) {
	switch c {
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		n, err = r.size(1 << (c - 0xc4))
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		n, err = r.size(1 << (c - 0xd9))
	case 0xc7, 0xc8, 0xc9: // ext: a length, then a type byte and the data
		n, err = r.size(1 << (c - 0xc7))
		n++
	case 0xdc, 0xdd:
		elems, err = r.size(2 << (c - 0xdc))
	case 0xde, 0xdf:
		elems, err = r.size(2 << (c - 0xde))
		elems *= 2
	default:
		return 0, 0, errType
	}
	return n, elems, err
}
