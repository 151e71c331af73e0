package codec_test

// Runnable documentation of the wire protocol: every byte-level example of
// docs/PROTOCOL.md is printed by one of these examples, from the server's
// own encoder, and `go test ./codec/` checks that it still comes out the
// same. When an Output block changes, update docs/PROTOCOL.md with it.

import (
	"encoding/hex"
	"fmt"

	"github.com/tickstream/tickstream/codec"
)

// The values of the examples: AAPL is sid 1 at seq 1042.
const (
	exTS  = 1764072000123456 // 2025-11-25T12:00:00.123456Z in unix microseconds
	exSID = 1
	exSeq = 1042
)

// aaplState is AAPL's whole state at seq 1042.
func aaplState() *[codec.NumFields]float64 {
	var v [codec.NumFields]float64
	v[codec.FieldTS] = exTS
	v[codec.FieldBid] = 187.23
	v[codec.FieldBidSize] = 300
	v[codec.FieldAsk] = 187.25
	v[codec.FieldAskSize] = 500
	v[codec.FieldLast] = 187.24
	v[codec.FieldLastSize] = 100
	v[codec.FieldVolume] = 48213677
	v[codec.FieldOpen] = 185.5
	v[codec.FieldHigh] = 188.1
	v[codec.FieldLow] = 185.02
	v[codec.FieldPrevClose] = 184.97
	return &v
}

func mask(fields ...int) codec.FieldMask {
	var m codec.FieldMask
	for _, f := range fields {
		m |= 1 << uint(f)
	}
	return m
}

// both prints a message in its two forms: the hex of the MessagePack
// binary frame (tickstream.v1) and the JSON text (tickstream.v1.json).
func both(enc func(f codec.Format, dst []byte) []byte) {
	fmt.Println(hex.EncodeToString(enc(codec.Binary, nil)))
	fmt.Println(string(enc(codec.JSON, nil)))
}

func ExampleFormat_AppendSub() {
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendSub(b, 7, []string{"AAPL", "MSFT"}, nil)
	})
	// With options: at most 4 messages per second, only bid and ask.
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendSub(b, 8, []string{"AAPL"}, &codec.SubOptions{Snap: true, MaxHz: 4, Fields: mask(codec.FieldBid, codec.FieldAsk)})
	})
	// With bars: one message a second, only ts and last, live 1-minute
	// bars and the last 390 of them as history.
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendSub(b, 10, []string{"AAPL"}, &codec.SubOptions{Snap: true, MaxHz: 1, Fields: mask(codec.FieldTS, codec.FieldLast), Bars: "1m", BarCount: 390})
	})
	// Output:
	// 93010792a44141504ca44d534654
	// [1,7,["AAPL","MSFT"]]
	// 94010891a44141504c83a4736e6170c3a56d6178487a04a66669656c647392a3626964a361736b
	// [1,8,["AAPL"],{"snap":true,"maxHz":4,"fields":["bid","ask"]}]
	// 94010a91a44141504c85a4736e6170c3a56d6178487a01a66669656c647392a27473a46c617374a462617273a2316da8626172436f756e74cd0186
	// [1,10,["AAPL"],{"snap":true,"maxHz":1,"fields":["ts","last"],"bars":"1m","barCount":390}]
}

// The 1-minute bars of AAPL after its SNAPSHOT at seq 1042: 11:59, final,
// and 12:00, forming.
func ExampleFormat_AppendBars() {
	bars := []codec.Bar{
		{T: 1764071940000000, Open: 187.5, High: 187.75, Low: 186.75, Close: 187.25, Volume: 41200, Trades: 312},
		{T: 1764072000000000, Open: 187.25, High: 187.25, Low: 187.24, Close: 187.24, Volume: 300, Trades: 3},
	}
	both(func(f codec.Format, b []byte) []byte { return f.AppendBars(b, exSID, exSeq, "1m", bars) })
	// Output:
	// 951d01cd0412a2316d9297cf0006446a01578900ca433b8000ca433bc000ca433ac000ca433b4000cda0f0cd013897cf0006446a04eb1000ca433b4000ca433b4000cb406767ae147ae148cb406767ae147ae148cd012c03
	// [29,1,1042,"1m",[[1764071940000000,187.5,187.75,186.75,187.25,41200,312],[1764072000000000,187.25,187.25,187.24,187.24,300,3]]]
}

// A trade of 200 at 187.5 at seq 1045 moves the forming bar of 12:00.
func ExampleFormat_AppendBar() {
	bar := codec.Bar{T: 1764072000000000, Open: 187.25, High: 187.5, Low: 187.24, Close: 187.5, Volume: 500, Trades: 4}
	both(func(f codec.Format, b []byte) []byte { return f.AppendBar(b, exSID, 1045, "1m", &bar) })
	// Output:
	// 951e01cd0415a2316d97cf0006446a04eb1000ca433b4000ca433b8000cb406767ae147ae148ca433b8000cd01f404
	// [30,1,1045,"1m",[1764072000000000,187.25,187.5,187.24,187.5,500,4]]
}

func ExampleFormat_AppendUnsub() {
	both(func(f codec.Format, b []byte) []byte { return f.AppendUnsub(b, 9, []string{"MSFT"}) })
	// Output:
	// 93020991a44d534654
	// [2,9,["MSFT"]]
}

func ExampleFormat_AppendSnap() {
	both(func(f codec.Format, b []byte) []byte { return f.AppendSnap(b, 10, []string{"AAPL"}) })
	// Output:
	// 93030a91a44141504c
	// [3,10,["AAPL"]]
}

func ExampleFormat_AppendPing() {
	both(func(f codec.Format, b []byte) []byte { return f.AppendPing(b, 11, 1764072001000) })
	// Output:
	// 93040bcf0000019abae28de8
	// [4,11,1764072001000]
}

func ExampleFormat_AppendHello() {
	both(func(f codec.Format, b []byte) []byte { return f.AppendHello(b, "edge-1", 5000) })
	// Output:
	// 951401a6656467652d31cd13889ca27473a3626964a762696453697a65a361736ba761736b53697a65a46c617374a86c61737453697a65a6766f6c756d65a46f70656ea468696768a36c6f77a970726576436c6f7365
	// [20,1,"edge-1",5000,["ts","bid","bidSize","ask","askSize","last","lastSize","volume","open","high","low","prevClose"]]
}

func ExampleFormat_AppendAck() {
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendAck(b, 7, []codec.SymbolID{{Sym: "AAPL", SID: 1}, {Sym: "MSFT", SID: 2}})
	})
	// Every symbol refused: the ACK lists none.
	both(func(f codec.Format, b []byte) []byte { return f.AppendAck(b, 12, nil) })
	// Output:
	// 9315079292a44141504c0192a44d53465402
	// [21,7,[["AAPL",1],["MSFT",2]]]
	// 93150c90
	// [21,12,[]]
}

func ExampleFormat_AppendState_snapshot() {
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendState(b, codec.OpSnapshot, exSID, exSeq, codec.AllFields, aaplState())
	})
	// A symbol without data yet: seq 0 and an empty map.
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendState(b, codec.OpSnapshot, 3, 0, 0, aaplState())
	})
	// Output:
	// 941601cd04128c00cf0006446a04ecf24001cb4067675c28f5c28f02cd012c03ca433b400004cd01f405cb406767ae147ae148066407ce02dfaead08ca4339800009cb40678333333333330acb406720a3d70a3d710bcb40671f0a3d70a3d7
	// [22,1,1042,{"0":1764072000123456,"1":187.23,"2":300,"3":187.25,"4":500,"5":187.24,"6":100,"7":48213677,"8":185.5,"9":188.1,"10":185.02,"11":184.97}]
	// 9416030080
	// [22,3,0,{}]
}

func ExampleFormat_AppendState_delta() {
	// seq 1043: a new bid of 187.24 for 200.
	v := aaplState()
	v[codec.FieldTS] = exTS + 1333
	v[codec.FieldBid] = 187.24
	v[codec.FieldBidSize] = 200
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendState(b, codec.OpDelta, exSID, exSeq+1, mask(codec.FieldTS, codec.FieldBid, codec.FieldBidSize), v)
	})
	// Output:
	// 941701cd04138300cf0006446a04ecf77501cb406767ae147ae14802ccc8
	// [23,1,1043,{"0":1764072000124789,"1":187.24,"2":200}]
}

func ExampleFormat_AppendPong() {
	// The server echoes PING's t as it came: here the raw bytes of a
	// decoded PING.
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		var cmd codec.Command
		f.DecodeCommands(f.AppendPing(nil, 11, 1764072001000), &cmd, func(c *codec.Command, err error) {
			out := f.AppendPong(nil, c.ID, c.T, exTS+876544)
			if f == codec.Binary {
				fmt.Println(hex.EncodeToString(out))
			} else {
				fmt.Println(string(out))
			}
		})
	}
	// Output:
	// 94180bcf0000019abae28de8cf0006446a04fa5240
	// [24,11,1764072001000,1764072001000000]
}

func ExampleFormat_AppendError() {
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendError(b, 7, 400, "invalid symbol", []string{"BAD SYM"})
	})
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendError(b, 0, 400, "bad request: malformed MessagePack: truncated MessagePack", nil)
	})
	// Output:
	// 951907cd0190ae696e76616c69642073796d626f6c91a74241442053594d
	// [25,7,400,"invalid symbol",["BAD SYM"]]
	// 941900cd0190d93962616420726571756573743a206d616c666f726d6564204d6573736167655061636b3a207472756e6361746564204d6573736167655061636b
	// [25,0,400,"bad request: malformed MessagePack: truncated MessagePack"]
}

func ExampleFormat_AppendHeartbeat() {
	both(func(f codec.Format, b []byte) []byte { return f.AppendHeartbeat(b, exTS+5000000) })
	// Output:
	// 921acf0006446a05393d80
	// [26,1764072005123456]
}

func ExampleFormat_AppendStatus() {
	both(func(f codec.Format, b []byte) []byte {
		return f.AppendStatus(b, codec.StatusStale, "no answer from the brokers for partitions [2] of ticks")
	})
	// Output:
	// 931ba57374616c65d9366e6f20616e737765722066726f6d207468652062726f6b65727320666f7220706172746974696f6e73205b325d206f66207469636b73
	// [27,"stale","no answer from the brokers for partitions [2] of ticks"]
}

func ExampleFormat_AppendNumber() {
	for _, v := range []float64{0, 100, 127, 128, 300, 70000, -1, -32, -33, -200, 187.25, 187.23, 48213677, exTS, 1 << 53, 0.1} {
		fmt.Printf("%-22s %s\n", codec.JSON.AppendNumber(nil, v), hex.EncodeToString(codec.Binary.AppendNumber(nil, v)))
	}
	// Output:
	// 0                      00
	// 100                    64
	// 127                    7f
	// 128                    cc80
	// 300                    cd012c
	// 70000                  ce00011170
	// -1                     ff
	// -32                    e0
	// -33                    d0df
	// -200                   d1ff38
	// 187.25                 ca433b4000
	// 187.23                 cb4067675c28f5c28f
	// 48213677               ce02dfaead
	// 1764072000123456       cf0006446a04ecf240
	// 9.007199254740992e+15  ca5a000000
	// 0.1                    cb3fb999999999999a
}

// Several messages in one frame: back to back in binary, separated by "\n"
// (and not ended by one) in JSON.
func ExampleFormat_AppendSeparator() {
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		var frame []byte
		frame = f.AppendSeparator(frame)
		frame = f.AppendHeartbeat(frame, exTS)
		frame = f.AppendSeparator(frame)
		frame = f.AppendStatus(frame, codec.StatusLive, "")
		if f == codec.Binary {
			fmt.Println(hex.EncodeToString(frame))
		} else {
			fmt.Printf("%q\n", frame)
		}
	}
	// Output:
	// 921acf0006446a04ecf240931ba46c697665a0
	// "[26,1764072000123456]\n[27,\"live\",\"\"]"
}

// The ERROR text the server sends for client messages that do not decode
// (the server prefixes "bad request: " and uses the id when it was read).
func ExampleFormat_DecodeCommands() {
	frames := []struct {
		f     codec.Format
		frame string
	}{
		{codec.JSON, `[1,7,["AAPL"],{"maxHz":5000}]`},
		{codec.JSON, `[1,7,["AAPL"],{"fields":["bid","spread"]}]`},
		{codec.JSON, `[9,7,["AAPL"]]`},
		{codec.JSON, `[1,0,["AAPL"]]`},
		{codec.JSON, `[4,8,"now"]`},
		{codec.JSON, `{"op":1}`},
		{codec.JSON, `[1,7,["AAPL"]]` + "\n" + `[1,8,["MSFT"]` + "\n" + `[3,9,["AAPL"]]`},
	}
	for _, fr := range frames {
		var cmd codec.Command
		fr.f.DecodeCommands([]byte(fr.frame), &cmd, func(c *codec.Command, err error) {
			if err != nil {
				ce := err.(*codec.CommandError)
				fmt.Printf("ERROR id %d: %s\n", ce.ID, err)
				return
			}
			fmt.Printf("op %d id %d %q\n", c.Op, c.ID, c.Syms)
		})
	}
	// A binary frame whose second message is cut short.
	bin := codec.Binary.AppendSnap(nil, 10, []string{"AAPL"})
	bin = append(bin, codec.Binary.AppendSnap(nil, 11, []string{"MSFT"})[:5]...)
	var cmd codec.Command
	codec.Binary.DecodeCommands(bin, &cmd, func(c *codec.Command, err error) {
		if err != nil {
			fmt.Printf("ERROR id %d: %s\n", err.(*codec.CommandError).ID, err)
			return
		}
		fmt.Printf("op %d id %d %q\n", c.Op, c.ID, c.Syms)
	})
	// Output:
	// ERROR id 7: bad request: option maxHz must be a number from 0 to 1000
	// ERROR id 7: bad request: unknown field "spread"
	// ERROR id 7: bad request: unknown op 9
	// ERROR id 0: bad request: id must be 1 or more
	// ERROR id 8: bad request: ping value must be a number
	// ERROR id 0: bad request: a message is an array [op, id, ...]
	// op 1 id 7 ["AAPL"]
	// ERROR id 0: bad request: malformed JSON: expected ',' or ']' at byte 29
	// op 3 id 10 ["AAPL"]
	// ERROR id 0: bad request: malformed MessagePack: truncated MessagePack
}

func ExampleAppendRecord() {
	var u codec.Update
	u.Sym = []byte("AAPL")
	u.Set(codec.FieldTS, exTS)
	u.Set(codec.FieldBid, 187.23)
	u.Set(codec.FieldBidSize, 300)
	fmt.Println(hex.EncodeToString(codec.AppendRecord(nil, &u, true)))
	fmt.Println(string(codec.AppendRecordJSON(nil, &u, true)))
	// Output:
	// 84a373796da44141504ca27473cf0006446a04ecf240a3626964cb4067675c28f5c28fa762696453697a65cd012c
	// {"sym":"AAPL","ts":1764072000123456,"bid":187.23,"bidSize":300}
}

// How ingest treats records: the key wins over "sym", unknown keys are
// ignored, and a record with a value of the wrong type is skipped whole.
func ExampleDecodeRecord() {
	records := []struct{ key, value string }{
		{"AAPL", `{"ts":1764072000123456,"bid":187.23,"bidSize":300}`},
		{"AAPL", `{"sym":"MSFT","ask":187.25,"venue":"XNAS"}`},
		{"", `{"sym":"MSFT","last":411.5}`},
		{"", `{"last":411.5}`},
		{"AAPL", `{"bid":"187.23"}`},
		{"AAPL", `{"ts":1764072000123456.5}`},
		{"AAPL", `{"ts":-1}`},
		{"AAPL", `{"bid":187.23`},
		{"BAD SYM", `{"bid":1}`},
	}
	var u codec.Update
	for _, r := range records {
		if err := codec.DecodeRecord([]byte(r.key), []byte(r.value), &u); err != nil {
			fmt.Printf("skipped (%s): %v\n", codec.RecordReason(err), err)
			continue
		}
		fmt.Printf("%s:", u.Sym)
		for f := 0; f < codec.NumFields; f++ {
			if u.Mask.Has(f) {
				fmt.Printf(" %s=%s", codec.FieldNames[f], codec.JSON.AppendNumber(nil, u.Values[f]))
			}
		}
		fmt.Println()
	}
	// A MessagePack map holding NaN.
	nan := []byte{0x81, 0xa3, 'b', 'i', 'd', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}
	fmt.Println(codec.RecordReason(codec.DecodeRecord([]byte("AAPL"), nan, &u)))
	// Output:
	// AAPL: ts=1764072000123456 bid=187.23 bidSize=300
	// AAPL: ask=187.25
	// MSFT: last=411.5
	// skipped (no_symbol): record has no symbol
	// skipped (wrong_type): field of the wrong type: bid is not a number
	// skipped (bad_value): field value out of range: ts 1.7640720001234565e+15 is not a unix-microsecond integer
	// skipped (bad_value): field value out of range: ts -1 is not a unix-microsecond integer
	// skipped (malformed): malformed record: JSON: unterminated object at byte 13
	// skipped (bad_symbol): record has an invalid symbol: "BAD SYM"
	// bad_value
}

// A whole session, frame by frame, as docs/PROTOCOL.md shows it: the client
// connected to /ws?symbols=AAPL offering tickstream.v1 (or
// tickstream.v1.json), then subscribed to MSFT, pinged, resynchronized AAPL
// and unsubscribed MSFT.
func Example_session() {
	aapl := aaplState()
	var msft [codec.NumFields]float64
	msft[codec.FieldTS] = exTS + 250
	msft[codec.FieldBid] = 411.3
	msft[codec.FieldBidSize] = 200
	msft[codec.FieldAsk] = 411.35
	msft[codec.FieldAskSize] = 100
	msftMask := mask(codec.FieldTS, codec.FieldBid, codec.FieldBidSize, codec.FieldAsk, codec.FieldAskSize)

	type msg func(f codec.Format, dst []byte) []byte
	frame := func(title string, msgs ...msg) {
		fmt.Println(title)
		for _, f := range []codec.Format{codec.Binary, codec.JSON} {
			var b []byte
			for _, m := range msgs {
				if f == codec.Binary && len(b) > 0 {
					fmt.Println(hex.EncodeToString(b)) // one line per message
					b = b[:0]
				}
				b = f.AppendSeparator(b)
				b = m(f, b)
			}
			if f == codec.Binary {
				fmt.Println(hex.EncodeToString(b))
			} else {
				fmt.Println(string(b))
			}
		}
	}
	state := func(op codec.Op, sid uint32, seq uint64, m codec.FieldMask, v *[codec.NumFields]float64) msg {
		c := *v // the state as it is now
		return func(f codec.Format, b []byte) []byte { return f.AppendState(b, op, sid, seq, m, &c) }
	}

	frame("S>C 1: HELLO, ACK id 0, SNAPSHOT AAPL",
		func(f codec.Format, b []byte) []byte { return f.AppendHello(b, "edge-1", 5000) },
		func(f codec.Format, b []byte) []byte {
			return f.AppendAck(b, 0, []codec.SymbolID{{Sym: "AAPL", SID: 1}})
		},
		state(codec.OpSnapshot, 1, 1042, codec.AllFields, aapl))

	frame("C>S 2: SUB id 7",
		func(f codec.Format, b []byte) []byte { return f.AppendSub(b, 7, []string{"MSFT", "BAD SYM"}, nil) })

	frame("S>C 3: ERROR id 7, ACK id 7, SNAPSHOT MSFT",
		func(f codec.Format, b []byte) []byte {
			return f.AppendError(b, 7, 400, "invalid symbol", []string{"BAD SYM"})
		},
		func(f codec.Format, b []byte) []byte {
			return f.AppendAck(b, 7, []codec.SymbolID{{Sym: "MSFT", SID: 2}})
		},
		state(codec.OpSnapshot, 2, 877, msftMask, &msft))

	aapl[codec.FieldTS] = exTS + 1333
	aapl[codec.FieldBid] = 187.24
	aapl[codec.FieldBidSize] = 200
	frame("S>C 4: DELTA AAPL",
		state(codec.OpDelta, 1, 1043, mask(codec.FieldTS, codec.FieldBid, codec.FieldBidSize), aapl))

	aapl[codec.FieldTS] = exTS + 2041
	aapl[codec.FieldAsk] = 187.26
	aapl[codec.FieldAskSize] = 400
	d5 := state(codec.OpDelta, 1, 1044, mask(codec.FieldTS, codec.FieldAsk, codec.FieldAskSize), aapl)
	msft[codec.FieldTS] = exTS + 2100
	msft[codec.FieldLast] = 411.32
	msft[codec.FieldLastSize] = 50
	frame("S>C 5: DELTA AAPL, DELTA MSFT", d5,
		state(codec.OpDelta, 2, 878, mask(codec.FieldTS, codec.FieldLast, codec.FieldLastSize), &msft))

	frame("C>S 6: PING id 11",
		func(f codec.Format, b []byte) []byte { return f.AppendPing(b, 11, 1764072001000) })

	frame("S>C 7: PONG id 11",
		func(f codec.Format, b []byte) []byte {
			return f.AppendPong(b, 11, f.AppendNumber(nil, 1764072001000), exTS+876544)
		})

	frame("C>S 8: SNAP id 12",
		func(f codec.Format, b []byte) []byte { return f.AppendSnap(b, 12, []string{"AAPL", "TSLA"}) })

	frame("S>C 9: SNAPSHOT AAPL, ERROR id 12",
		state(codec.OpSnapshot, 1, 1044, codec.AllFields, aapl),
		func(f codec.Format, b []byte) []byte {
			return f.AppendError(b, 12, 400, "not subscribed", []string{"TSLA"})
		})

	frame("C>S 10: UNSUB id 13 (no reply)",
		func(f codec.Format, b []byte) []byte { return f.AppendUnsub(b, 13, []string{"MSFT"}) })

	frame("S>C 11: HEARTBEAT (5 s without a message)",
		func(f codec.Format, b []byte) []byte { return f.AppendHeartbeat(b, exTS+6000000) })
	// Output:
	// S>C 1: HELLO, ACK id 0, SNAPSHOT AAPL
	// 951401a6656467652d31cd13889ca27473a3626964a762696453697a65a361736ba761736b53697a65a46c617374a86c61737453697a65a6766f6c756d65a46f70656ea468696768a36c6f77a970726576436c6f7365
	// 9315009192a44141504c01
	// 941601cd04128c00cf0006446a04ecf24001cb4067675c28f5c28f02cd012c03ca433b400004cd01f405cb406767ae147ae148066407ce02dfaead08ca4339800009cb40678333333333330acb406720a3d70a3d710bcb40671f0a3d70a3d7
	// [20,1,"edge-1",5000,["ts","bid","bidSize","ask","askSize","last","lastSize","volume","open","high","low","prevClose"]]
	// [21,0,[["AAPL",1]]]
	// [22,1,1042,{"0":1764072000123456,"1":187.23,"2":300,"3":187.25,"4":500,"5":187.24,"6":100,"7":48213677,"8":185.5,"9":188.1,"10":185.02,"11":184.97}]
	// C>S 2: SUB id 7
	// 93010792a44d534654a74241442053594d
	// [1,7,["MSFT","BAD SYM"]]
	// S>C 3: ERROR id 7, ACK id 7, SNAPSHOT MSFT
	// 951907cd0190ae696e76616c69642073796d626f6c91a74241442053594d
	// 9315079192a44d53465402
	// 941602cd036d8500cf0006446a04ecf33a01cb4079b4cccccccccd02ccc803cb4079b5999999999a0464
	// [25,7,400,"invalid symbol",["BAD SYM"]]
	// [21,7,[["MSFT",2]]]
	// [22,2,877,{"0":1764072000123706,"1":411.3,"2":200,"3":411.35,"4":100}]
	// S>C 4: DELTA AAPL
	// 941701cd04138300cf0006446a04ecf77501cb406767ae147ae14802ccc8
	// [23,1,1043,{"0":1764072000124789,"1":187.24,"2":200}]
	// S>C 5: DELTA AAPL, DELTA MSFT
	// 941701cd04148300cf0006446a04ecfa3903cb40676851eb851eb804cd0190
	// 941702cd036e8300cf0006446a04ecfa7405cb4079b51eb851eb850632
	// [23,1,1044,{"0":1764072000125497,"3":187.26,"4":400}]
	// [23,2,878,{"0":1764072000125556,"5":411.32,"6":50}]
	// C>S 6: PING id 11
	// 93040bcf0000019abae28de8
	// [4,11,1764072001000]
	// S>C 7: PONG id 11
	// 94180bcf0000019abae28de8cf0006446a04fa5240
	// [24,11,1764072001000,1764072001000000]
	// C>S 8: SNAP id 12
	// 93030c92a44141504ca454534c41
	// [3,12,["AAPL","TSLA"]]
	// S>C 9: SNAPSHOT AAPL, ERROR id 12
	// 941601cd04148c00cf0006446a04ecfa3901cb406767ae147ae14802ccc803cb40676851eb851eb804cd019005cb406767ae147ae148066407ce02dfaead08ca4339800009cb40678333333333330acb406720a3d70a3d710bcb40671f0a3d70a3d7
	// 95190ccd0190ae6e6f74207375627363726962656491a454534c41
	// [22,1,1044,{"0":1764072000125497,"1":187.24,"2":200,"3":187.26,"4":400,"5":187.24,"6":100,"7":48213677,"8":185.5,"9":188.1,"10":185.02,"11":184.97}]
	// [25,12,400,"not subscribed",["TSLA"]]
	// C>S 10: UNSUB id 13 (no reply)
	// 93020d91a44d534654
	// [2,13,["MSFT"]]
	// S>C 11: HEARTBEAT (5 s without a message)
	// 921acf0006446a05487fc0
	// [26,1764072006123456]
}
