package codec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Update is one price update: the fields it carries and their values. Fields
// it leaves out keep their value in the store.
type Update struct {
	// Sym is the symbol. After DecodeRecord it aliases the record's key or
	// value: copy it before the record's buffer is reused.
	Sym []byte
	// Mask holds the fields present in Values.
	Mask FieldMask
	// Values holds the value of each field in Mask; the others are ignored.
	Values [NumFields]float64
}

// Set stores v as the value of field f and marks it present.
func (u *Update) Set(f int, v float64) {
	u.Values[f] = v
	u.Mask |= 1 << uint(f)
}

// Reset clears the update for reuse.
func (u *Update) Reset() { *u = Update{} }

// Reasons a record is refused. DecodeRecord wraps one of them, so callers
// count refusals per reason with errors.Is.
var (
	ErrMalformed = errors.New("malformed record")             // neither a JSON object nor a MessagePack map
	ErrWrongType = errors.New("field of the wrong type")      // e.g. a string price
	ErrBadValue  = errors.New("field value out of range")     // NaN, infinity, a fractional or negative ts
	ErrNoSymbol  = errors.New("record has no symbol")         // empty key and no sym field
	ErrBadSymbol = errors.New("record has an invalid symbol") // see ValidSymbol
)

// RecordReason names the reason err (from DecodeRecord) stands for, for
// metrics labels: "malformed", "wrong_type", "bad_value", "no_symbol",
// "bad_symbol" or "other".
func RecordReason(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrWrongType):
		return "wrong_type"
	case errors.Is(err, ErrBadValue):
		return "bad_value"
	case errors.Is(err, ErrNoSymbol):
		return "no_symbol"
	case errors.Is(err, ErrBadSymbol):
		return "bad_symbol"
	}
	return "other"
}

// DecodeRecord decodes a Kafka record into u: value is a JSON object or a
// MessagePack map of field names (plus "sym"); a non-empty key is the symbol
// and wins over "sym". Unknown keys are ignored. On error u is left in an
// unspecified state and must not be applied.
func DecodeRecord(key, value []byte, u *Update) error {
	u.Reset()
	i := 0
	for i < len(value) && isJSONSpace(value[i]) {
		i++
	}
	var err error
	switch {
	case i < len(value) && value[i] == '{':
		err = decodeRecordJSON(value[i:], u)
	case len(value) > 0:
		err = decodeRecordMsgpack(value, u)
	default:
		err = fmt.Errorf("%w: empty value", ErrMalformed)
	}
	if err != nil {
		return err
	}
	if len(key) > 0 {
		u.Sym = key
	}
	if len(u.Sym) == 0 {
		return ErrNoSymbol
	}
	if !ValidSymbol(u.Sym) {
		return fmt.Errorf("%w: %q", ErrBadSymbol, u.Sym)
	}
	return nil
}

func checkValue(f int, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%w: %s is not finite", ErrBadValue, FieldNames[f])
	}
	if f == FieldTS && (v < 0 || v != math.Trunc(v) || v >= MaxSafeInt) {
		return fmt.Errorf("%w: ts %v is not a unix-microsecond integer", ErrBadValue, v)
	}
	return nil
}

func decodeRecordMsgpack(b []byte, u *Update) error {
	r := reader{b: b}
	n, err := r.mpMapLen()
	if err != nil {
		return fmt.Errorf("%w: not a MessagePack map: %v", ErrMalformed, err)
	}
	for ; n > 0; n-- {
		k, err := r.mpStr()
		if err != nil {
			return fmt.Errorf("%w: map key: %v", ErrMalformed, err)
		}
		if string(k) == "sym" {
			if r.mpIsNil() {
				continue
			}
			s, err := r.mpStr()
			if err == errType {
				if err := r.mpSkip(); err != nil {
					return fmt.Errorf("%w: %v", ErrMalformed, err)
				}
				return fmt.Errorf("%w: sym is not a string", ErrWrongType)
			}
			if err != nil {
				return fmt.Errorf("%w: sym: %v", ErrMalformed, err)
			}
			u.Sym = s
			continue
		}
		f, ok := fieldIndexBytes(k)
		if !ok {
			if err := r.mpSkip(); err != nil {
				return fmt.Errorf("%w: value of %q: %v", ErrMalformed, k, err)
			}
			continue
		}
		v, err := r.mpNumber()
		if err == errType {
			// Finish reading the record first: a structural error wins
			// over a type error, which is the more useful report.
			if err := r.mpSkip(); err != nil {
				return fmt.Errorf("%w: value of %s: %v", ErrMalformed, FieldNames[f], err)
			}
			return fmt.Errorf("%w: %s is not a number", ErrWrongType, FieldNames[f])
		}
		if err != nil {
			return fmt.Errorf("%w: value of %s: %v", ErrMalformed, FieldNames[f], err)
		}
		if err := checkValue(f, v); err != nil {
			return err
		}
		u.Set(f, v)
	}
	if !r.done() {
		return fmt.Errorf("%w: %d trailing bytes after the map", ErrMalformed, len(b)-r.i)
	}
	return nil
}

func decodeRecordJSON(b []byte, u *Update) error {
	s := reader{b: b, json: true}
	if err := s.object(func(key []byte) error {
		if string(key) == "sym" {
			v, isStr, err := s.stringOrSkip()
			if err != nil {
				return err
			}
			if !isStr {
				return fmt.Errorf("%w: sym is not a string", ErrWrongType)
			}
			u.Sym = v
			return nil
		}
		f, ok := fieldIndexBytes(key)
		if !ok {
			return s.skipValue(0)
		}
		num, isNum, err := s.numberOrSkip()
		if err != nil {
			return err
		}
		if !isNum {
			return fmt.Errorf("%w: %s is not a number", ErrWrongType, FieldNames[f])
		}
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadValue, FieldNames[f], err)
		}
		if err := checkValue(f, v); err != nil {
			return err
		}
		u.Set(f, v)
		return nil
	}); err != nil {
		if _, ok := err.(*jsonSyntaxError); ok {
			return fmt.Errorf("%w: JSON: %v", ErrMalformed, err)
		}
		return err
	}
	s.space()
	if s.i != len(s.b) {
		return fmt.Errorf("%w: trailing bytes after the object", ErrMalformed)
	}
	return nil
}

// AppendRecord appends u as a MessagePack map record (with "sym" when
// withSym is set), the form `tickstream produce` writes.
func AppendRecord(dst []byte, u *Update, withSym bool) []byte {
	n := u.Mask.Count()
	if withSym {
		n++
	}
	dst = appendMapLen(dst, n)
	if withSym {
		dst = appendStr(appendStr(dst, "sym"), string(u.Sym))
	}
	for f := 0; f < NumFields; f++ {
		if u.Mask.Has(f) {
			dst = appendNumber(appendStr(dst, FieldNames[f]), u.Values[f])
		}
	}
	return dst
}

// AppendRecordJSON appends u as a JSON object record.
func AppendRecordJSON(dst []byte, u *Update, withSym bool) []byte {
	dst = append(dst, '{')
	first := true
	if withSym {
		dst = appendJSONString(append(dst, `"sym":`...), string(u.Sym))
		first = false
	}
	for f := 0; f < NumFields; f++ {
		if !u.Mask.Has(f) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(append(append(dst, '"'), FieldNames[f]...), '"', ':')
		dst = appendJSONNumber(dst, u.Values[f])
	}
	return append(dst, '}')
}
