package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRecord(t *testing.T) {
	type want struct {
		sym  string
		mask FieldMask
		vals map[int]float64
		err  error
	}
	bit := func(fs ...int) FieldMask {
		var m FieldMask
		for _, f := range fs {
			m |= 1 << uint(f)
		}
		return m
	}
	tests := []struct {
		name  string
		key   string
		value []byte
		want  want
	}{
		{"json full", "", []byte(`{"sym":"AAPL","ts":1764000000000000,"bid":187.23,"ask":187.25,"bidSize":300}`),
			want{"AAPL", bit(FieldTS, FieldBid, FieldAsk, FieldBidSize), map[int]float64{FieldTS: 1764000000000000, FieldBid: 187.23, FieldAsk: 187.25, FieldBidSize: 300}, nil}},
		{"json key wins", "MSFT", []byte(` {"sym":"AAPL","last":1e2}`), want{"MSFT", bit(FieldLast), map[int]float64{FieldLast: 100}, nil}},
		{"json unknown keys skipped", "X", []byte(`{"venue":{"a":[1,2,{"b":null}]},"flag":true,"bid":-0.5,"note":"x\"y"}`),
			want{"X", bit(FieldBid), map[int]float64{FieldBid: -0.5}, nil}},
		{"json escaped sym", "", []byte(`{"sym":"A\u0041"}`), want{"AA", 0, nil, nil}},
		{"json escaped key", "X", []byte(`{"\u0062id":1}`), want{"X", bit(FieldBid), map[int]float64{FieldBid: 1}, nil}},
		{"json surrogate pair in unknown key", "X", []byte(`{"\ud83d\ude00":"\ud83d\ude00","bid":1}`), want{"X", bit(FieldBid), map[int]float64{FieldBid: 1}, nil}},
		{"json escape JSON lacks", "X", []byte(`{"note":"\x41","bid":1}`), want{err: ErrMalformed}},
		{"json string price", "X", []byte(`{"bid":"187.23"}`), want{err: ErrWrongType}},
		{"json null price", "X", []byte(`{"bid":null}`), want{err: ErrWrongType}},
		{"json truncated", "X", []byte(`{"bid":1`), want{err: ErrMalformed}},
		{"json bad number", "X", []byte(`{"bid":01}`), want{err: ErrMalformed}},
		{"json trailing", "X", []byte(`{"bid":1} x`), want{err: ErrMalformed}},
		{"json type error then broken", "X", []byte(`{"bid":"a",`), want{err: ErrMalformed}},
		{"json fractional ts", "X", []byte(`{"ts":1.5}`), want{err: ErrBadValue}},
		{"json negative ts", "X", []byte(`{"ts":-1}`), want{err: ErrBadValue}},
		{"json huge", "X", []byte(`{"bid":1e400}`), want{err: ErrBadValue}},
		{"no symbol", "", []byte(`{"bid":1}`), want{err: ErrNoSymbol}},
		{"bad symbol", "AA PL", []byte(`{"bid":1}`), want{err: ErrBadSymbol}},
		{"empty", "X", nil, want{err: ErrMalformed}},
		{"msgpack map", "", mustMsgpack(t, map[string]any{"sym": "NVDA", "last": float32(120.5), "lastSize": 100, "volume": uint64(123456789), "extra": []any{1, "a"}}),
			want{"NVDA", bit(FieldLast, FieldLastSize, FieldVolume), map[int]float64{FieldLast: 120.5, FieldLastSize: 100, FieldVolume: 123456789}, nil}},
		{"msgpack int8 negative", "Z", mustMsgpack(t, map[string]any{"low": int8(-3)}), want{"Z", bit(FieldLow), map[int]float64{FieldLow: -3}, nil}},
		{"msgpack string price", "Z", mustMsgpack(t, map[string]any{"ask": "1"}), want{err: ErrWrongType}},
		{"msgpack nan", "Z", mustMsgpack(t, map[string]any{"ask": math.NaN()}), want{err: ErrBadValue}},
		{"msgpack not a map", "Z", mustMsgpack(t, []int{1}), want{err: ErrMalformed}},
		{"msgpack truncated", "Z", mustMsgpack(t, map[string]any{"ask": 1.5})[:5], want{err: ErrMalformed}},
		{"msgpack trailing", "Z", append(mustMsgpack(t, map[string]any{"ask": 1.5}), 0xc0), want{err: ErrMalformed}},
		{"msgpack sym not string", "", mustMsgpack(t, map[string]any{"sym": 5}), want{err: ErrWrongType}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u Update
			err := DecodeRecord([]byte(tt.key), tt.value, &u)
			if tt.want.err != nil {
				if !errors.Is(err, tt.want.err) {
					t.Fatalf("err = %v, want %v", err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if string(u.Sym) != tt.want.sym || u.Mask != tt.want.mask {
				t.Fatalf("got sym %q mask %b, want %q %b", u.Sym, u.Mask, tt.want.sym, tt.want.mask)
			}
			for f, v := range tt.want.vals {
				if u.Values[f] != v {
					t.Errorf("%s = %v, want %v", FieldNames[f], u.Values[f], v)
				}
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	var u Update
	u.Sym = []byte("BRK.B")
	u.Set(FieldTS, 1764000000123456)
	u.Set(FieldBid, 187.23)
	u.Set(FieldAsk, 187.25)
	u.Set(FieldVolume, 9_007_199_254_740_000)
	u.Set(FieldLow, -1.5)
	for _, enc := range []struct {
		name string
		b    []byte
	}{
		{"msgpack", AppendRecord(nil, &u, true)},
		{"json", AppendRecordJSON(nil, &u, true)},
	} {
		var got Update
		if err := DecodeRecord(nil, enc.b, &got); err != nil {
			t.Fatalf("%s: %v", enc.name, err)
		}
		if string(got.Sym) != string(u.Sym) || got.Mask != u.Mask || got.Values != u.Values {
			t.Fatalf("%s: got %+v, want %+v", enc.name, got, u)
		}
	}
	// The reference library reads what we write.
	var m map[string]any
	if err := msgpack.Unmarshal(AppendRecord(nil, &u, true), &m); err != nil {
		t.Fatal(err)
	}
	if m["sym"] != "BRK.B" || m["bid"] != 187.23 || m["ask"] != float32(187.25) {
		t.Fatalf("reference decode: %v", m)
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	var u Update
	u.Sym = []byte("AAPL")
	u.Set(FieldTS, 1764000000123456)
	u.Set(FieldBid, 187.23)
	u.Set(FieldBidSize, 300)
	u.Set(FieldAsk, 187.25)
	u.Set(FieldAskSize, 500)
	for _, enc := range []struct {
		name string
		b    []byte
	}{
		{"msgpack", AppendRecord(nil, &u, false)},
		{"json", AppendRecordJSON(nil, &u, false)},
	} {
		b.Run(enc.name, func(b *testing.B) {
			key := []byte("AAPL")
			var got Update
			b.ReportAllocs()
			b.SetBytes(int64(len(enc.b)))
			for b.Loop() {
				if err := DecodeRecord(key, enc.b, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte("AAPL"), []byte(`{"bid":187.23,"ask":187.25,"ts":1764000000000000}`))
	f.Add([]byte(""), []byte(`{"sym":"X","venue":{"a":[1,{"b":null}]},"last":"1"}`))
	var u Update
	u.Sym = []byte("X")
	u.Set(FieldLast, 1.5)
	u.Set(FieldVolume, 1e9)
	f.Add([]byte(""), AppendRecord(nil, &u, true))
	f.Add([]byte("K"), mustMsgpack(f, map[string]any{"x": []any{map[string]any{"y": []byte{1}}}, "bid": float32(2)}))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		var u Update
		if err := DecodeRecord(key, value, &u); err != nil {
			if RecordReason(err) == "other" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if !ValidSymbol(u.Sym) {
			t.Fatalf("accepted invalid symbol %q", u.Sym)
		}
		for i := 0; i < NumFields; i++ {
			if u.Mask.Has(i) && (math.IsNaN(u.Values[i]) || math.IsInf(u.Values[i], 0)) {
				t.Fatalf("accepted non-finite %s", FieldNames[i])
			}
		}
		// What was accepted survives a round trip through our own encoder.
		var again Update
		if err := DecodeRecord(nil, AppendRecord(nil, &u, true), &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Mask != u.Mask || again.Values != u.Values {
			t.Fatalf("round trip changed the update: %+v vs %+v", again, u)
		}
	})
}
