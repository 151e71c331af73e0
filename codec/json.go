package codec

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendJSONNumber writes v as the shortest JSON number that reads back as
// v; integral values are written without a fraction.
func appendJSONNumber(dst []byte, v float64) []byte {
	if v == math.Trunc(v) && v > -MaxSafeInt && v < MaxSafeInt {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// The JSON side of reader. Its scan methods (object, key, scanString,
// scanNumber, skipValue) accept exactly RFC 8259 JSON, nested at most
// maxDepth deep, and check every separator; the record decoder uses them
// directly. Its value methods (reader.go) serve the message decoders: they
// run only inside a message whose syntax skipValue has already checked, and
// step over separators without looking (see sep).

// jsonSyntaxError is a JSON syntax error and the byte offset it was found at.
type jsonSyntaxError struct {
	what string
	at   int
}

func (e *jsonSyntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.what, e.at) }

func (s *reader) space() {
	for s.i < len(s.b) && isJSONSpace(s.b[s.i]) {
		s.i++
	}
}

func (s *reader) syntax(what string) error { return &jsonSyntaxError{what, s.i} }

// object reads an object, calling field for each key with the reader
// positioned at the value; field must consume the value. A syntax error
// stops the reading at once; another error from field is returned once the
// object has been read, since a syntax error further on is the more useful
// report.
func (s *reader) object(field func(key []byte) error) error {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return s.syntax("expected '{'")
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var fieldErr error
	for {
		s.space()
		key, err := s.key()
		if err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.syntax("expected ':'")
		}
		s.i++
		s.space()
		if err := field(key); err != nil {
			if _, ok := err.(*jsonSyntaxError); ok {
				return err
			}
			if fieldErr == nil {
				fieldErr = err
			}
		}
		s.space()
		if s.i >= len(s.b) {
			return s.syntax("unterminated object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return fieldErr
		default:
			return s.syntax("expected ',' or '}'")
		}
	}
}

// key reads an object key: a string.
func (s *reader) key() ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, s.syntax("expected a string")
	}
	raw, plain, err := s.scanString()
	if err != nil || plain {
		return raw, err
	}
	return unescapeJSON(raw), nil
}

// scanString reads a string, checking its escapes, and returns its bytes
// between the quotes. plain reports that they hold no escape and only valid
// UTF-8, so that they are the string's value as they stand.
func (s *reader) scanString() (raw []byte, plain bool, err error) {
	start := s.i + 1
	plain = true
	for i := start; i < len(s.b); {
		c := s.b[i]
		if plainStringByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], plain, nil
		case c == '\\':
			n := escapeLen(s.b[i:])
			if n == 0 {
				s.i = i
				return nil, false, s.syntax("bad string escape")
			}
			plain = false
			i += n
		case c < 0x20:
			s.i = i
			return nil, false, s.syntax("control character in string")
		default:
			r, n := utf8.DecodeRune(s.b[i:])
			if r == utf8.RuneError && n == 1 {
				plain = false
			}
			i += n
		}
	}
	s.i = len(s.b)
	return nil, false, s.syntax("unterminated string")
}

// plainStringByte holds the bytes a JSON string holds as they stand: ASCII
// but for control characters, '"' and '\\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escapeLen returns the length of the escape sequence at the start of b,
// or 0 when it is not a valid JSON escape.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(b) >= 6 && hex4(b[2:6]) >= 0 {
			return 6
		}
	}
	return 0
}

// hex4 returns the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescapeJSON returns the value of a string whose escapes scanString has
// checked. Like encoding/json, it joins surrogate pairs and turns a lone
// surrogate or invalid UTF-8 into U+FFFD, so that the value is valid UTF-8.
func unescapeJSON(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\' && raw[i+1] == 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
					i += 6
				}
			}
			out = utf8.AppendRune(out, r)
		case c == '\\':
			out = append(out, unescapeByte(raw[i+1]))
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r)
			i += n
		}
	}
	return out
}

func unescapeByte(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // " \ /
}

// scanNumber reads a JSON number and returns its text.
func (s *reader) scanNumber() ([]byte, error) {
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
		return nil, s.syntax("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, s.syntax("bad number fraction")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, s.syntax("bad number exponent")
		}
	}
	return s.b[start:s.i], nil
}

func (s *reader) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *reader) isNumberStart() bool {
	return s.i < len(s.b) && (s.b[s.i] == '-' || (s.b[s.i] >= '0' && s.b[s.i] <= '9'))
}

func (s *reader) isStringStart() bool { return s.i < len(s.b) && s.b[s.i] == '"' }

// numberOrSkip reads a number, or skips a value of another type and
// reports isNum false.
func (s *reader) numberOrSkip() (num []byte, isNum bool, err error) {
	if s.isNumberStart() {
		num, err = s.scanNumber()
		return num, err == nil, err
	}
	return nil, false, s.skipValue(0)
}

// stringOrSkip reads a string, or skips a value of another type and
// reports isStr false.
func (s *reader) stringOrSkip() (str []byte, isStr bool, err error) {
	if !s.isStringStart() {
		return nil, false, s.skipValue(0)
	}
	raw, plain, err := s.scanString()
	if err != nil || plain {
		return raw, err == nil, err
	}
	return unescapeJSON(raw), true, nil
}

func (s *reader) literal(lit string) error {
	if !s.consume(lit) {
		return s.syntax("bad literal")
	}
	return nil
}

// consume reads lit if it is next.
func (s *reader) consume(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// skipValue consumes one value of any type, checking its syntax.
func (s *reader) skipValue(depth int) error {
	if depth > maxDepth {
		return s.syntax("nested too deeply")
	}
	s.space()
	if s.i >= len(s.b) {
		return s.syntax("expected a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, err := s.scanString()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '[':
		_, err := s.skipArray(depth)
		return err
	case c == '{':
		_, err := s.skipObject(depth)
		return err
	case s.isNumberStart():
		_, err := s.scanNumber()
		return err
	}
	return s.syntax("unexpected character")
}

// skipArray consumes an array, checking its syntax, and returns the
// number of its elements.
func (s *reader) skipArray(depth int) (int, error) {
	s.i++ // '['
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return 0, nil
	}
	for n := 1; ; n++ {
		if err := s.skipValue(depth + 1); err != nil {
			return 0, err
		}
		s.space()
		if s.i >= len(s.b) {
			return 0, s.syntax("unterminated array")
		}
		if s.b[s.i] == ']' {
			s.i++
			return n, nil
		}
		if s.b[s.i] != ',' {
			return 0, s.syntax("expected ',' or ']'")
		}
		s.i++
	}
}

// skipObject consumes an object, checking its syntax, and returns the
// number of its members.
func (s *reader) skipObject(depth int) (int, error) {
	n := 0
	err := s.object(func([]byte) error { n++; return s.skipValue(depth + 1) })
	return n, err
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
