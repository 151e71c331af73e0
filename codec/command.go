package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
}

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
	if f == JSON {
		decodeCommandsJSON(frame, c, fn)
		return
	}
	r := mpReader{b: frame}
	for !r.done() {
		start := r.i
		if err := r.skip(); err != nil {
			fn(nil, &CommandError{Msg: "malformed MessagePack: " + err.Error()})
			return
		}
		msg := mpReader{b: frame[start:r.i]}
		if err := decodeCommandMsgpack(&msg, c); err != nil {
			fn(nil, err)
			continue
		}
		fn(c, nil)
	}
}

func decodeCommandMsgpack(r *mpReader, c *Command) error {
	*c = Command{Syms: c.Syms[:0]}
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
		if n < 3 {
			return &CommandError{ID: id, Msg: "missing symbol list"}
		}
		k, err := r.arrayLen()
		if err != nil {
			return &CommandError{ID: id, Msg: "symbols must be an array of strings"}
		}
		if k > MaxSymbolsPerCommand {
			return &CommandError{ID: id, Msg: fmt.Sprintf("more than %d symbols in one message", MaxSymbolsPerCommand)}
		}
		for ; k > 0; k-- {
			s, err := r.str()
			if err != nil {
				return &CommandError{ID: id, Msg: "symbols must be an array of strings"}
			}
			c.Syms = append(c.Syms, s)
		}
		c.Opts = DefaultSubOptions()
		if c.Op == OpSub && n >= 4 && !r.isNil() {
			if err := decodeOptsMsgpack(r, &c.Opts); err != nil {
				return &CommandError{ID: id, Msg: err.Error()}
			}
		}
	case OpPing:
		if n < 3 {
			return &CommandError{ID: id, Msg: "missing ping value"}
		}
		start := r.i
		if _, err := r.number(); err != nil {
			return &CommandError{ID: id, Msg: "ping value must be a number"}
		}
		c.T = r.b[start:r.i]
	case OpAuth:
		if n < 3 {
			return &CommandError{ID: id, Msg: "missing token"}
		}
		tok, err := r.str()
		if err != nil || len(tok) == 0 {
			return &CommandError{ID: id, Msg: "token must be a non-empty string"}
		}
		c.Token = tok
	default:
		return &CommandError{ID: id, Msg: fmt.Sprintf("unknown op %d", op)}
	}
	return nil
}

func decodeOptsMsgpack(r *mpReader, o *SubOptions) error {
	n, err := r.mapLen()
	if err != nil {
		return errors.New("options must be a map")
	}
	for ; n > 0; n-- {
		k, err := r.str()
		if err != nil {
			return errors.New("option names must be strings")
		}
		switch string(k) {
		case "snap":
			if o.Snap, err = r.boolean(); err != nil {
				return errors.New("option snap must be a boolean")
			}
		case "maxHz":
			v, err := r.number()
			if err != nil || !validMaxHz(v) {
				return errors.New("option maxHz must be a number from 0 to 1000")
			}
			o.MaxHz = v
		case "fields":
			k, err := r.arrayLen()
			if err != nil {
				return errors.New("option fields must be an array of field names")
			}
			o.Fields = 0
			for ; k > 0; k-- {
				name, err := r.str()
				if err != nil {
					return errors.New("option fields must be an array of field names")
				}
				i, ok := fieldIndexBytes(name)
				if !ok {
					return fmt.Errorf("unknown field %q", name)
				}
				o.Fields |= 1 << uint(i)
			}
			if o.Fields == 0 {
				return errors.New("option fields must name at least one field")
			}
		default:
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
	return nil
}

// MaxHzLimit is the highest maxHz a subscription may ask for.
const MaxHzLimit = 1000

func validMaxHz(v float64) bool { return v >= 0 && v <= MaxHzLimit && !math.IsNaN(v) }

func decodeCommandsJSON(frame []byte, c *Command, fn func(*Command, error)) {
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.UseNumber()
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return
		} else if err != nil {
			fn(nil, &CommandError{Msg: "malformed JSON: " + err.Error()})
			return
		}
		if err := decodeCommandJSON(raw, c); err != nil {
			fn(nil, err)
			continue
		}
		fn(c, nil)
	}
}

func jsonUint(raw json.RawMessage) (uint64, bool) {
	u, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, 64)
	return u, err == nil
}

func decodeCommandJSON(raw json.RawMessage, c *Command) error {
	*c = Command{Syms: c.Syms[:0]}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) < 2 {
		return &CommandError{Msg: "a message is an array [op, id, ...]"}
	}
	op, ok := jsonUint(arr[0])
	if !ok {
		return &CommandError{Msg: "op is not a positive integer"}
	}
	id, ok := jsonUint(arr[1])
	if !ok {
		return &CommandError{Msg: "id is not a positive integer"}
	}
	c.Op, c.ID = Op(min(op, 255)), id
	if id == 0 {
		return &CommandError{Msg: "id must be 1 or more"}
	}
	switch c.Op {
	case OpSub, OpUnsub, OpSnap:
		if len(arr) < 3 {
			return &CommandError{ID: id, Msg: "missing symbol list"}
		}
		var syms []string
		if err := json.Unmarshal(arr[2], &syms); err != nil || syms == nil {
			return &CommandError{ID: id, Msg: "symbols must be an array of strings"}
		}
		if len(syms) > MaxSymbolsPerCommand {
			return &CommandError{ID: id, Msg: fmt.Sprintf("more than %d symbols in one message", MaxSymbolsPerCommand)}
		}
		for _, s := range syms {
			c.Syms = append(c.Syms, []byte(s))
		}
		c.Opts = DefaultSubOptions()
		if c.Op == OpSub && len(arr) >= 4 && string(bytes.TrimSpace(arr[3])) != "null" {
			if err := decodeOptsJSON(arr[3], &c.Opts); err != nil {
				return &CommandError{ID: id, Msg: err.Error()}
			}
		}
	case OpPing:
		if len(arr) < 3 {
			return &CommandError{ID: id, Msg: "missing ping value"}
		}
		t := bytes.TrimSpace(arr[2])
		if _, err := strconv.ParseFloat(string(t), 64); err != nil || len(t) == 0 || t[0] == '"' {
			return &CommandError{ID: id, Msg: "ping value must be a number"}
		}
		c.T = t
	case OpAuth:
		if len(arr) < 3 {
			return &CommandError{ID: id, Msg: "missing token"}
		}
		var tok string
		if err := json.Unmarshal(arr[2], &tok); err != nil || tok == "" {
			return &CommandError{ID: id, Msg: "token must be a non-empty string"}
		}
		c.Token = []byte(tok)
	default:
		return &CommandError{ID: id, Msg: fmt.Sprintf("unknown op %d", op)}
	}
	return nil
}

func decodeOptsJSON(raw json.RawMessage, o *SubOptions) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return errors.New("options must be an object")
	}
	if v, ok := m["snap"]; ok {
		if err := json.Unmarshal(v, &o.Snap); err != nil {
			return errors.New("option snap must be a boolean")
		}
	}
	if v, ok := m["maxHz"]; ok {
		var hz float64
		if err := json.Unmarshal(v, &hz); err != nil || !validMaxHz(hz) {
			return errors.New("option maxHz must be a number from 0 to 1000")
		}
		o.MaxHz = hz
	}
	if v, ok := m["fields"]; ok {
		var names []string
		if err := json.Unmarshal(v, &names); err != nil {
			return errors.New("option fields must be an array of field names")
		}
		o.Fields = 0
		for _, n := range names {
			i, ok := FieldIndex(n)
			if !ok {
				return fmt.Errorf("unknown field %q", n)
			}
			o.Fields |= 1 << uint(i)
		}
		if o.Fields == 0 {
			return errors.New("option fields must name at least one field")
		}
	}
	return nil
}

// AppendSub appends a SUB message; opts may be nil for the defaults.
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
			dst = append(dst, "]}"...)
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
		dst = appendBool(appendStr(append(dst, 0x83), "snap"), opts.Snap)
		dst = appendNumber(appendStr(dst, "maxHz"), opts.MaxHz)
		dst = appendArrayLen(appendStr(dst, "fields"), opts.Fields.Count())
		for i := 0; i < NumFields; i++ {
			if opts.Fields.Has(i) {
				dst = appendStr(dst, FieldNames[i])
			}
		}
	}
	return dst
}
