package codec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendJSONNumber writes v as the shortest JSON number that reads back as
// v; integral values are written without a fraction.
func appendJSONNumber(dst []byte, v float64) []byte {
	if v == math.Trunc(v) && v > -maxSafeInt && v < maxSafeInt {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// jsonScanner reads the flat JSON objects of update records without
// allocating. It accepts exactly RFC 8259 JSON.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) && isJSONSpace(s.b[s.i]) {
		s.i++
	}
}

func (s *jsonScanner) malformed(what string) error {
	return fmt.Errorf("%w: JSON: %s at byte %d", ErrMalformed, what, s.i)
}

// object reads an object, calling field for each key with the scanner
// positioned at the value; field must consume the value.
func (s *jsonScanner) object(field func(key []byte) error) error {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return s.malformed("expected '{'")
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var typeErr error
	for {
		s.space()
		key, err := s.str()
		if err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.malformed("expected ':'")
		}
		s.i++
		s.space()
		if err := field(key); err != nil {
			if !errors.Is(err, ErrMalformed) {
				// Keep reading: a malformed rest of the record is the
				// more useful report.
				if typeErr == nil {
					typeErr = err
				}
			} else {
				return err
			}
		}
		s.space()
		if s.i >= len(s.b) {
			return s.malformed("unterminated object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return typeErr
		default:
			return s.malformed("expected ',' or '}'")
		}
	}
}

// str reads a string. Without escapes the result aliases the input; with
// escapes it is a new unescaped slice.
func (s *jsonScanner) str() ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, s.malformed("expected a string")
	}
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !escaped {
				return s.b[start+1 : s.i-1], nil
			}
			v, err := strconv.Unquote(string(s.b[start:s.i]))
			if err != nil {
				return nil, s.malformed("bad string escape")
			}
			return []byte(v), nil
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			return nil, s.malformed("control character in string")
		default:
			s.i++
		}
	}
	return nil, s.malformed("unterminated string")
}

// number reads a JSON number and returns its text.
func (s *jsonScanner) number() ([]byte, error) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, s.malformed("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, s.malformed("bad number fraction")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, s.malformed("bad number exponent")
		}
	}
	return s.b[start:s.i], nil
}

func (s *jsonScanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *jsonScanner) isNumberStart() bool {
	return s.i < len(s.b) && (s.b[s.i] == '-' || (s.b[s.i] >= '0' && s.b[s.i] <= '9'))
}

// numberOrSkip reads a number, or skips a value of another type and
// reports isNum false.
func (s *jsonScanner) numberOrSkip() (num []byte, isNum bool, err error) {
	if s.isNumberStart() {
		num, err = s.number()
		return num, err == nil, err
	}
	return nil, false, s.skipValue(0)
}

// stringOrSkip reads a string, or skips a value of another type and
// reports isStr false.
func (s *jsonScanner) stringOrSkip() (str []byte, isStr bool, err error) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		str, err = s.str()
		return str, err == nil, err
	}
	return nil, false, s.skipValue(0)
}

func (s *jsonScanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.malformed("bad literal")
	}
	s.i += len(lit)
	return nil
}

// skipValue consumes one value of any type, checking its syntax.
func (s *jsonScanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.malformed("nested too deeply")
	}
	s.space()
	if s.i >= len(s.b) {
		return s.malformed("expected a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '[':
		s.i++
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.space()
			if s.i >= len(s.b) {
				return s.malformed("unterminated array")
			}
			if s.b[s.i] == ']' {
				s.i++
				return nil
			}
			if s.b[s.i] != ',' {
				return s.malformed("expected ',' or ']'")
			}
			s.i++
		}
	case c == '{':
		return s.object(func([]byte) error { return s.skipValue(depth + 1) })
	case s.isNumberStart():
		_, err := s.number()
		return err
	}
	return s.malformed("unexpected character")
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so that the output is always valid JSON whatever a peer sent.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
