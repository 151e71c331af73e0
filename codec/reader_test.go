package codec

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONStrings checks the JSON reader's strings against encoding/json,
// the reference: escapes, surrogate pairs, lone surrogates and invalid
// UTF-8 decode alike, and strings without escapes alias the input.
func TestJSONStrings(t *testing.T) {
	for _, in := range []string{
		`"AAPL"`, `"\u0041B\/C"`, `"\ud83d\ude00 grin"`, `"\"q\" \\ \b\f\n\r\t"`,
		`"lone \ud83d here"`, `"low \ude00 first"`, `"\ud83d\u0041"`, "\"bad \xff utf8\"",
		`"caf\u00e9 café"`, `"\uD834\uDD1E"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("reference: %s: %v", in, err)
		}
		r := reader{b: []byte(in), json: true}
		got, err := r.str()
		if err != nil || string(got) != want || r.i != len(in) {
			t.Errorf("%s: got %q, %v (at %d), want %q", in, got, err, r.i, want)
		}
	}
	in := []byte(`"plain"`)
	r := reader{b: in, json: true}
	if got, _ := r.str(); &got[0] != &in[1] {
		t.Error("a string without escapes was copied")
	}
	for _, in := range []string{`"\x41"`, `"\u12"`, `"\u12G4"`, "\"tab\there\"", `"open`, `"\'"`} {
		r := reader{b: []byte(in), json: true}
		if _, err := r.str(); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}

// TestDecodeCommandsJSON holds the JSON details the protocol promises for
// client frames, each checked against the binary twin where there is one.
func TestDecodeCommandsJSON(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	tests := []struct {
		name, frame string
		want        []string // per message: "op id detail" or "error id: text"
	}{
		{"no whitespace between messages", `[4,1,1][4,2,2.50][2,3,["A"]]`, []string{"4 1 t=1", "4 2 t=2.50", "2 3 [A]"}},
		{"whitespace around messages", " \t[4,1,1]\r\n\n [4,2,-0.5e-3] ", []string{"4 1 t=1", "4 2 t=-0.5e-3"}},
		{"ping value kept exactly", `[4,1,1764000000.123456789012345]`, []string{"4 1 t=1764000000.123456789012345"}},
		{"op not an integer literal", `[4.0,1,1]`, []string{"error 0: op is not a positive integer"}},
		{"op a string", `["4",1,1]`, []string{"error 0: op is not a positive integer"}},
		{"id not an integer literal", `[4,7.0,1]`, []string{"error 0: id is not a positive integer"}},
		{"id with exponent", `[4,7e0,1]`, []string{"error 0: id is not a positive integer"}},
		{"id a string", `[4,"7",1]`, []string{"error 0: id is not a positive integer"}},
		{"id negative", `[4,-7,1]`, []string{"error 0: id is not a positive integer"}},
		{"id beyond 64 bits", `[4,18446744073709551616,1]`, []string{"error 0: id is not a positive integer"}},
		{"ping value beyond float64", `[4,1,1e400]`, []string{"error 1: ping value must be a number"}},
		{"maxHz beyond float64", `[1,1,["A"],{"maxHz":-1e400}]`, []string{"error 1: option maxHz must be a number from 0 to 1000"}},
		{"escaped symbols", `[1,1,["\u0041APL","B\/C"]]`, []string{"1 1 [AAPL B/C]"}},
		{"token with surrogate pair", `[5,2,"tok\ud83d\ude00"]`, []string{"5 2 token=tok\U0001F600"}},
		{"duplicate option", `[1,3,["A"],{"maxHz":1,"maxHz":2}]`, []string{"error 3: option maxHz given twice"}},
		{"unknown options skipped", `[1,3,["A"],{"x":{"y":[1,{"z":null}]},"snap":false}]`, []string{"1 3 [A]"}},
		{"null options", `[1,3,["A"],null]`, []string{"1 3 [A]"}},
		{"options not an object", `[1,3,["A"],[]]`, []string{"error 3: options must be an object"}},
		{"null symbol", `[1,3,["A",null]]`, []string{"error 3: symbols must be an array of strings"}},
		{"null snap", `[1,3,["A"],{"snap":null}]`, []string{"error 3: option snap must be a boolean"}},
		{"short array", `[1]`, []string{"error 0: a message is an array [op, id, ...]"}},
		{"scalars between messages", `7 [4,1,1] "x"`, []string{"error 0: a message is an array [op, id, ...]", "4 1 t=1", "error 0: a message is an array [op, id, ...]"}},
		{"deep nesting", `[4,1,1]` + deep, []string{"4 1 t=1", "error 0: malformed JSON: nested too deeply at byte 40"}},
		{"unterminated", `[4,1,1][4,2`, []string{"4 1 t=1", "error 0: malformed JSON: unterminated array at byte 11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describeCommands(JSON, []byte(tt.frame))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestDecodeCommandsBinaryDuplicateOption: MessagePack maps refuse a
// repeated option name like JSON objects do.
func TestDecodeCommandsBinaryDuplicateOption(t *testing.T) {
	frame := []byte{0x94, 0x01, 0x03, 0x91, 0xa1, 'A', 0x82, 0xa4, 's', 'n', 'a', 'p', 0xc2, 0xa4, 's', 'n', 'a', 'p', 0xc3}
	got := describeCommands(Binary, frame)
	if want := "error 3: option snap given twice"; len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func describeCommands(f Format, frame []byte) []string {
	var got []string
	var c Command
	f.DecodeCommands(frame, &c, func(cmd *Command, err error) {
		switch {
		case err != nil:
			ce := err.(*CommandError)
			got = append(got, "error "+itoa(ce.ID)+": "+ce.Msg)
		case cmd.Op == OpPing:
			got = append(got, "4 "+itoa(cmd.ID)+" t="+string(cmd.T))
		case cmd.Op == OpAuth:
			got = append(got, "5 "+itoa(cmd.ID)+" token="+string(cmd.Token))
		default:
			syms := make([]string, len(cmd.Syms))
			for i, s := range cmd.Syms {
				syms[i] = string(s)
			}
			got = append(got, itoa(uint64(cmd.Op))+" "+itoa(cmd.ID)+" ["+strings.Join(syms, " ")+"]")
		}
	})
	return got
}

func itoa(u uint64) string { return string(JSON.AppendNumber(nil, float64(u))) }

// TestDecodeMessagesJSONRefusals: a server frame that breaks the rules is
// refused with ErrBadMessage, never decoded into something else.
func TestDecodeMessagesJSONRefusals(t *testing.T) {
	for _, frame := range []string{
		`[23,1,2,{"1":1.5,"1":2}]`,                        // a field twice
		`[23,1,2,{"bid":1}]`,                              // a key that is not an index
		`[23,1,2.0,{}]`,                                   // seq not an integer
		`[21,1,[["A",4294967296]]]`,                       // sid beyond 32 bits
		`[21,1,[["A"]]]`,                                  // ack entry too short
		`[24,1,1e400,5]`,                                  // t beyond float64
		`[20,1,"n",5000,["ts",1]]`,                        // a field name that is not a string
		strings.Repeat("[", 40) + strings.Repeat("]", 40), // too deep
	} {
		var m Message
		err := JSON.DecodeMessages([]byte(frame), &m, func(*Message) error { return nil })
		if err == nil {
			t.Errorf("%s: accepted as %+v", frame, m)
		}
	}
	// Elements a later version adds are skipped, in both formats.
	var m Message
	n := 0
	if err := JSON.DecodeMessages([]byte(`[21,1,[["A",2,"later"],["B",3]],"later"]`), &m, func(m *Message) error {
		n++
		if len(m.Acks) != 2 || m.Acks[1] != (SymbolID{"B", 3}) {
			t.Errorf("%+v", m.Acks)
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatal(err, n)
	}
}

// TestHostileFramesAllocateLittle: a frame nested deep or with a lying
// length is refused without allocating in proportion to it.
func TestHostileFramesAllocateLittle(t *testing.T) {
	frames := []struct {
		f     Format
		frame []byte
	}{
		{JSON, []byte(strings.Repeat("[", 1<<20))},
		{JSON, []byte(`[1,1,[` + strings.Repeat(`"A",`, 20000) + `"A"]]`)},
		{Binary, append([]byte{0x93, 0x01, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, make([]byte, 1<<16)...)},
		{Binary, append(make([]byte, 0, 1<<20), strings.Repeat("\x91", 1<<20)...)},
	}
	for i, fr := range frames {
		var c Command
		allocs := testing.AllocsPerRun(5, func() {
			fr.f.DecodeCommands(fr.frame, &c, func(*Command, error) {})
		})
		if allocs > 8 {
			t.Errorf("frame %d: %v allocations", i, allocs)
		}
	}
}

// FuzzJSONString holds the JSON reader's strings to encoding/json's: the
// same strings are accepted, with the same values.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`AAPL`, `\u0041`, `\ud83d\ude00`, `\ud83d`, `\ude00\ud83d`, "\xff\xfe", `\"\\\/\b\f\n\r\t`, `\x`, "\t", `é`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := append(append([]byte{'"'}, body...), '"')
		var want string
		refErr := json.Unmarshal(in, &want)
		r := reader{b: in, json: true}
		got, err := r.str()
		ok := err == nil && r.i == len(in)
		if ok != (refErr == nil) {
			t.Fatalf("%q: accepted %v (%v), encoding/json %v", in, ok, err, refErr)
		}
		if ok && string(got) != want {
			t.Fatalf("%q: got %q, encoding/json %q", in, got, want)
		}
	})
}
