package codec

import (
	"errors"
	"fmt"
	"math"
)

// Message is one decoded server message, as a client sees it. Only the
// fields of its Op are set.
type Message struct {
	Op Op
	ID uint64 // ACK, PONG, ERROR, AUTHED

	Version     int      // HELLO
	ServerID    string   // HELLO
	HeartbeatMs int      // HELLO
	FieldNames  []string // HELLO

	Acks []SymbolID // ACK

	SID    uint32             // SNAPSHOT, DELTA
	Seq    uint64             // SNAPSHOT, DELTA
	Mask   FieldMask          // SNAPSHOT, DELTA: fields present in Values
	Values [NumFields]float64 // SNAPSHOT, DELTA

	T            float64 // PONG
	ServerTimeUs int64   // PONG, HEARTBEAT

	Code int      // ERROR
	Text string   // ERROR
	Syms []string // ERROR

	State  string // STATUS
	Detail string // STATUS

	ExpiresUs int64 // AUTHED: the token's expiry, unix µs; 0 for none

	Interval string // BARS, BAR: the interval's name
	Bars     []Bar  // BARS: the history, oldest first
	Bar      Bar    // BAR
}

// ErrBadMessage wraps every error of DecodeMessages.
var ErrBadMessage = errors.New("bad server message")

// DecodeMessages decodes every message of one server frame, calling fn for
// each; m is reused. Unknown ops are passed on with only Op set, so that the
// caller can ignore them; unknown trailing elements and field indexes beyond
// the v1 table are ignored. fn's error stops the decoding and is returned.
func (f Format) DecodeMessages(frame []byte, m *Message, fn func(*Message) error) error {
	var r reader
	var fnErr error
	err := f.splitMessages(frame, func(msg []byte) bool {
		r.reset(f, msg)
		if fnErr = decodeMessage(&r, m); fnErr != nil {
			fnErr = fmt.Errorf("%w: %v", ErrBadMessage, fnErr)
			return false
		}
		fnErr = fn(m)
		return fnErr == nil
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return fnErr
}

// decodeMessage decodes the one server message r holds.
func decodeMessage(r *reader, m *Message) error {
	// The interval name is kept for a BAR or BARS of the same interval, so
	// that a stream of them does not allocate.
	interval := m.Interval
	*m = Message{FieldNames: m.FieldNames[:0], Acks: m.Acks[:0], Syms: m.Syms[:0], Bars: m.Bars[:0]}
	n, err := r.arrayLen()
	if err != nil || n < 1 {
		return errors.New("not an array")
	}
	op, err := r.uint()
	if err != nil {
		return errors.New("op is not an integer")
	}
	m.Op = Op(min(op, 255))
	if n < minElems(m.Op) {
		return fmt.Errorf("op %d with %d elements", op, n)
	}
	switch m.Op {
	case OpHello:
		return decodeHello(r, m)
	case OpAck:
		return decodeAck(r, m)
	case OpSnapshot, OpDelta:
		return decodeState(r, m)
	case OpPong:
		return decodePong(r, m)
	case OpError:
		return decodeError(r, m, n)
	case OpHeartbeat:
		m.ServerTimeUs, err = readInt(r)
	case OpStatus:
		if m.State, err = readString(r); err == nil {
			m.Detail, err = readString(r)
		}
	case OpAuthed:
		if m.ID, err = r.uint(); err == nil {
			m.ExpiresUs, err = readInt(r)
		}
	case OpBars, OpBar:
		return decodeBars(r, m, interval)
	}
	return err
}

func readString(r *reader) (string, error) {
	s, err := r.str()
	return string(s), err
}

// readInt reads a number as an integer (time stamps in µs).
func readInt(r *reader) (int64, error) {
	v, err := r.number()
	return int64(v), err
}

// readStrings appends the elements of an array of strings to dst.
func readStrings(r *reader, dst []string) ([]string, error) {
	k, err := r.arrayLen()
	if err != nil {
		return dst, err
	}
	for ; k > 0; k-- {
		s, err := readString(r)
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// decodeHello reads [20, version, serverId, heartbeatMs, [fieldName, ...]].
func decodeHello(r *reader, m *Message) error {
	v, err := r.uint()
	if err != nil {
		return err
	}
	m.Version = int(min(v, math.MaxInt32))
	if m.ServerID, err = readString(r); err != nil {
		return err
	}
	hb, err := r.uint()
	if err != nil {
		return err
	}
	m.HeartbeatMs = int(min(hb, math.MaxInt32))
	m.FieldNames, err = readStrings(r, m.FieldNames)
	return err
}

// decodeAck reads [21, id, [[sym, sid], ...]].
func decodeAck(r *reader, m *Message) error {
	var err error
	if m.ID, err = r.uint(); err != nil {
		return err
	}
	k, err := r.arrayLen()
	if err != nil {
		return err
	}
	for ; k > 0; k-- {
		l, err := r.arrayLen()
		if err != nil || l < 2 {
			return errors.New("ack entry is not [sym, sid]")
		}
		s, err := readString(r)
		if err != nil {
			return err
		}
		sid, err := r.uint()
		if err != nil || sid > math.MaxUint32 {
			return errors.New("ack entry's sid is not a 32-bit integer")
		}
		for ; l > 2; l-- { // elements a later version may add
			if err := r.skip(); err != nil {
				return err
			}
		}
		m.Acks = append(m.Acks, SymbolID{Sym: s, SID: uint32(sid)})
	}
	return nil
}

// decodeState reads [22 or 23, sid, seq, {field: value, ...}].
func decodeState(r *reader, m *Message) error {
	sid, err := r.uint()
	if err != nil {
		return err
	}
	m.SID = uint32(sid)
	if m.Seq, err = r.uint(); err != nil {
		return err
	}
	k, err := r.mapLen()
	if err != nil {
		return errors.New("state is not a map")
	}
	for ; k > 0; k-- {
		f, err := r.uintKey()
		if err != nil {
			return errors.New("state key is not a field index")
		}
		v, err := r.number()
		if err != nil {
			return fmt.Errorf("field %d: %v", f, err)
		}
		if f < NumFields {
			if m.Mask.Has(int(f)) {
				return fmt.Errorf("field %d given twice", f)
			}
			m.Values[f] = v
			m.Mask |= 1 << f
		}
	}
	return nil
}

// decodePong reads [24, id, t, serverTimeUs].
func decodePong(r *reader, m *Message) error {
	var err error
	if m.ID, err = r.uint(); err != nil {
		return err
	}
	if m.T, err = r.number(); err != nil {
		return err
	}
	m.ServerTimeUs, err = readInt(r)
	return err
}

// decodeError reads [25, id, code, message, [sym, ...]?], n elements.
func decodeError(r *reader, m *Message, n int) error {
	var err error
	if m.ID, err = r.uint(); err != nil {
		return err
	}
	code, err := r.uint()
	if err != nil {
		return err
	}
	m.Code = int(min(code, math.MaxInt32))
	if m.Text, err = readString(r); err != nil {
		return err
	}
	if n >= 5 && !r.isNil() {
		m.Syms, err = readStrings(r, m.Syms)
	}
	return err
}

// decodeBars reads [29, sid, seq, interval, [bar, ...]] (BARS) or
// [30, sid, seq, interval, bar] (BAR). prev is the interval name of the
// previous message, reused when this one names the same.
func decodeBars(r *reader, m *Message, prev string) error {
	sid, err := r.uint()
	if err != nil || sid > math.MaxUint32 {
		return errors.New("sid is not a 32-bit integer")
	}
	m.SID = uint32(sid)
	if m.Seq, err = r.uint(); err != nil {
		return err
	}
	name, err := r.str()
	if err != nil {
		return errors.New("interval is not a string")
	}
	if m.Interval = prev; string(name) != prev {
		m.Interval = string(name)
	}
	if m.Op == OpBar {
		return decodeBar(r, &m.Bar)
	}
	k, err := r.arrayLen()
	if err != nil {
		return errors.New("bars are not an array")
	}
	for ; k > 0; k-- {
		var b Bar
		if err := decodeBar(r, &b); err != nil {
			return err
		}
		m.Bars = append(m.Bars, b)
	}
	return nil
}

// decodeBar reads a bar tuple [t, o, h, l, c, v, n]; elements a later
// version may append are skipped.
func decodeBar(r *reader, b *Bar) error {
	n, err := r.arrayLen()
	if err != nil || n < 7 {
		return errors.New("bar is not [t, o, h, l, c, v, n]")
	}
	var v [7]float64
	for i := range v {
		if v[i], err = r.number(); err != nil {
			return fmt.Errorf("bar element %d: %v", i, err)
		}
	}
	for ; n > 7; n-- {
		if err := r.skip(); err != nil {
			return err
		}
	}
	if v[0] != math.Trunc(v[0]) || math.Abs(v[0]) >= MaxSafeInt || v[6] != math.Trunc(v[6]) || v[6] < 0 || v[6] > math.MaxUint32 {
		return errors.New("bar's t or n is not an integer")
	}
	*b = Bar{T: int64(v[0]), Open: v[1], High: v[2], Low: v[3], Close: v[4], Volume: v[5], Trades: uint32(v[6])}
	return nil
}

// minElems is the number of elements a known server op has in v1.
func minElems(op Op) int {
	switch op {
	case OpHello, OpBars, OpBar:
		return 5
	case OpSnapshot, OpDelta, OpPong, OpError:
		return 4
	case OpAck, OpStatus, OpAuthed:
		return 3
	case OpHeartbeat:
		return 2
	}
	return 1
}
