package codec

import "math/bits"

// Field indexes of the v1 field table. SNAPSHOT and DELTA maps are keyed by
// these indexes; new fields are only ever appended.
const (
	FieldTS        = iota // event time, unix microseconds
	FieldBid              // best bid price
	FieldBidSize          // size at the best bid
	FieldAsk              // best ask price
	FieldAskSize          // size at the best ask
	FieldLast             // last trade price
	FieldLastSize         // last trade size
	FieldVolume           // cumulative session volume
	FieldOpen             // session open price
	FieldHigh             // session high
	FieldLow              // session low
	FieldPrevClose        // previous session close
	NumFields             // number of fields in the v1 table
)

// FieldNames is the v1 field table, sent in HELLO: field i is FieldNames[i].
var FieldNames = [NumFields]string{
	"ts", "bid", "bidSize", "ask", "askSize", "last",
	"lastSize", "volume", "open", "high", "low", "prevClose",
}

// FieldMask is a set of field indexes: bit i stands for field i.
type FieldMask uint32

// AllFields holds every field of the table.
const AllFields FieldMask = 1<<NumFields - 1

// Has reports whether field f is in the set.
func (m FieldMask) Has(f int) bool { return m&(1<<uint(f)) != 0 }

// Count returns the number of fields in the set.
func (m FieldMask) Count() int { return bits.OnesCount32(uint32(m)) }

// FieldIndex returns the index of the named field, or false when the name is
// not in the table. The comparison is exact (case-sensitive).
func FieldIndex(name string) (int, bool) {
	for i, n := range FieldNames {
		if n == name {
			return i, true
		}
	}
	return -1, false
}

// fieldIndexBytes is FieldIndex for a name that is still a byte slice of an
// input buffer; the conversion inside the comparison does not allocate.
func fieldIndexBytes(name []byte) (int, bool) {
	for i, n := range FieldNames {
		if n == string(name) {
			return i, true
		}
	}
	return -1, false
}

// ValidSymbol reports whether s is a valid symbol: 1 to 32 characters of
// A-Z a-z 0-9 . _ : / -.
func ValidSymbol(s []byte) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '/', c == '-':
		default:
			return false
		}
	}
	return true
}
