package codec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docs/PROTOCOL.md is what clients in other languages are written from, so
// its byte-level examples are held to this package: each must decode, in
// both formats, to the same messages its label names, and re-encode to the
// very bytes and text the doc shows. Any drift between the doc and the codec
// fails here rather than in someone else's client.
//
// The doc marks its examples so that they can be found without guessing:
//
//	Wire example (client → server): SUB        one frame of client messages
//	Wire example (server → client): ACK, DELTA one frame of server messages
//	Record example (key "AAPL"):               one Kafka record value
//
// followed by a ```hex block (bytes before an optional "#" comment) and a
// ```json block (one message per line). Rows of the number table have the
// form | `value` | `hex` | `json` |.

const protocolDocPath = "../docs/PROTOCOL.md"

var (
	wireLabelRE   = regexp.MustCompile(`^Wire example \((client → server|server → client)\): ([A-Z]+(?:, [A-Z]+)*)$`)
	recordLabelRE = regexp.MustCompile(`^Record example \(key "([^"]*)"\):$`)
	numberRowRE   = regexp.MustCompile("^\\| `(-?[0-9.]+)` \\| `([0-9a-f ]+)` \\| `([^`]+)` \\|$")
)

var docOps = map[string]Op{
	"SUB": OpSub, "UNSUB": OpUnsub, "SNAP": OpSnap, "PING": OpPing,
	"HELLO": OpHello, "ACK": OpAck, "SNAPSHOT": OpSnapshot, "DELTA": OpDelta,
	"PONG": OpPong, "ERROR": OpError, "HEARTBEAT": OpHeartbeat, "STATUS": OpStatus,
	"AUTH": OpAuth, "AUTHED": OpAuthed, "BARS": OpBars, "BAR": OpBar,
}

type docExample struct {
	line   int
	label  string
	client bool     // wire example sent by the client
	ops    []string // wire example: the messages of the frame, in order
	record bool
	key    string // record example: the Kafka key
	bin    []byte
	json   string
}

type docNumber struct {
	line          int
	value         float64
	bin           []byte
	json, valText string
}

// parseProtocolDoc extracts the examples and number rows. A hex block
// without a label, or a label without its two blocks, is an error: an
// example the test cannot check must not slip into the doc.
func parseProtocolDoc(doc []byte) ([]docExample, []docNumber, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	i := 0
	// block returns the body of the fenced block of the given info string
	// that is the next non-blank content after line i.
	block := func(info string) ([]string, error) {
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i >= len(lines) || lines[i] != "```"+info {
			return nil, fmt.Errorf("line %d: want a ```%s block", i+1, info)
		}
		start := i + 1
		for i = start; i < len(lines) && lines[i] != "```"; i++ {
		}
		if i >= len(lines) {
			return nil, fmt.Errorf("line %d: unterminated ```%s block", start, info)
		}
		body := lines[start:i]
		i++
		return body, nil
	}
	var examples []docExample
	var numbers []docNumber
	for i < len(lines) {
		l := lines[i]
		ex := docExample{line: i + 1, label: l}
		if m := wireLabelRE.FindStringSubmatch(l); m != nil {
			ex.client = m[1] == "client → server"
			ex.ops = strings.Split(m[2], ", ")
		} else if m := recordLabelRE.FindStringSubmatch(l); m != nil {
			ex.record, ex.key = true, m[1]
		} else {
			if l == "```hex" {
				return nil, nil, fmt.Errorf("line %d: hex block without a label", i+1)
			}
			if m := numberRowRE.FindStringSubmatch(l); m != nil {
				v, err := strconv.ParseFloat(m[1], 64)
				if err != nil {
					return nil, nil, fmt.Errorf("line %d: %v", i+1, err)
				}
				b, err := hex.DecodeString(strings.ReplaceAll(m[2], " ", ""))
				if err != nil {
					return nil, nil, fmt.Errorf("line %d: %v", i+1, err)
				}
				numbers = append(numbers, docNumber{line: i + 1, value: v, valText: m[1], bin: b, json: m[3]})
			}
			i++
			continue
		}
		i++
		hexLines, err := block("hex")
		if err != nil {
			return nil, nil, fmt.Errorf("%q: %w", ex.label, err)
		}
		for _, hl := range hexLines {
			if k := strings.IndexByte(hl, '#'); k >= 0 {
				hl = hl[:k]
			}
			for _, tok := range strings.Fields(hl) {
				b, err := hex.DecodeString(tok)
				if err != nil || len(b) != 1 {
					return nil, nil, fmt.Errorf("%q: %q is not a hex byte", ex.label, tok)
				}
				ex.bin = append(ex.bin, b[0])
			}
		}
		jsonLines, err := block("json")
		if err != nil {
			return nil, nil, fmt.Errorf("%q: %w", ex.label, err)
		}
		ex.json = strings.Join(jsonLines, "\n")
		examples = append(examples, ex)
	}
	return examples, numbers, nil
}

func TestProtocolDoc(t *testing.T) {
	doc, err := os.ReadFile(protocolDocPath)
	if err != nil {
		t.Fatal(err)
	}
	examples, numbers, err := parseProtocolDoc(doc)
	if err != nil {
		t.Fatal(err)
	}

	// Every message type must keep at least one example, so that deleting
	// one from the doc is caught too.
	covered := map[string]bool{}
	records := 0
	for _, ex := range examples {
		for _, op := range ex.ops {
			covered[op] = true
		}
		if ex.record {
			records++
		}
	}
	for name := range docOps {
		if !covered[name] {
			t.Errorf("docs/PROTOCOL.md has no wire example of %s", name)
		}
	}
	if records == 0 {
		t.Error("docs/PROTOCOL.md has no record example")
	}
	if len(numbers) == 0 {
		t.Error("docs/PROTOCOL.md has no number table")
	}

	for _, ex := range examples {
		t.Run(fmt.Sprintf("line%d", ex.line), func(t *testing.T) {
			t.Logf("%s", ex.label)
			switch {
			case ex.record:
				checkDocRecord(t, ex)
			case ex.client:
				checkDocCommands(t, ex)
			default:
				checkDocMessages(t, ex)
			}
		})
	}
	for _, n := range numbers {
		t.Run(fmt.Sprintf("line%d_number_%s", n.line, n.valText), func(t *testing.T) {
			if got := Binary.AppendNumber(nil, n.value); !bytes.Equal(got, n.bin) {
				t.Errorf("MessagePack of %s is % x, the doc says % x", n.valText, got, n.bin)
			}
			if got := string(JSON.AppendNumber(nil, n.value)); got != n.json {
				t.Errorf("JSON of %s is %s, the doc says %s", n.valText, got, n.json)
			}
			r := reader{b: n.bin}
			if v, err := r.mpNumber(); err != nil || v != n.value || !r.done() {
				t.Errorf("% x reads back as %v (%v), want %s", n.bin, v, err, n.valText)
			}
		})
	}
}

// docCommand is a decoded client message detached from its frame.
type docCommand struct {
	Op    Op
	ID    uint64
	Syms  []string
	Opts  SubOptions
	T     float64
	Token string
}

func decodeDocCommands(t *testing.T, f Format, frame []byte) []docCommand {
	t.Helper()
	var out []docCommand
	var c Command
	f.DecodeCommands(frame, &c, func(c *Command, err error) {
		if err != nil {
			t.Errorf("%s: %v", f, err)
			return
		}
		d := docCommand{Op: c.Op, ID: c.ID, Opts: c.Opts, Token: string(c.Token)}
		for _, s := range c.Syms {
			d.Syms = append(d.Syms, string(s))
		}
		if c.Op == OpPing {
			var err error
			if f == JSON {
				d.T, err = strconv.ParseFloat(string(c.T), 64)
			} else {
				r := reader{b: c.T}
				d.T, err = r.mpNumber()
			}
			if err != nil {
				t.Errorf("%s: PING t %q: %v", f, c.T, err)
			}
		}
		out = append(out, d)
	})
	return out
}

// encodeDocCommand re-encodes c with the client-side encoder. Options equal
// to the defaults are taken as absent: the doc writes such a SUB without
// them.
func encodeDocCommand(f Format, dst []byte, c docCommand) []byte {
	switch c.Op {
	case OpSub:
		opts := &c.Opts
		if *opts == DefaultSubOptions() {
			opts = nil
		}
		return f.AppendSub(dst, c.ID, c.Syms, opts)
	case OpUnsub:
		return f.AppendUnsub(dst, c.ID, c.Syms)
	case OpSnap:
		return f.AppendSnap(dst, c.ID, c.Syms)
	case OpPing:
		return f.AppendPing(dst, c.ID, c.T)
	case OpAuth:
		return f.AppendAuth(dst, c.ID, c.Token)
	}
	return dst
}

func checkDocCommands(t *testing.T, ex docExample) {
	checkDocFrame(t, ex,
		func(f Format, b []byte) []docCommand { return decodeDocCommands(t, f, b) },
		func(c *docCommand) Op { return c.Op },
		func(f Format, dst []byte, c *docCommand) []byte { return encodeDocCommand(f, dst, *c) })
}

// checkDocFrame checks one example frame: its hex and JSON decode to the
// same messages, of the ops the label names, and re-encode to the bytes
// and text of the doc.
func checkDocFrame[M any](t *testing.T, ex docExample, decode func(Format, []byte) []M, op func(*M) Op, encode func(Format, []byte, *M) []byte) {
	bin := decode(Binary, ex.bin)
	js := decode(JSON, []byte(ex.json))
	checkDocOps(t, ex, len(bin), len(js), func(i int) (Op, Op) { return op(&bin[i]), op(&js[i]) })
	if !reflect.DeepEqual(bin, js) {
		t.Errorf("the hex and the JSON are different messages:\nhex:  %+v\njson: %+v", bin, js)
	}
	var b, j []byte
	for i := range bin {
		b = encode(Binary, b, &bin[i])
	}
	for i := range js {
		j = encode(JSON, JSON.AppendSeparator(j), &js[i])
	}
	checkDocBytes(t, ex, b, j)
}

func decodeDocMessages(t *testing.T, f Format, frame []byte) []Message {
	t.Helper()
	var out []Message
	var m Message
	err := f.DecodeMessages(frame, &m, func(m *Message) error {
		d := *m
		// The decoder reuses m's slices; empty ones compare as absent.
		d.FieldNames = slices.Clone(m.FieldNames)
		d.Acks = slices.Clone(m.Acks)
		d.Syms = slices.Clone(m.Syms)
		d.Bars = slices.Clone(m.Bars)
		if len(d.Bars) == 0 {
			d.Bars = nil
		}
		if len(d.FieldNames) == 0 {
			d.FieldNames = nil
		}
		if len(d.Acks) == 0 {
			d.Acks = nil
		}
		if len(d.Syms) == 0 {
			d.Syms = nil
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		t.Errorf("%s: %v", f, err)
	}
	return out
}

// encodeDocMessage re-encodes m with the server's encoder.
func encodeDocMessage(t *testing.T, f Format, dst []byte, m *Message) []byte {
	switch m.Op {
	case OpHello:
		return f.AppendHello(dst, m.ServerID, m.HeartbeatMs)
	case OpAck:
		return f.AppendAck(dst, m.ID, m.Acks)
	case OpSnapshot, OpDelta:
		return f.AppendState(dst, m.Op, m.SID, m.Seq, m.Mask, &m.Values)
	case OpPong:
		return f.AppendPong(dst, m.ID, f.AppendNumber(nil, m.T), m.ServerTimeUs)
	case OpError:
		return f.AppendError(dst, m.ID, m.Code, m.Text, m.Syms)
	case OpHeartbeat:
		return f.AppendHeartbeat(dst, m.ServerTimeUs)
	case OpStatus:
		return f.AppendStatus(dst, m.State, m.Detail)
	case OpAuthed:
		return f.AppendAuthed(dst, m.ID, m.ExpiresUs)
	case OpBars:
		return f.AppendBars(dst, m.SID, m.Seq, m.Interval, m.Bars)
	case OpBar:
		return f.AppendBar(dst, m.SID, m.Seq, m.Interval, &m.Bar)
	}
	t.Errorf("op %d is not a server message", m.Op)
	return dst
}

func checkDocMessages(t *testing.T, ex docExample) {
	checkDocFrame(t, ex,
		func(f Format, b []byte) []Message { return decodeDocMessages(t, f, b) },
		func(m *Message) Op { return m.Op },
		func(f Format, dst []byte, m *Message) []byte { return encodeDocMessage(t, f, dst, m) })
}

// checkDocOps checks that both forms hold the messages the label names.
func checkDocOps(t *testing.T, ex docExample, nBin, nJSON int, ops func(i int) (Op, Op)) {
	t.Helper()
	if nBin != len(ex.ops) || nJSON != len(ex.ops) {
		t.Fatalf("label names %d messages; the hex holds %d, the JSON %d", len(ex.ops), nBin, nJSON)
	}
	for i, name := range ex.ops {
		want := docOps[name]
		if b, j := ops(i); b != want || j != want {
			t.Errorf("message %d: label says %s (op %d); the hex holds op %d, the JSON op %d", i+1, name, want, b, j)
		}
		if client := want < OpHello; client != ex.client {
			t.Errorf("message %d: %s does not go in the direction the label says", i+1, name)
		}
	}
}

func checkDocBytes(t *testing.T, ex docExample, bin, js []byte) {
	t.Helper()
	if !bytes.Equal(bin, ex.bin) {
		t.Errorf("the encoder writes\n% x\nthe doc shows\n% x", bin, ex.bin)
	}
	if string(js) != ex.json {
		t.Errorf("the encoder writes\n%s\nthe doc shows\n%s", js, ex.json)
	}
}

func checkDocRecord(t *testing.T, ex docExample) {
	decode := func(value []byte) Update {
		var u Update
		if err := DecodeRecord([]byte(ex.key), value, &u); err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		u.Sym = slices.Clone(u.Sym)
		return u
	}
	bin, js := decode(ex.bin), decode([]byte(ex.json))
	if !reflect.DeepEqual(bin, js) {
		t.Errorf("the hex and the JSON are different updates:\nhex:  %+v\njson: %+v", bin, js)
	}
	// Whether the value names the symbol itself decides how it re-encodes.
	var u Update
	withSym := DecodeRecord(nil, ex.bin, &u) == nil
	checkDocBytes(t, ex, AppendRecord(nil, &bin, withSym), AppendRecordJSON(nil, &js, withSym))
}
