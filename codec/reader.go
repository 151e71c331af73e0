package codec

import (
	"errors"
	"strconv"
)

// The reader's protocol-level methods, for the message decoders (decode.go,
// command.go). A map's keys are read with str, or uintKey when they are
// field indexes (JSON object keys are always strings).

// reset points the reader at one whole message of format f.
func (r *reader) reset(f Format, msg []byte) { *r = reader{b: msg, json: f == JSON} }

// format is the format of the message being read.
func (r *reader) format() Format {
	if r.json {
		return JSON
	}
	return Binary
}

// arrayLen reads the start of an array and returns its length.
func (r *reader) arrayLen() (int, error) {
	if r.json {
		return r.jsonArrayLen()
	}
	return r.mpArrayLen()
}

// mapLen reads the start of a map (a JSON object) and returns its number of
// entries.
func (r *reader) mapLen() (int, error) {
	if r.json {
		return r.jsonMapLen()
	}
	return r.mpMapLen()
}

// uint reads a non-negative integer; in JSON an integer literal (7, not 7.0).
func (r *reader) uint() (uint64, error) {
	if r.json {
		return r.jsonUint()
	}
	return r.mpUint()
}

// number reads any number as a float64.
func (r *reader) number() (float64, error) {
	if r.json {
		return r.jsonNumber()
	}
	return r.mpNumber()
}

// str reads a string.
func (r *reader) str() ([]byte, error) {
	if r.json {
		return r.jsonStr()
	}
	return r.mpStr()
}

func (r *reader) boolean() (bool, error) {
	if r.json {
		return r.jsonBoolean()
	}
	return r.mpBoolean()
}

// isNil consumes a nil (null) if one is next.
func (r *reader) isNil() bool {
	if r.json {
		return r.jsonIsNil()
	}
	return r.mpIsNil()
}

// skip consumes one value of any type.
func (r *reader) skip() error {
	if r.json {
		return r.jsonSkip()
	}
	return r.mpSkip()
}

// uintKey reads a map key that is a non-negative integer: in JSON, a string
// of decimal digits.
func (r *reader) uintKey() (uint64, error) {
	if r.json {
		k, err := r.jsonStr()
		if err != nil {
			return 0, err
		}
		return parseJSONUint(k)
	}
	return r.mpUint()
}

// rawNumber reads a number and returns its encoding, unchanged.
func (r *reader) rawNumber() ([]byte, error) {
	if r.json {
		num, _, err := r.numberText()
		return num, err
	}
	start := r.i
	if _, err := r.mpNumber(); err != nil {
		return nil, err
	}
	return r.b[start:r.i], nil
}

// splitMessages calls fn with each top-level value of frame, in order, and
// returns the error that ends the frame when its structure is broken. fn
// returns false to stop. A JSON frame may separate its values by whitespace
// or not at all.
func (f Format) splitMessages(frame []byte, fn func(msg []byte) bool) error {
	if f == JSON {
		s := reader{b: frame, json: true}
		for {
			s.space()
			if s.i == len(frame) {
				return nil
			}
			start := s.i
			if err := s.skipValue(0); err != nil {
				return err
			}
			if !fn(frame[start:s.i]) {
				return nil
			}
		}
	}
	r := reader{b: frame}
	for !r.done() {
		start := r.i
		if err := r.mpSkip(); err != nil {
			return err
		}
		if !fn(frame[start:r.i]) {
			return nil
		}
	}
	return nil
}

// The JSON value methods of reader.

// sep steps over whitespace and separators up to the next value. The
// message's syntax has been checked as a whole, and the decoders read every
// element of the arrays and maps they enter, so what stands before the next
// value can only be whitespace, ',' ':' and the ends of the containers
// just read.
func (s *reader) sep() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r', ',', ':', ']', '}':
			s.i++
		default:
			return
		}
	}
}

func (s *reader) jsonArrayLen() (int, error) { return s.jsonLen('[') }

func (s *reader) jsonMapLen() (int, error) { return s.jsonLen('{') }

// jsonLen reads the opening bracket of an array ('[') or object ('{') and
// returns its number of elements or members, counted by scanning it once
// (JSON has no length prefix).
func (s *reader) jsonLen(open byte) (int, error) {
	s.sep()
	if s.i >= len(s.b) || s.b[s.i] != open {
		return 0, errType
	}
	start := s.i
	var n int
	var err error
	if open == '[' {
		n, err = s.skipArray(0)
	} else {
		n, err = s.skipObject(0)
	}
	s.i = start + 1
	return n, err
}

var errNotUint = errors.New("not a non-negative integer literal")

func (s *reader) jsonUint() (uint64, error) {
	s.sep()
	if !s.isNumberStart() {
		return 0, errType
	}
	num, err := s.scanNumber()
	if err != nil {
		return 0, err
	}
	return parseJSONUint(num)
}

// parseJSONUint parses decimal digits only: no sign, fraction or exponent.
func parseJSONUint(b []byte) (uint64, error) {
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotUint
		}
	}
	u, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, errNotUint
	}
	return u, nil
}

func (s *reader) jsonNumber() (float64, error) {
	_, v, err := s.numberText()
	return v, err
}

func (s *reader) jsonSkip() error {
	s.sep()
	return s.skipValue(0)
}

// numberText reads a number whose value a float64 holds (1e400 is
// refused) and returns both its text and its value.
func (s *reader) numberText() ([]byte, float64, error) {
	s.sep()
	if !s.isNumberStart() {
		return nil, 0, errType
	}
	num, err := s.scanNumber()
	if err != nil {
		return nil, 0, err
	}
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return nil, 0, errors.New("number out of range")
	}
	return num, v, nil
}

func (s *reader) jsonStr() ([]byte, error) {
	s.sep()
	if !s.isStringStart() {
		return nil, errType
	}
	raw, plain, err := s.scanString()
	if err != nil || plain {
		return raw, err
	}
	return unescapeJSON(raw), nil
}

func (s *reader) jsonBoolean() (bool, error) {
	s.sep()
	switch {
	case s.consume("true"):
		return true, nil
	case s.consume("false"):
		return false, nil
	}
	return false, errType
}

func (s *reader) jsonIsNil() bool {
	s.sep()
	return s.consume("null")
}
