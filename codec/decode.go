package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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
}

// ErrBadMessage wraps every error of DecodeMessages.
var ErrBadMessage = errors.New("bad server message")

// DecodeMessages decodes every message of one server frame, calling fn for
// each; m is reused. Unknown ops are passed on with only Op set, so that the
// caller can ignore them; unknown trailing elements and field indexes beyond
// the v1 table are ignored. fn's error stops the decoding and is returned.
func (f Format) DecodeMessages(frame []byte, m *Message, fn func(*Message) error) error {
	if f == JSON {
		dec := json.NewDecoder(bytes.NewReader(frame))
		dec.UseNumber()
		for {
			var arr []any
			if err := dec.Decode(&arr); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("%w: %v", ErrBadMessage, err)
			}
			if err := decodeMessageJSON(arr, m); err != nil {
				return fmt.Errorf("%w: %v", ErrBadMessage, err)
			}
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	r := mpReader{b: frame}
	for !r.done() {
		start := r.i
		if err := r.skip(); err != nil {
			return fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
		if err := decodeMessageMsgpack(&mpReader{b: frame[start:r.i]}, m); err != nil {
			return fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func decodeMessageMsgpack(r *mpReader, m *Message) error {
	*m = Message{FieldNames: m.FieldNames[:0], Acks: m.Acks[:0], Syms: m.Syms[:0]}
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
	str := func() (string, error) { s, err := r.str(); return string(s), err }
	switch m.Op {
	case OpHello:
		v, err := r.uint()
		if err != nil {
			return err
		}
		m.Version = int(v)
		if m.ServerID, err = str(); err != nil {
			return err
		}
		hb, err := r.uint()
		if err != nil {
			return err
		}
		m.HeartbeatMs = int(hb)
		k, err := r.arrayLen()
		if err != nil {
			return err
		}
		for ; k > 0; k-- {
			s, err := str()
			if err != nil {
				return err
			}
			m.FieldNames = append(m.FieldNames, s)
		}
	case OpAck:
		if m.ID, err = r.uint(); err != nil {
			return err
		}
		k, err := r.arrayLen()
		if err != nil {
			return err
		}
		for ; k > 0; k-- {
			if l, err := r.arrayLen(); err != nil || l < 2 {
				return errors.New("ack entry is not [sym, sid]")
			}
			s, err := str()
			if err != nil {
				return err
			}
			sid, err := r.uint()
			if err != nil {
				return err
			}
			m.Acks = append(m.Acks, SymbolID{Sym: s, SID: uint32(sid)})
		}
	case OpSnapshot, OpDelta:
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
			return err
		}
		for ; k > 0; k-- {
			f, err := r.uint()
			if err != nil {
				return errors.New("state key is not a field index")
			}
			v, err := r.number()
			if err != nil {
				return fmt.Errorf("field %d: %v", f, err)
			}
			if f < NumFields {
				m.Values[f] = v
				m.Mask |= 1 << f
			}
		}
	case OpPong:
		if m.ID, err = r.uint(); err != nil {
			return err
		}
		if m.T, err = r.number(); err != nil {
			return err
		}
		t, err := r.number()
		if err != nil {
			return err
		}
		m.ServerTimeUs = int64(t)
	case OpError:
		if m.ID, err = r.uint(); err != nil {
			return err
		}
		code, err := r.uint()
		if err != nil {
			return err
		}
		m.Code = int(code)
		if m.Text, err = str(); err != nil {
			return err
		}
		if n >= 5 && !r.isNil() {
			k, err := r.arrayLen()
			if err != nil {
				return err
			}
			for ; k > 0; k-- {
				s, err := str()
				if err != nil {
					return err
				}
				m.Syms = append(m.Syms, s)
			}
		}
	case OpHeartbeat:
		t, err := r.number()
		if err != nil {
			return err
		}
		m.ServerTimeUs = int64(t)
	case OpStatus:
		if m.State, err = str(); err != nil {
			return err
		}
		if m.Detail, err = str(); err != nil {
			return err
		}
	case OpAuthed:
		if m.ID, err = r.uint(); err != nil {
			return err
		}
		t, err := r.number()
		if err != nil {
			return err
		}
		m.ExpiresUs = int64(t)
	}
	return nil
}

func decodeMessageJSON(arr []any, m *Message) error {
	*m = Message{FieldNames: m.FieldNames[:0], Acks: m.Acks[:0], Syms: m.Syms[:0]}
	if len(arr) < 1 {
		return errors.New("empty array")
	}
	num := func(i int) (float64, error) {
		if i >= len(arr) {
			return 0, fmt.Errorf("missing element %d", i)
		}
		n, ok := arr[i].(json.Number)
		if !ok {
			return 0, fmt.Errorf("element %d is not a number", i)
		}
		return n.Float64()
	}
	str := func(i int) (string, error) {
		if i >= len(arr) {
			return "", fmt.Errorf("missing element %d", i)
		}
		s, ok := arr[i].(string)
		if !ok {
			return "", fmt.Errorf("element %d is not a string", i)
		}
		return s, nil
	}
	list := func(i int) ([]any, error) {
		if i >= len(arr) {
			return nil, fmt.Errorf("missing element %d", i)
		}
		l, ok := arr[i].([]any)
		if !ok {
			return nil, fmt.Errorf("element %d is not an array", i)
		}
		return l, nil
	}
	op, err := num(0)
	if err != nil {
		return err
	}
	m.Op = Op(min(max(op, 0), 255))
	var errs []error
	must := func(err error) { errs = append(errs, err) }
	switch m.Op {
	case OpHello:
		v, err := num(1)
		must(err)
		m.Version = int(v)
		m.ServerID, err = str(2)
		must(err)
		hb, err := num(3)
		must(err)
		m.HeartbeatMs = int(hb)
		names, err := list(4)
		must(err)
		for _, n := range names {
			s, _ := n.(string)
			m.FieldNames = append(m.FieldNames, s)
		}
	case OpAck:
		id, err := num(1)
		must(err)
		m.ID = uint64(id)
		l, err := list(2)
		must(err)
		for _, e := range l {
			pair, ok := e.([]any)
			if !ok || len(pair) < 2 {
				return errors.New("ack entry is not [sym, sid]")
			}
			s, _ := pair[0].(string)
			n, _ := pair[1].(json.Number)
			sid, err := strconv.ParseUint(string(n), 10, 32)
			must(err)
			m.Acks = append(m.Acks, SymbolID{Sym: s, SID: uint32(sid)})
		}
	case OpSnapshot, OpDelta:
		sid, err := num(1)
		must(err)
		m.SID = uint32(sid)
		seq, err := num(2)
		must(err)
		m.Seq = uint64(seq)
		if len(arr) < 4 {
			return errors.New("missing state")
		}
		state, ok := arr[3].(map[string]any)
		if !ok {
			return errors.New("state is not an object")
		}
		for k, v := range state {
			f, err := strconv.Atoi(k)
			if err != nil || f < 0 {
				return fmt.Errorf("state key %q is not a field index", k)
			}
			n, ok := v.(json.Number)
			if !ok {
				return fmt.Errorf("field %d is not a number", f)
			}
			x, err := n.Float64()
			must(err)
			if f < NumFields {
				m.Values[f] = x
				m.Mask |= 1 << uint(f)
			}
		}
	case OpPong:
		id, err := num(1)
		must(err)
		m.ID = uint64(id)
		m.T, err = num(2)
		must(err)
		t, err := num(3)
		must(err)
		m.ServerTimeUs = int64(t)
	case OpError:
		id, err := num(1)
		must(err)
		m.ID = uint64(id)
		code, err := num(2)
		must(err)
		m.Code = int(code)
		m.Text, err = str(3)
		must(err)
		if len(arr) > 4 {
			l, err := list(4)
			must(err)
			for _, s := range l {
				str, _ := s.(string)
				m.Syms = append(m.Syms, str)
			}
		}
	case OpHeartbeat:
		t, err := num(1)
		must(err)
		m.ServerTimeUs = int64(t)
	case OpStatus:
		m.State, err = str(1)
		must(err)
		m.Detail, err = str(2)
		must(err)
	case OpAuthed:
		id, err := num(1)
		must(err)
		m.ID = uint64(id)
		exp, err := num(2)
		must(err)
		m.ExpiresUs = int64(exp)
	}
	return errors.Join(errs...)
}

// minElems is the number of elements a known server op has in v1.
func minElems(op Op) int {
	switch op {
	case OpHello:
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
