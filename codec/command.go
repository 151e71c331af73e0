package codec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// SubOptions are the options of a SUB.
type SubOptions struct {
	// Snap asks for a SNAPSHOT before the DELTAs (default true).
	Snap bool
	// MaxHz caps the messages per second per symbol; 0 sends every update.
	MaxHz float64
	// Fields limits SNAPSHOTs and DELTAs to these fields (default all).
	Fields FieldMask
	// Bars names the bar interval ("1m") of which the subscription also
	// gets live BARs; "" for none. Which names exist is the server's
	// business: the codec only checks that it is a non-empty string.
	Bars string
	// BarCount asks for the last BarCount bars of Bars as one BARS after
	// the SNAPSHOT (1 to MaxBarHistory); 0 when not asked.
	BarCount int
	// BarSince asks for the bars of Bars with t >= BarSince (unix µs) as
	// one BARS after the SNAPSHOT, when HasBarSince: 0 is a valid time.
	BarSince    int64
	HasBarSince bool
}

// MaxBarHistory is the most bars one BARS carries: the highest barCount,
// and the newest this many of a barSince range.
const MaxBarHistory = 10000

// WantsBarHistory reports whether the options ask for a BARS.
func (o *SubOptions) WantsBarHistory() bool { return o.BarCount > 0 || o.HasBarSince }

// DefaultSubOptions returns the options of a SUB that gives none.
func DefaultSubOptions() SubOptions { return SubOptions{Snap: true, Fields: AllFields} }

// Command is one decoded client message.
type Command struct {
	Op   Op
	ID   uint64
	Syms [][]byte   // SUB, UNSUB, SNAP: the symbols, aliasing the frame
	Opts SubOptions // SUB
	// T is PING's number, still encoded in the connection's format, so
	// that PONG echoes it exactly.
	T []byte
	// Token is AUTH's credential, aliasing the frame (MessagePack) or
	// decoded (JSON).
	Token []byte

	// lastBars is the interval name of the last SUB decoded into this
	// Command, reused when the next names the same, so that a client
	// re-subscribing costs no allocation.
	lastBars string
}

// CommandError is a client message that could not be decoded or is not
// valid. ID is the request id when it could be read, else 0.
type CommandError struct {
	ID  uint64
	Msg string
}

// Error implements error; the text is what an ERROR 400 tells the client.
func (e *CommandError) Error() string { return "bad request: " + e.Msg }

// MaxSymbolsPerCommand bounds the symbol list of one message, so that a
// hostile list cannot make the server allocate without bound.
const MaxSymbolsPerCommand = 10000

// DecodeCommands decodes every message of one frame, calling fn for each
// with either a command or a *CommandError. When the frame's structure is
// broken (not MessagePack or JSON at all) fn gets one last error and the
// rest of the frame is dropped: no message boundary can be trusted after it.
// c is reused between calls; its slices alias the frame.
func (f Format) DecodeCommands(frame []byte, c *Command, fn func(*Command, error)) {
	var r reader
	err := f.splitMessages(frame, func(msg []byte) bool {
		r.reset(f, msg)
		if err := decodeCommand(&r, c); err != nil {
			fn(nil, err)
		} else {
			fn(c, nil)
		}
		return true
	})
	if err != nil {
		what := "malformed MessagePack: "
		if f == JSON {
			what = "malformed JSON: "
		}
		fn(nil, &CommandError{Msg: what + err.Error()})
	}
}

// decodeCommand decodes the one client message r holds.
func decodeCommand(r *reader, c *Command) error {
	*c = Command{Syms: c.Syms[:0], lastBars: c.lastBars}
	n, err := r.arrayLen()
	if err != nil || n < 2 {
		return &CommandError{Msg: "a message is an array [op, id, ...]"}
	}
	op, err := r.uint()
	if err != nil {
		return &CommandError{Msg: "op is not a positive integer"}
	}
	id, err := r.uint()
	if err != nil {
		return &CommandError{Msg: "id is not a positive integer"}
	}
	c.Op, c.ID = Op(min(op, 255)), id
	if id == 0 {
		return &CommandError{Msg: "id must be 1 or more"}
	}
	switch c.Op {
	case OpSub, OpUnsub, OpSnap:
		return decodeSymsCommand(r, c, n)
	case OpPing:
		if n < 3 {
			return &CommandError{ID: id, Msg: "missing ping value"}
		}
		if c.T, err = r.rawNumber(); err != nil {
			return &CommandError{ID: id, Msg: "ping value must be a number"}
		}
	case OpAuth:
		if n < 3 {
			return &CommandError{ID: id, Msg: "missing token"}
		}
		if c.Token, err = r.str(); err != nil || len(c.Token) == 0 {
			return &CommandError{ID: id, Msg: "token must be a non-empty string"}
		}
	default:
		return &CommandError{ID: id, Msg: fmt.Sprintf("unknown op %d", op)}
	}
	return nil
}

// decodeSymsCommand reads the rest of a SUB, UNSUB or SNAP of n elements:
// [op, id, [sym, ...], options?].
func decodeSymsCommand(r *reader, c *Command, n int) error {
	if n < 3 {
		return &CommandError{ID: c.ID, Msg: "missing symbol list"}
	}
	k, err := r.arrayLen()
	if err != nil {
		return &CommandError{ID: c.ID, Msg: "symbols must be an array of strings"}
	}
	if k > MaxSymbolsPerCommand {
		return &CommandError{ID: c.ID, Msg: fmt.Sprintf("more than %d symbols in one message", MaxSymbolsPerCommand)}
	}
	for ; k > 0; k-- {
		s, err := r.str()
		if err != nil {
			return &CommandError{ID: c.ID, Msg: "symbols must be an array of strings"}
		}
		c.Syms = append(c.Syms, s)
	}
	c.Opts = DefaultSubOptions()
	if c.Op == OpSub && n >= 4 && !r.isNil() {
		if err := decodeOptions(r, &c.Opts, c.lastBars); err != nil {
			return &CommandError{ID: c.ID, Msg: err.Error()}
		}
		if c.Opts.Bars != "" {
			c.lastBars = c.Opts.Bars
		}
	}
	return nil
}

// decodeOptions reads SUB's options: a map (a JSON object) of which
// unknown names are skipped and known ones may each be given once. prevBars
// is the previous SUB's interval name, reused when this one names the same.
func decodeOptions(r *reader, o *SubOptions, prevBars string) error {
	n, err := r.mapLen()
	if err != nil {
		if r.format() == JSON {
			return errors.New("options must be an object")
		}
		return errors.New("options must be a map")
	}
	var seen uint8
	for ; n > 0; n-- {
		k, err := r.str()
		if err != nil {
			return errors.New("option names must be strings")
		}
		bit := optionBit(k)
		if seen&bit != 0 {
			return fmt.Errorf("option %s given twice", k)
		}
		seen |= bit
		switch bit {
		case optSnap:
			if o.Snap, err = r.boolean(); err != nil {
				return errors.New("option snap must be a boolean")
			}
		case optMaxHz:
			v, err := r.number()
			if err != nil || !validMaxHz(v) {
				return errors.New("option maxHz must be a number from 0 to 1000")
			}
			o.MaxHz = v
		case optFields:
			if o.Fields, err = decodeFieldNames(r); err != nil {
				return err
			}
		case optBars:
			name, err := r.str()
			if err != nil || len(name) == 0 {
				return errors.New("option bars must be a non-empty string naming an interval")
			}
			if o.Bars = prevBars; string(name) != prevBars {
				o.Bars = string(name)
			}
		case optBarCount:
			v, err := r.uint()
			if err != nil || v < 1 || v > MaxBarHistory {
				return fmt.Errorf("option barCount must be an integer from 1 to %d", MaxBarHistory)
			}
			o.BarCount = int(v)
		case optBarSince:
			v, err := r.uint()
			if err != nil || v >= MaxSafeInt {
				return errors.New("option barSince must be an integer of unix microseconds, from 0 to 2^53-1")
			}
			o.BarSince, o.HasBarSince = int64(v), true
		default:
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
	return o.CheckBarOptions()
}

// CheckBarOptions checks how the bar options combine: history needs an
// interval, and is asked for one way only. The SUB decoder applies it; a
// server reading the options from elsewhere (the upgrade URL) too.
func (o *SubOptions) CheckBarOptions() error {
	switch {
	case o.BarCount > 0 && o.HasBarSince:
		return errors.New("options barCount and barSince exclude each other")
	case o.BarCount > 0 && o.Bars == "":
		return errors.New("option barCount needs option bars")
	case o.HasBarSince && o.Bars == "":
		return errors.New("option barSince needs option bars")
	}
	return nil
}

// The options SUB knows, as bits of a set.
const (
	optSnap uint8 = 1 << iota
	optMaxHz
	optFields
	optBars
	optBarCount
	optBarSince
)

// optionBit returns the bit of a known option name, or 0.
func optionBit(name []byte) uint8 {
	switch string(name) {
	case "snap":
		return optSnap
	case "maxHz":
		return optMaxHz
	case "fields":
		return optFields
	case "bars":
		return optBars
	case "barCount":
		return optBarCount
	case "barSince":
		return optBarSince
	}
	return 0
}

// decodeFieldNames reads the fields option: a non-empty array of names
// from the field table.
func decodeFieldNames(r *reader) (FieldMask, error) {
	k, err := r.arrayLen()
	if err != nil {
		return 0, errors.New("option fields must be an array of field names")
	}
	var mask FieldMask
	for ; k > 0; k-- {
		name, err := r.str()
		if err != nil {
			return 0, errors.New("option fields must be an array of field names")
		}
		i, ok := fieldIndexBytes(name)
		if !ok {
			return 0, fmt.Errorf("unknown field %q", name)
		}
		mask |= 1 << uint(i)
	}
	if mask == 0 {
		return 0, errors.New("option fields must name at least one field")
	}
	return mask, nil
}

// MaxHzLimit is the highest maxHz a subscription may ask for.
const MaxHzLimit = 1000

func validMaxHz(v float64) bool { return v >= 0 && v <= MaxHzLimit && !math.IsNaN(v) }

// AppendSub appends a SUB message; opts may be nil for the defaults. With
// opts, snap, maxHz and fields are always written, and the bar options only
// when set, in the order bars, barCount, barSince.
func (f Format) AppendSub(dst []byte, id uint64, syms []string, opts *SubOptions) []byte {
	return f.appendSymsCommand(dst, OpSub, id, syms, opts)
}

// AppendUnsub appends an UNSUB message.
func (f Format) AppendUnsub(dst []byte, id uint64, syms []string) []byte {
	return f.appendSymsCommand(dst, OpUnsub, id, syms, nil)
}

// AppendSnap appends a SNAP message.
func (f Format) AppendSnap(dst []byte, id uint64, syms []string) []byte {
	return f.appendSymsCommand(dst, OpSnap, id, syms, nil)
}

// AppendPing appends a PING message carrying t.
func (f Format) AppendPing(dst []byte, id uint64, t float64) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, "[4,"...), id, 10)
		return append(appendJSONNumber(append(dst, ','), t), ']')
	}
	return appendNumber(appendUint(append(dst, 0x93, byte(OpPing)), id), t)
}

// AppendAuth appends AUTH: [5, id, token], which renews the credentials of
// a connection without reconnecting.
func (f Format) AppendAuth(dst []byte, id uint64, token string) []byte {
	if f == JSON {
		dst = strconv.AppendUint(append(dst, "[5,"...), id, 10)
		return append(appendJSONString(append(dst, ','), token), ']')
	}
	return appendStr(appendUint(append(dst, 0x93, byte(OpAuth)), id), token)
}

func (f Format) appendSymsCommand(dst []byte, op Op, id uint64, syms []string, opts *SubOptions) []byte {
	if f == JSON {
		dst = append(strconv.AppendUint(append(dst, '['), uint64(op), 10), ',')
		dst = append(strconv.AppendUint(dst, id, 10), ",["...)
		for i, s := range syms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		dst = append(dst, ']')
		if opts != nil {
			dst = append(dst, `,{"snap":`...)
			dst = strconv.AppendBool(dst, opts.Snap)
			dst = appendJSONNumber(append(dst, `,"maxHz":`...), opts.MaxHz)
			dst = append(dst, `,"fields":[`...)
			first := true
			for i := 0; i < NumFields; i++ {
				if opts.Fields.Has(i) {
					if !first {
						dst = append(dst, ',')
					}
					first = false
					dst = appendJSONString(dst, FieldNames[i])
				}
			}
			dst = append(dst, ']')
			if opts.Bars != "" {
				dst = appendJSONString(append(dst, `,"bars":`...), opts.Bars)
			}
			if opts.BarCount > 0 {
				dst = strconv.AppendInt(append(dst, `,"barCount":`...), int64(opts.BarCount), 10)
			}
			if opts.HasBarSince {
				dst = strconv.AppendInt(append(dst, `,"barSince":`...), opts.BarSince, 10)
			}
			dst = append(dst, '}')
		}
		return append(dst, ']')
	}
	if opts != nil {
		dst = append(dst, 0x94)
	} else {
		dst = append(dst, 0x93)
	}
	dst = appendUint(append(dst, byte(op)), id)
	dst = appendArrayLen(dst, len(syms))
	for _, s := range syms {
		dst = appendStr(dst, s)
	}
	if opts != nil {
		keys := 3
		if opts.Bars != "" {
			keys++
		}
		if opts.BarCount > 0 {
			keys++
		}
		if opts.HasBarSince {
			keys++
		}
		dst = appendBool(appendStr(appendMapLen(dst, keys), "snap"), opts.Snap)
		dst = appendNumber(appendStr(dst, "maxHz"), opts.MaxHz)
		dst = appendArrayLen(appendStr(dst, "fields"), opts.Fields.Count())
		for i := 0; i < NumFields; i++ {
			if opts.Fields.Has(i) {
				dst = appendStr(dst, FieldNames[i])
			}
		}
		if opts.Bars != "" {
			dst = appendStr(appendStr(dst, "bars"), opts.Bars)
		}
		if opts.BarCount > 0 {
			dst = appendInt(appendStr(dst, "barCount"), int64(opts.BarCount))
		}
		if opts.HasBarSince {
			dst = appendInt(appendStr(dst, "barSince"), opts.BarSince)
		}
	}
	return dst
}
