package codec

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

var sampleBars = []Bar{
	{T: 1764072000000000, Open: 187.25, High: 187.5, Low: 187.23, Close: 187.5, Volume: 300, Trades: 3},
	{T: 1764072060000000, Open: 187.5, High: 187.5, Low: 186.75, Close: 187, Volume: 1250.5, Trades: 41},
}

// TestBarMessages checks BARS and BAR against the reference library and
// our decoder, in both formats.
func TestBarMessages(t *testing.T) {
	tests := []struct {
		name string
		enc  func(f Format, dst []byte) []byte
		ref  []any
		want Message
	}{
		{"bars", func(f Format, d []byte) []byte { return f.AppendBars(d, 3, 1042, "1m", sampleBars) },
			[]any{int8(29), int8(3), uint16(1042), "1m", []any{
				[]any{uint64(1764072000000000), float32(187.25), float32(187.5), 187.23, float32(187.5), uint16(300), int8(3)},
				[]any{uint64(1764072060000000), float32(187.5), float32(187.5), float32(186.75), uint8(187), float32(1250.5), int8(41)},
			}},
			Message{Op: OpBars, SID: 3, Seq: 1042, Interval: "1m", Bars: sampleBars}},
		{"empty bars", func(f Format, d []byte) []byte { return f.AppendBars(d, 9, 0, "1s", nil) },
			[]any{int8(29), int8(9), int8(0), "1s", []any{}},
			Message{Op: OpBars, SID: 9, Interval: "1s"}},
		{"bar", func(f Format, d []byte) []byte { return f.AppendBar(d, 300, 70000, "1s", &sampleBars[1]) },
			[]any{int8(30), uint16(300), uint32(70000), "1s",
				[]any{uint64(1764072060000000), float32(187.5), float32(187.5), float32(186.75), uint8(187), float32(1250.5), int8(41)}},
			Message{Op: OpBar, SID: 300, Seq: 70000, Interval: "1s", Bar: sampleBars[1]}},
		{"negative prices", func(f Format, d []byte) []byte {
			return f.AppendBar(d, 1, 2, "5s", &Bar{T: 5000000, Open: -1.5, High: -1, Low: -37.1, Close: -37.1, Trades: 0})
		}, []any{int8(30), int8(1), int8(2), "5s", []any{uint32(5000000), float32(-1.5), int8(-1), -37.1, -37.1, int8(0), int8(0)}},
			Message{Op: OpBar, SID: 1, Seq: 2, Interval: "5s", Bar: Bar{T: 5000000, Open: -1.5, High: -1, Low: -37.1, Close: -37.1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := msgpack.NewDecoder(bytes.NewReader(tt.enc(Binary, nil)))
			var got []any
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.ref) {
				t.Fatalf("reference decode:\n got %#v\nwant %#v", got, tt.ref)
			}
			for _, f := range []Format{Binary, JSON} {
				if b := tt.enc(f, nil); f == JSON && !json.Valid(b) {
					t.Fatalf("invalid JSON %s", b)
				}
				frame := tt.enc(f, f.AppendSeparator(tt.enc(f, nil)))
				var m Message
				n := 0
				if err := f.DecodeMessages(frame, &m, func(m *Message) error {
					n++
					got := *m
					if len(got.Bars) == 0 {
						got.Bars = nil // reused: empty compares as absent
					}
					if !reflect.DeepEqual(got, tt.want) {
						t.Fatalf("%s: decoded\n%+v\nwant\n%+v", f, got, tt.want)
					}
					return nil
				}); err != nil || n != 2 {
					t.Fatalf("%s: %d messages, %v", f, n, err)
				}
			}
		})
	}
}

// TestBarsNotFinite: a bar value a double cannot hold (a volume summed
// past the largest double) is sent as the nearest one, in valid JSON, and
// alike in both formats.
func TestBarsNotFinite(t *testing.T) {
	b := Bar{T: 60e6, Open: 1, High: math.Inf(1), Low: math.Inf(-1), Close: math.NaN(), Volume: math.Inf(1), Trades: 2}
	want := Bar{T: 60e6, Open: 1, High: math.MaxFloat64, Low: -math.MaxFloat64, Close: 0, Volume: math.MaxFloat64, Trades: 2}
	for _, f := range []Format{Binary, JSON} {
		frame := f.AppendBar(nil, 1, 2, "1m", &b)
		if f == JSON && !json.Valid(frame) {
			t.Fatalf("invalid JSON %s", frame)
		}
		var m Message
		if err := f.DecodeMessages(frame, &m, func(m *Message) error {
			if m.Bar != want {
				t.Errorf("%s: decoded %+v, want %+v", f, m.Bar, want)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// TestDecodeBarsRefusals: a BARS or BAR that breaks the rules is refused
// with ErrBadMessage; elements a later version appends are ignored.
func TestDecodeBarsRefusals(t *testing.T) {
	tests := []struct {
		name, frame string
		ok          bool
	}{
		{"trailing elements", `[30,1,2,"1m",[60000000,1,2,0.5,1,10,3,"later"],"later"]`, true},
		{"integral floats accepted", `[30,1,2,"1m",[6.0e7,1,2,0.5,1,10,3.0]]`, true},
		{"short bar", `[30,1,2,"1m",[60000000,1,2,0.5,1,10]]`, false},
		{"interval not a string", `[30,1,2,60,[60000000,1,2,0.5,1,10,3]]`, false},
		{"bar not an array", `[30,1,2,"1m",{"t":1}]`, false},
		{"fractional t", `[30,1,2,"1m",[60000000.5,1,2,0.5,1,10,3]]`, false},
		{"fractional n", `[30,1,2,"1m",[60000000,1,2,0.5,1,10,3.5]]`, false},
		{"negative n", `[30,1,2,"1m",[60000000,1,2,0.5,1,10,-3]]`, false},
		{"bars not an array", `[29,1,2,"1m",7]`, false},
		{"one bad bar of bars", `[29,1,2,"1m",[[60000000,1,2,0.5,1,10,3],[1]]]`, false},
		{"missing bars", `[29,1,2,"1m"]`, false},
		{"sid beyond 32 bits", `[30,4294967296,2,"1m",[60000000,1,2,0.5,1,10,3]]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := JSON.DecodeMessages([]byte(tt.frame), &m, func(*Message) error { return nil })
			if tt.ok != (err == nil) {
				t.Fatalf("ok %v, error %v", tt.ok, err)
			}
		})
	}
}

// jsonToMsgpack turns a JSON text into MessagePack of the same value,
// integers as integers, so that one table serves both formats.
func jsonToMsgpack(t *testing.T, text string) []byte {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			if i, err := v.Int64(); err == nil {
				return i
			}
			if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				return u
			}
			f, _ := v.Float64()
			return f
		case []any:
			for i := range v {
				v[i] = conv(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = conv(v[k])
			}
		}
		return v
	}
	return mustMsgpack(t, conv(v))
}

// TestDecodeBarOptions holds the SUB options bars, barCount and barSince
// to the contract (PROTOCOL.md §5.1), in both formats: what is accepted,
// and the exact ERROR text of each refusal.
func TestDecodeBarOptions(t *testing.T) {
	sub := func(opts SubOptions) SubOptions {
		o := DefaultSubOptions()
		o.Bars, o.BarCount, o.BarSince, o.HasBarSince = opts.Bars, opts.BarCount, opts.BarSince, opts.HasBarSince
		return o
	}
	tests := []struct {
		name, opts string
		want       SubOptions
		err        string
	}{
		{"live bars only", `{"bars":"1m"}`, sub(SubOptions{Bars: "1m"}), ""},
		{"count", `{"bars":"1s","barCount":390}`, sub(SubOptions{Bars: "1s", BarCount: 390}), ""},
		{"count bounds", `{"barCount":10000,"bars":"1m"}`, sub(SubOptions{Bars: "1m", BarCount: 10000}), ""},
		{"count 1", `{"barCount":1,"bars":"1m"}`, sub(SubOptions{Bars: "1m", BarCount: 1}), ""},
		{"since", `{"bars":"1m","barSince":1764072000000000}`, sub(SubOptions{Bars: "1m", BarSince: 1764072000000000, HasBarSince: true}), ""},
		{"since 0", `{"bars":"1m","barSince":0}`, sub(SubOptions{Bars: "1m", HasBarSince: true}), ""},
		{"any interval name passes the codec", `{"bars":"5m"}`, sub(SubOptions{Bars: "5m"}), ""},
		{"count 0", `{"bars":"1m","barCount":0}`, SubOptions{}, "option barCount must be an integer from 1 to 10000"},
		{"count too many", `{"bars":"1m","barCount":10001}`, SubOptions{}, "option barCount must be an integer from 1 to 10000"},
		{"count negative", `{"bars":"1m","barCount":-5}`, SubOptions{}, "option barCount must be an integer from 1 to 10000"},
		{"count fractional", `{"bars":"1m","barCount":2.5}`, SubOptions{}, "option barCount must be an integer from 1 to 10000"},
		{"count a string", `{"bars":"1m","barCount":"10"}`, SubOptions{}, "option barCount must be an integer from 1 to 10000"},
		{"count null", `{"bars":"1m","barCount":null}`, SubOptions{}, "option barCount must be an integer from 1 to 10000"},
		{"count without bars", `{"barCount":10}`, SubOptions{}, "option barCount needs option bars"},
		{"since without bars", `{"barSince":10}`, SubOptions{}, "option barSince needs option bars"},
		{"count and since", `{"bars":"1m","barCount":10,"barSince":5}`, SubOptions{}, "options barCount and barSince exclude each other"},
		{"since negative", `{"bars":"1m","barSince":-1}`, SubOptions{}, "option barSince must be an integer of unix microseconds, from 0 to 2^53-1"},
		{"since 2^53", `{"bars":"1m","barSince":9007199254740992}`, SubOptions{}, "option barSince must be an integer of unix microseconds, from 0 to 2^53-1"},
		{"since fractional", `{"bars":"1m","barSince":1.5}`, SubOptions{}, "option barSince must be an integer of unix microseconds, from 0 to 2^53-1"},
		{"bars empty", `{"bars":""}`, SubOptions{}, "option bars must be a non-empty string naming an interval"},
		{"bars a number", `{"bars":60}`, SubOptions{}, "option bars must be a non-empty string naming an interval"},
		{"bars null", `{"bars":null}`, SubOptions{}, "option bars must be a non-empty string naming an interval"},
		{"bars twice", `{"bars":"1m","bars":"1s"}`, SubOptions{}, "option bars given twice"},
		{"count twice", `{"bars":"1m","barCount":1,"barCount":2}`, SubOptions{}, "option barCount given twice"},
	}
	for _, tt := range tests {
		for _, f := range []Format{Binary, JSON} {
			t.Run(tt.name+"/"+f.String(), func(t *testing.T) {
				text := `[1,7,["AAPL"],` + tt.opts + `]`
				frame := []byte(text)
				if f == Binary {
					if strings.Contains(tt.name, "twice") {
						t.Skip("the reference encoder cannot write a key twice; TestDecodeCommandsBinaryDuplicateOption covers it")
					}
					frame = jsonToMsgpack(t, text)
				}
				var got *Command
				var gotErr error
				var c Command
				f.DecodeCommands(frame, &c, func(cmd *Command, err error) { got, gotErr = cmd, err })
				if tt.err != "" {
					ce, ok := gotErr.(*CommandError)
					if !ok || ce.ID != 7 || ce.Msg != tt.err {
						t.Fatalf("got %v (%#v), want error 7 %q", gotErr, gotErr, tt.err)
					}
					if ce.Error() != "bad request: "+tt.err {
						t.Fatalf("ERROR text %q", ce.Error())
					}
					return
				}
				if gotErr != nil || got.Opts != tt.want {
					t.Fatalf("got %+v %v, want %+v", got, gotErr, tt.want)
				}
				// The client's encoder writes what decodes alike.
				f.DecodeCommands(f.AppendSub(nil, 7, []string{"AAPL"}, &tt.want), &c, func(cmd *Command, err error) {
					if err != nil || cmd.Opts != tt.want {
						t.Fatalf("re-encoded: %+v %v", cmd, err)
					}
				})
			})
		}
	}
}

// TestBarsAllocateNothing: encoding BAR and BARS into a buffer with room,
// and decoding a stream of BARs of one interval, allocate nothing — a
// dashboard of thousands of symbols receives them at every change.
func TestBarsAllocateNothing(t *testing.T) {
	for _, f := range []Format{Binary, JSON} {
		buf := make([]byte, 0, 1024)
		if n := testing.AllocsPerRun(100, func() {
			buf = f.AppendBar(buf[:0], 3, 1042, "1m", &sampleBars[0])
			buf = f.AppendBars(f.AppendSeparator(buf), 3, 1042, "1m", sampleBars)
		}); n != 0 {
			t.Errorf("%s: encoding allocates %v times", f, n)
		}
		frame := f.AppendBar(nil, 3, 1042, "1m", &sampleBars[0])
		frame = f.AppendBars(f.AppendSeparator(frame), 3, 1043, "1m", sampleBars)
		var m Message
		fn := func(*Message) error { return nil }
		_ = f.DecodeMessages(frame, &m, fn) // the first sets the interval and grows Bars
		if n := testing.AllocsPerRun(100, func() {
			if err := f.DecodeMessages(frame, &m, fn); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: decoding allocates %v times", f, n)
		}
		sub := f.AppendSub(nil, 1, []string{"AAPL"}, &SubOptions{Snap: true, Fields: AllFields, Bars: "1m", BarCount: 30})
		var c Command
		f.DecodeCommands(sub, &c, func(*Command, error) {})
		if n := testing.AllocsPerRun(100, func() { f.DecodeCommands(sub, &c, func(*Command, error) {}) }); n != 0 {
			t.Errorf("%s: decoding a SUB with bars allocates %v times", f, n)
		}
	}
}

func BenchmarkAppendBar(b *testing.B) {
	for _, f := range []Format{Binary, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			buf := make([]byte, 0, 128)
			b.ReportAllocs()
			for b.Loop() {
				buf = f.AppendBar(buf[:0], 17, 123456, "1m", &sampleBars[1])
			}
			b.ReportMetric(float64(len(buf)), "bytes/msg")
		})
	}
}
