package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func sampleState() *[NumFields]float64 {
	var v [NumFields]float64
	v[FieldTS] = 1764000000123456
	v[FieldBid] = 187.23
	v[FieldAsk] = 187.25
	v[FieldBidSize] = 300
	return &v
}

// TestServerMessages checks each encoder against the reference library and
// against our own client-side decoder, in both formats.
func TestServerMessages(t *testing.T) {
	mask := FieldMask(1<<FieldTS | 1<<FieldBid | 1<<FieldAsk)
	tests := []struct {
		name  string
		enc   func(f Format, dst []byte) []byte
		ref   []any // the message as the reference library decodes it
		check func(t *testing.T, m *Message)
	}{
		{"hello", func(f Format, d []byte) []byte { return f.AppendHello(d, "node-1", 5000) },
			nil, func(t *testing.T, m *Message) {
				if m.Op != OpHello || m.Version != 1 || m.ServerID != "node-1" || m.HeartbeatMs != 5000 || len(m.FieldNames) != NumFields {
					t.Fatalf("%+v", m)
				}
			}},
		{"ack", func(f Format, d []byte) []byte {
			return f.AppendAck(d, 7, []SymbolID{{"AAPL", 1}, {"MSFT", 300}})
		}, []any{int8(21), int8(7), []any{[]any{"AAPL", int8(1)}, []any{"MSFT", uint16(300)}}}, func(t *testing.T, m *Message) {
			if m.Op != OpAck || m.ID != 7 || !reflect.DeepEqual(m.Acks, []SymbolID{{"AAPL", 1}, {"MSFT", 300}}) {
				t.Fatalf("%+v", m)
			}
		}},
		{"delta", func(f Format, d []byte) []byte {
			return f.AppendState(d, OpDelta, 3, 42, mask, sampleState())
		}, []any{int8(23), int8(3), int8(42), map[any]any{int8(0): uint64(1764000000123456), int8(1): 187.23, int8(3): float32(187.25)}}, func(t *testing.T, m *Message) {
			if m.Op != OpDelta || m.SID != 3 || m.Seq != 42 || m.Mask != mask || m.Values[FieldBid] != 187.23 || m.Values[FieldAsk] != 187.25 || m.Values[FieldTS] != 1764000000123456 {
				t.Fatalf("%+v", m)
			}
		}},
		{"empty snapshot", func(f Format, d []byte) []byte {
			return f.AppendState(d, OpSnapshot, 9, 0, 0, sampleState())
		}, []any{int8(22), int8(9), int8(0), map[any]any{}}, func(t *testing.T, m *Message) {
			if m.Op != OpSnapshot || m.Seq != 0 || m.Mask != 0 {
				t.Fatalf("%+v", m)
			}
		}},
		{"error", func(f Format, d []byte) []byte {
			return f.AppendError(d, 5, 400, "invalid symbol", []string{"A B", "\xff"})
		}, []any{int8(25), int8(5), uint16(400), "invalid symbol", []any{"A B", "\uFFFD"}}, func(t *testing.T, m *Message) {
			if m.Op != OpError || m.ID != 5 || m.Code != 400 || len(m.Syms) != 2 {
				t.Fatalf("%+v", m)
			}
		}},
		{"heartbeat", func(f Format, d []byte) []byte { return f.AppendHeartbeat(d, 1764000000123456) },
			[]any{int8(26), uint64(1764000000123456)}, func(t *testing.T, m *Message) {
				if m.Op != OpHeartbeat || m.ServerTimeUs != 1764000000123456 {
					t.Fatalf("%+v", m)
				}
			}},
		{"status", func(f Format, d []byte) []byte { return f.AppendStatus(d, StatusStale, "broker gone") },
			[]any{int8(27), "stale", "broker gone"}, func(t *testing.T, m *Message) {
				if m.Op != OpStatus || m.State != StatusStale || m.Detail != "broker gone" {
					t.Fatalf("%+v", m)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := tt.enc(Binary, nil)
			if tt.ref != nil {
				dec := msgpack.NewDecoder(bytes.NewReader(bin))
				dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
				var got []any
				if err := dec.Decode(&got); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.ref) {
					t.Fatalf("reference decode:\n got %#v\nwant %#v\nhex %s", got, tt.ref, hex.EncodeToString(bin))
				}
			}
			for _, f := range []Format{Binary, JSON} {
				b := tt.enc(f, nil)
				if f == JSON && !json.Valid(b) {
					t.Fatalf("invalid JSON %s", b)
				}
				// Two messages in one frame decode as two.
				frame := tt.enc(f, f.AppendSeparator(tt.enc(f, nil)))
				var m Message
				n := 0
				if err := f.DecodeMessages(frame, &m, func(m *Message) error { n++; tt.check(t, m); return nil }); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if n != 2 {
					t.Fatalf("%s: %d messages, want 2", f, n)
				}
			}
		})
	}
}

func TestPongEchoesPing(t *testing.T) {
	for _, f := range []Format{Binary, JSON} {
		var c Command
		var got *Command
		f.DecodeCommands(f.AppendPing(nil, 3, 1.25), &c, func(cmd *Command, err error) {
			if err != nil {
				t.Fatal(err)
			}
			got = cmd
		})
		if got == nil || got.Op != OpPing || got.ID != 3 {
			t.Fatalf("%s: %+v", f, got)
		}
		var m Message
		if err := f.DecodeMessages(f.AppendPong(nil, got.ID, got.T, 99), &m, func(m *Message) error {
			if m.Op != OpPong || m.ID != 3 || m.T != 1.25 || m.ServerTimeUs != 99 {
				t.Fatalf("%s: %+v", f, m)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDecodeCommands(t *testing.T) {
	type result struct {
		op    Op
		id    uint64
		syms  []string
		opts  SubOptions
		errID uint64
		isErr bool
	}
	def := DefaultSubOptions()
	tests := []struct {
		name  string
		f     Format
		frame []byte
		want  []result
	}{
		{"sub default", Binary, Binary.AppendSub(nil, 1, []string{"AAPL", "MSFT"}, nil), []result{{op: OpSub, id: 1, syms: []string{"AAPL", "MSFT"}, opts: def}}},
		{"sub opts", Binary, Binary.AppendSub(nil, 2, []string{"X"}, &SubOptions{Snap: false, MaxHz: 4, Fields: 1<<FieldBid | 1<<FieldAsk}),
			[]result{{op: OpSub, id: 2, syms: []string{"X"}, opts: SubOptions{MaxHz: 4, Fields: 1<<FieldBid | 1<<FieldAsk}}}},
		{"two in one frame", Binary, Binary.AppendSnap(Binary.AppendUnsub(nil, 3, []string{"A"}), 4, []string{"B"}),
			[]result{{op: OpUnsub, id: 3, syms: []string{"A"}, opts: def}, {op: OpSnap, id: 4, syms: []string{"B"}, opts: def}}},
		{"reference encoder", Binary, mustMsgpack(t, []any{1, 9, []string{"A"}, map[string]any{"maxHz": 2.5, "future": []int{1}}, "trailing"}),
			[]result{{op: OpSub, id: 9, syms: []string{"A"}, opts: SubOptions{Snap: true, MaxHz: 2.5, Fields: AllFields}}}},
		{"unknown op", Binary, mustMsgpack(t, []any{9, 5}), []result{{isErr: true, errID: 5}}},
		{"id zero", Binary, mustMsgpack(t, []any{1, 0, []string{"A"}}), []result{{isErr: true}}},
		{"syms not strings", Binary, mustMsgpack(t, []any{1, 6, []any{1}}), []result{{isErr: true, errID: 6}}},
		{"unknown field", Binary, mustMsgpack(t, []any{1, 7, []string{"A"}, map[string]any{"fields": []string{"nope"}}}), []result{{isErr: true, errID: 7}}},
		{"negative maxHz", Binary, mustMsgpack(t, []any{1, 8, []string{"A"}, map[string]any{"maxHz": -1}}), []result{{isErr: true, errID: 8}}},
		{"not an array", Binary, mustMsgpack(t, "hello"), []result{{isErr: true}}},
		{"garbage ends frame", Binary, append(Binary.AppendPing(nil, 1, 2), 0xc1, 0x93), []result{{op: OpPing, id: 1, opts: SubOptions{}}, {isErr: true}}},
		{"json sub", JSON, []byte(`[1,1,["AAPL"],{"snap":false,"fields":["bid"]}]` + "\n" + `[4,2,17]`),
			[]result{{op: OpSub, id: 1, syms: []string{"AAPL"}, opts: SubOptions{Fields: 1 << FieldBid}}, {op: OpPing, id: 2}}},
		{"json malformed", JSON, []byte(`[1,1,["A"]`), []result{{isErr: true}}},
		{"json ping string", JSON, []byte(`[4,3,"x"]`), []result{{isErr: true, errID: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []result
			var c Command
			tt.f.DecodeCommands(tt.frame, &c, func(cmd *Command, err error) {
				if err != nil {
					ce := err.(*CommandError)
					got = append(got, result{isErr: true, errID: ce.ID})
					return
				}
				r := result{op: cmd.Op, id: cmd.ID, opts: cmd.Opts}
				for _, s := range cmd.Syms {
					r.syms = append(r.syms, string(s))
				}
				got = append(got, r)
			})
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func BenchmarkAppendDelta(b *testing.B) {
	v := sampleState()
	mask := FieldMask(1<<FieldTS | 1<<FieldBid | 1<<FieldAsk | 1<<FieldBidSize)
	for _, f := range []Format{Binary, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			buf := make([]byte, 0, 128)
			b.ReportAllocs()
			for b.Loop() {
				buf = f.AppendState(buf[:0], OpDelta, 17, 123456, mask, v)
			}
			b.ReportMetric(float64(len(buf)), "bytes/msg")
		})
	}
}

func FuzzDecodeCommands(f *testing.F) {
	f.Add(false, Binary.AppendSub(nil, 1, []string{"AAPL"}, &SubOptions{Snap: true, MaxHz: 4, Fields: AllFields}))
	f.Add(false, Binary.AppendPing(Binary.AppendSnap(nil, 2, []string{"A"}), 3, 1.5))
	f.Add(false, []byte{0x93, 0x01, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add(true, []byte(`[1,1,["AAPL"],{"maxHz":2}]`+"\n"+`[4,2,1e3]`))
	f.Add(true, []byte(`[2,1,["A"]`))
	f.Add(false, Binary.AppendAuth(nil, 4, "eyJhbGciOiJIUzI1NiJ9.e30.sig"))
	f.Add(true, []byte(`[5,4,"eyJ\u0041"]`))
	f.Add(true, []byte(`[1,1,["\ud83d\ude00A"],{"snap":true,"x":[{"y":-0.5e-3}]}][4,2,1.50]7"s"`))
	f.Add(true, []byte(`[1,1,["A"],{"maxHz":1,"maxHz":2}] [4,1.0,1] [4,1,1e400]`))
	f.Add(false, Binary.AppendSub(nil, 5, []string{"AAPL"}, &SubOptions{Snap: true, Fields: AllFields, Bars: "1m", BarCount: 390}))
	f.Add(false, Binary.AppendSub(nil, 6, []string{"EURUSD"}, &SubOptions{Fields: 1 << FieldBid, Bars: "1s", BarSince: 1764072000000000, HasBarSince: true}))
	f.Add(true, []byte(`[1,7,["A"],{"bars":"1m","barSince":0}][1,8,["A"],{"bars":"5m","barCount":10000}]`))
	f.Add(true, []byte(`[1,9,["A"],{"barCount":1,"barSince":2,"bars":""}][1,10,["A"],{"bars":"1m","barCount":10001}]`))
	f.Fuzz(func(t *testing.T, isJSON bool, frame []byte) {
		format := Binary
		if isJSON {
			format = JSON
		}
		var c Command
		format.DecodeCommands(frame, &c, func(cmd *Command, err error) {
			if err != nil {
				if _, ok := err.(*CommandError); !ok {
					t.Fatalf("error of type %T", err)
				}
				return
			}
			if cmd.ID == 0 || cmd.Op < OpSub || cmd.Op > OpAuth || cmd.Op == OpAuth && len(cmd.Token) == 0 {
				t.Fatalf("accepted %+v", cmd)
			}
			if o := &cmd.Opts; cmd.Op == OpSub && (!validMaxHz(o.MaxHz) || o.Fields == 0 || o.CheckBarOptions() != nil ||
				o.BarCount < 0 || o.BarCount > MaxBarHistory || o.BarSince < 0 || o.BarSince >= MaxSafeInt) {
				t.Fatalf("accepted options %+v", cmd.Opts)
			}
			// A command we accept re-encodes to one that decodes alike.
			if cmd.Op == OpSub {
				syms := make([]string, len(cmd.Syms))
				for i, s := range cmd.Syms {
					syms[i] = string(s)
				}
				opts := cmd.Opts
				var again Command
				format.DecodeCommands(format.AppendSub(nil, cmd.ID, syms, &opts), &again, func(a *Command, err error) {
					if err != nil || a.ID != cmd.ID || len(a.Syms) != len(syms) || a.Opts != opts {
						t.Fatalf("re-encode: %v %+v vs %+v", err, a, cmd)
					}
				})
			}
			if cmd.Op == OpAuth {
				tok := string(cmd.Token)
				var again Command
				format.DecodeCommands(format.AppendAuth(nil, cmd.ID, tok), &again, func(a *Command, err error) {
					if err != nil || a.ID != cmd.ID || string(a.Token) != tok {
						t.Fatalf("re-encode: %v %+v vs %+v", err, a, cmd)
					}
				})
			}
		})
	})
}

func FuzzDecodeMessages(f *testing.F) {
	f.Add(false, Binary.AppendState(Binary.AppendHello(nil, "n", 5000), OpDelta, 1, 2, 3, sampleState()))
	f.Add(true, JSON.AppendState(nil, OpSnapshot, 1, 2, 3, sampleState()))
	f.Add(false, Binary.AppendAuthed(nil, 4, 1764075600000000))
	f.Add(true, JSON.AppendError(JSON.AppendAck(nil, 1, []SymbolID{{"A", 1}}), 2, 400, "x\u00e9", []string{"B"}))
	f.Add(true, []byte(`[23,1,2,{"1":1.5,"1":2}][21,1,[["A",2,"later"]],"later"][20,1,"n\ud83d",5,[]]`))
	f.Add(false, Binary.AppendBar(Binary.AppendBars(nil, 3, 1042, "1m", sampleBars), 3, 1043, "1m", &sampleBars[1]))
	f.Add(true, JSON.AppendBar(JSON.AppendSeparator(JSON.AppendBars(nil, 3, 1042, "1s", sampleBars)), 3, 1043, "1m", &sampleBars[0]))
	f.Add(true, []byte(`[30,1,2,"1m",[6e7,1,2,0.5,1,10,3,"x"]][29,1,2,"1m",[[1]]]`))
	f.Fuzz(func(t *testing.T, isJSON bool, frame []byte) {
		format := Binary
		if isJSON {
			format = JSON
		}
		var m Message
		_ = format.DecodeMessages(frame, &m, func(m *Message) error {
			if m.Mask&^AllFields != 0 {
				t.Fatalf("mask beyond the table: %b", m.Mask)
			}
			return nil
		})
	})
}
