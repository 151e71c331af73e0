package codec

import (
	"math"
	"strconv"
	"strings"
)

// Op is the first element of every protocol message.
type Op uint8

// Client-to-server ops.
const (
	OpSub   Op = 1 // subscribe
	OpUnsub Op = 2 // unsubscribe
	OpSnap  Op = 3 // resend snapshots
	OpPing  Op = 4 // application ping
	OpAuth  Op = 5 // renew the connection's credentials (extension)
)

// Server-to-client ops.
const (
	OpHello     Op = 20
	OpAck       Op = 21
	OpSnapshot  Op = 22
	OpDelta     Op = 23
	OpPong      Op = 24
	OpError     Op = 25
	OpHeartbeat Op = 26
	OpStatus    Op = 27
	OpAuthed    Op = 28 // reply to AUTH (extension)
	OpBars      Op = 29 // bar history (extension)
	OpBar       Op = 30 // one bar's newest state (extension)
)

// ProtocolVersion is the version HELLO announces.
const ProtocolVersion = 1

// Subprotocol names (Sec-WebSocket-Protocol).
const (
	SubprotocolBinary = "tickstream.v1"
	SubprotocolJSON   = "tickstream.v1.json"
)

// Feed states carried by STATUS.
const (
	StatusLive       = "live"
	StatusStale      = "stale"
	StatusRecovering = "recovering"
)

// Format selects the encoding of a connection: MessagePack binary frames or
// JSON text frames.
type Format uint8

// The two formats of protocol v1.
const (
	Binary Format = iota // tickstream.v1
	JSON                 // tickstream.v1.json
)

// String returns the subprotocol name of the format.
func (f Format) String() string {
	if f == JSON {
		return SubprotocolJSON
	}
	return SubprotocolBinary
}

// FormatFor returns the format of a subprotocol name.
func FormatFor(subprotocol string) (Format, bool) {
	switch subprotocol {
	case SubprotocolBinary:
		return Binary, true
	case SubprotocolJSON:
		return JSON, true
	}
	return Binary, false
}

// AppendSeparator appends what must stand between two messages of one frame
// when dst already holds a message: nothing in binary, a newline in JSON.
func (f Format) AppendSeparator(dst []byte) []byte {
	if f == JSON && len(dst) > 0 {
		return append(dst, '\n')
	}
	return dst
}

// SymbolID pairs a symbol with the numeric id used for it in SNAPSHOT and
// DELTA messages.
type SymbolID struct {
	Sym string
	SID uint32
}

// AppendHello appends HELLO: [20, 1, serverID, heartbeatMs, fieldNames].
func (f Format) AppendHello(dst []byte, serverID string, heartbeatMs int) []byte {
	if f == JSON {
		dst = append(dst, "[20,1,"...)
		dst = appendJSONString(dst, serverID)
		dst = strconv.AppendInt(append(dst, ','), int64(heartbeatMs), 10)
		dst = append(dst, ",["...)
		for i, n := range FieldNames {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, n)
		}
		return append(dst, "]]"...)
	}
	dst = append(dst, 0x95, byte(OpHello), ProtocolVersion)
	dst = appendStr(dst, serverID)
	dst = appendUint(dst, uint64(heartbeatMs))
	dst = appendArrayLen(dst, NumFields)
	for _, n := range FieldNames {
		dst = appendStr(dst, n)
	}
	return dst
}

// AppendAck appends ACK: [21, id, [[sym, sid], ...]].
func (f Format) AppendAck(dst []byte, id uint64, syms []SymbolID) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, "[21,"...), id, 10)
		dst = append(dst, ",["...)
		for i, s := range syms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(append(dst, '['), s.Sym)
			dst = append(strconv.AppendUint(append(dst, ','), uint64(s.SID), 10), ']')
		}
		return append(dst, "]]"...)
	}
	dst = append(dst, 0x93, byte(OpAck))
	dst = appendUint(dst, id)
	dst = appendArrayLen(dst, len(syms))
	for _, s := range syms {
		dst = appendUint(appendStr(append(dst, 0x92), s.Sym), uint64(s.SID))
	}
	return dst
}

// AppendState appends a SNAPSHOT or DELTA (op): [op, sid, seq, {field: value}]
// with the fields of mask taken from values.
func (f Format) AppendState(dst []byte, op Op, sid uint32, seq uint64, mask FieldMask, values *[NumFields]float64) []byte {
	if f == JSON {
		dst = append(dst, '[')
		dst = strconv.AppendUint(dst, uint64(op), 10)
		dst = strconv.AppendUint(append(dst, ','), uint64(sid), 10)
		dst = strconv.AppendUint(append(dst, ','), seq, 10)
		dst = append(dst, ",{"...)
		first := true
		for i := 0; i < NumFields; i++ {
			if !mask.Has(i) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(strconv.AppendUint(append(dst, '"'), uint64(i), 10), '"', ':')
			dst = appendJSONNumber(dst, values[i])
		}
		return append(dst, "}]"...)
	}
	dst = append(dst, 0x94, byte(op))
	dst = appendUint(dst, uint64(sid))
	dst = appendUint(dst, seq)
	dst = appendMapLen(dst, mask.Count())
	for i := 0; i < NumFields; i++ {
		if mask.Has(i) {
			dst = appendNumber(append(dst, byte(i)), values[i])
		}
	}
	return dst
}

// AppendPong appends PONG: [24, id, t, serverTimeUs]; t is the raw encoded
// number of the PING, echoed as it came (it is in this format already).
func (f Format) AppendPong(dst []byte, id uint64, t []byte, serverTimeUs int64) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, "[24,"...), id, 10)
		dst = append(append(append(dst, ','), t...), ',')
		return append(strconv.AppendInt(dst, serverTimeUs, 10), ']')
	}
	dst = append(dst, 0x94, byte(OpPong))
	dst = appendUint(dst, id)
	dst = append(dst, t...)
	return appendInt(dst, serverTimeUs)
}

// AppendError appends ERROR: [25, id, code, message] or, with symbols,
// [25, id, code, message, [sym, ...]].
func (f Format) AppendError(dst []byte, id uint64, code int, msg string, syms []string) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, "[25,"...), id, 10)
		dst = strconv.AppendInt(append(dst, ','), int64(code), 10)
		dst = appendJSONString(append(dst, ','), msg)
		if len(syms) > 0 {
			dst = append(dst, ",["...)
			for i, s := range syms {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, s)
			}
			dst = append(dst, ']')
		}
		return append(dst, ']')
	}
	if len(syms) > 0 {
		dst = append(dst, 0x95, byte(OpError))
	} else {
		dst = append(dst, 0x94, byte(OpError))
	}
	dst = appendUint(dst, id)
	dst = appendUint(dst, uint64(code))
	dst = appendStr(dst, strings.ToValidUTF8(msg, "\uFFFD"))
	if len(syms) > 0 {
		dst = appendArrayLen(dst, len(syms))
		for _, s := range syms {
			dst = appendStr(dst, strings.ToValidUTF8(s, "\uFFFD"))
		}
	}
	return dst
}

// AppendHeartbeat appends HEARTBEAT: [26, serverTimeUs].
func (f Format) AppendHeartbeat(dst []byte, serverTimeUs int64) []byte {
	if f == JSON {
		return append(strconv.AppendInt(append(dst, "[26,"...), serverTimeUs, 10), ']')
	}
	return appendInt(append(dst, 0x92, byte(OpHeartbeat)), serverTimeUs)
}

// AppendStatus appends STATUS: [27, state, detail].
func (f Format) AppendStatus(dst []byte, state, detail string) []byte {
	if f == JSON {
		dst = appendJSONString(append(dst, "[27,"...), state)
		return append(appendJSONString(append(dst, ','), detail), ']')
	}
	return appendStr(appendStr(append(dst, 0x93, byte(OpStatus)), state), detail)
}

// AppendAuthed appends AUTHED: [28, id, expiresUs], the reply to an AUTH
// whose token the server took; expiresUs is the token's expiry in unix
// microseconds, 0 when it has none.
func (f Format) AppendAuthed(dst []byte, id uint64, expiresUs int64) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, "[28,"...), id, 10)
		return append(strconv.AppendInt(append(dst, ','), expiresUs, 10), ']')
	}
	return appendInt(appendUint(append(dst, 0x93, byte(OpAuthed)), id), expiresUs)
}

// AppendNumber appends v as a protocol number in this format: the most
// compact exact MessagePack form, or the shortest JSON number.
func (f Format) AppendNumber(dst []byte, v float64) []byte {
	if f == JSON {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(dst, '0')
		}
		return appendJSONNumber(dst, v)
	}
	return appendNumber(dst, v)
}

// Bar is one OHLCV bar of a symbol at one interval: the trades (or, for a
// quotes-only symbol, the mid prices) whose event time falls in
// [T, T+interval).
type Bar struct {
	T      int64 // start of the bar, unix µs
	Open   float64
	High   float64
	Low    float64
	Close  float64
	Volume float64
	Trades uint32 // trades (quotes, for a quotes-only symbol) counted in
}

// AppendBars appends BARS: [29, sid, seq, interval, [[t, o, h, l, c, v, n],
// ...]], the bars of a subscription's history, oldest first, complete up
// to the symbol's version seq.
func (f Format) AppendBars(dst []byte, sid uint32, seq uint64, interval string, bars []Bar) []byte {
	dst = f.appendBarsHead(dst, OpBars, sid, seq, interval)
	if f == JSON {
		dst = append(dst, '[')
		for i := range bars {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONBar(dst, &bars[i])
		}
		return append(dst, "]]"...)
	}
	dst = appendArrayLen(dst, len(bars))
	for i := range bars {
		dst = appendBar(dst, &bars[i])
	}
	return dst
}

// AppendBar appends BAR: [30, sid, seq, interval, [t, o, h, l, c, v, n]],
// the state of one bar after the change at seq.
func (f Format) AppendBar(dst []byte, sid uint32, seq uint64, interval string, b *Bar) []byte {
	dst = f.appendBarsHead(dst, OpBar, sid, seq, interval)
	if f == JSON {
		return append(appendJSONBar(dst, b), ']')
	}
	return appendBar(dst, b)
}

// appendBarsHead appends the first four elements of BARS or BAR, and in
// JSON the separator before the fifth.
func (f Format) appendBarsHead(dst []byte, op Op, sid uint32, seq uint64, interval string) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, '['), uint64(op), 10)
		dst = strconv.AppendUint(append(dst, ','), uint64(sid), 10)
		dst = strconv.AppendUint(append(dst, ','), seq, 10)
		return append(appendJSONString(append(dst, ','), interval), ',')
	}
	dst = appendUint(append(dst, 0x95, byte(op)), uint64(sid))
	return appendStr(appendUint(dst, seq), interval)
}

func appendBar(dst []byte, b *Bar) []byte {
	dst = appendInt(append(dst, 0x97), b.T)
	dst = appendNumber(dst, finite(b.Open))
	dst = appendNumber(dst, finite(b.High))
	dst = appendNumber(dst, finite(b.Low))
	dst = appendNumber(dst, finite(b.Close))
	dst = appendNumber(dst, finite(b.Volume))
	return appendUint(dst, uint64(b.Trades))
}

func appendJSONBar(dst []byte, b *Bar) []byte {
	dst = strconv.AppendInt(append(dst, '['), b.T, 10)
	for _, v := range [...]float64{b.Open, b.High, b.Low, b.Close, b.Volume} {
		dst = appendJSONNumber(append(dst, ','), finite(v))
	}
	return append(strconv.AppendUint(append(dst, ','), uint64(b.Trades), 10), ']')
}

// finite returns v, or for a value a double cannot hold the nearest one
// it can: a bar's numbers are computed (sums of sizes, means of prices)
// from finite inputs, but an absurd feed could still overflow one, and
// JSON has no infinity. Both formats then carry the same value.
func finite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}
