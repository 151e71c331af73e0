package checkpoint

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

func state(seq uint64, kv ...float64) *snapshot.State {
	st := &snapshot.State{Seq: seq}
	for i := 0; i+1 < len(kv); i += 2 {
		f := int(kv[i])
		st.Mask |= 1 << uint(f)
		st.Values[f] = kv[i+1]
	}
	return st
}

// sampleV1 is what testdata/v1.ckpt holds, written by version 1.
func sampleV1() *Checkpoint {
	return &Checkpoint{
		Topic:   "ticks",
		Created: time.UnixMicro(1_764_000_000_123_456),
		Offsets: map[int]int64{0: 120_000, 1: 0, 7: math.MaxInt64},
		Symbols: []Symbol{
			{Name: "AAPL", State: state(42, codec.FieldTS, 1_764_000_000_000_000, codec.FieldBid, 187.23, codec.FieldAsk, 187.25)},
			{Name: "BRK.B", State: state(1, codec.FieldPrevClose, -0.5)},
			{Name: "X:Y/Z-1_2", State: state(math.MaxUint64, codec.FieldLow, math.SmallestNonzeroFloat64, codec.FieldHigh, math.MaxFloat64)},
		},
	}
}

// t0 is a day's start, unix µs.
const t0 = int64(1_764_028_800_000_000)

func sample() *Checkpoint {
	c := sampleV1()
	c.BarLens = []time.Duration{time.Second, time.Minute}
	c.Symbols[0].Bars = &bars.Series{Traded: true, Bars: [][]bars.Bar{
		{
			{T: t0, Open: 187.25, High: 187.5, Low: 187.24, Close: 187.24, Volume: 41200, Trades: 312},
			{T: t0 + 1e6, Open: 187.24, High: 187.24, Low: 187.24, Close: 187.24, Volume: 0.5, Trades: 1},
			{T: t0 + 7e6, Open: 187.3, High: math.MaxFloat64, Low: math.Copysign(0, -1), Close: math.Pi, Volume: 1e300, Trades: math.MaxUint32},
		},
		{{T: t0, Open: 187.25, High: 187.5, Low: 187.24, Close: math.Pi, Volume: 41200.5, Trades: 314}},
	}}
	c.Symbols[1].Bars = &bars.Series{Bars: [][]bars.Bar{nil, {{T: 0, Open: 1, High: 1, Low: 1, Close: 1, Trades: 1}}}}
	c.Symbols[2].Bars = &bars.Series{Traded: true, Bars: [][]bars.Bar{nil, nil}}
	return c
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cp   *Checkpoint
	}{
		{"sample", sample()},
		{"empty", &Checkpoint{Topic: "t", Created: time.UnixMicro(0), Offsets: map[int]int64{}, Symbols: []Symbol{}}},
		{"offsets only", &Checkpoint{Topic: "prices.v1", Created: time.UnixMicro(5), Offsets: map[int]int64{3: 9}, Symbols: []Symbol{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.cp.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.cp) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tt.cp)
			}
			again, err := got.AppendBinary(nil)
			if err != nil || string(again) != string(b) {
				t.Fatalf("re-encoding differs (err %v): the encoding must be deterministic", err)
			}
		})
	}
}

// TestReadsVersion1 reads a checkpoint version 1 wrote: the state and
// offsets come back, with no bars.
func TestReadsVersion1(t *testing.T) {
	got, err := ReadFile("testdata/v1.ckpt", "ticks")
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleV1(); !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v\nwant %+v", got, want)
	}
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		v, ref float64
		size   int // bytes
	}{
		{0, 0, 1},
		{187.25, 187.25, 1},
		{187.26, 187.25, 1},
		{187.24, 187.25, 1},
		{187.0, 0, 2},
		{187.25, 0, 3},
		{41200, 0, 3},
		{0.5, 0, 2},
		{-3.75, 1, 2},
		{1e-9, 0, 1},
		{math.Pi, 3, 9},
		{math.Copysign(0, -1), 0, 9},
		{math.MaxFloat64, 0, 9},
		{1 << 53, 0, 9},
		{1<<53 - 1, -(1<<53 - 1), 9}, // the difference does not fit a zigzag of 59 bits: stored whole
		{1e-300, 0, 9},
		{123456.789012345, 123456.789012344, 1},
		{123456.7890123456, 0, 9},
	}
	for _, tt := range tests {
		k := 0
		b := appendNumber(nil, tt.v, tt.ref, &k)
		d := decoder{b: b}
		got := d.number(tt.ref)
		if d.err != nil || math.Float64bits(got) != math.Float64bits(tt.v) || d.left() != 0 {
			t.Errorf("%v from %v: read back %v (err %v, %d bytes left)", tt.v, tt.ref, got, d.err, d.left())
		}
		if len(b) != tt.size {
			t.Errorf("%v from %v: %d bytes, want %d", tt.v, tt.ref, len(b), tt.size)
		}
		// The scale of the number before, tried first, gives v back too.
		for hint := range len(pow10) {
			k := hint
			d := decoder{b: appendNumber(nil, tt.v, tt.ref, &k)}
			if got := d.number(tt.ref); d.err != nil || math.Float64bits(got) != math.Float64bits(tt.v) {
				t.Errorf("%v from %v, scale %d tried first: read back %v (err %v)", tt.v, tt.ref, hint, got, d.err)
			}
		}
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	tests := []struct {
		name string
		cp   Checkpoint
	}{
		{"no topic", Checkpoint{}},
		{"negative offset", Checkpoint{Topic: "t", Offsets: map[int]int64{0: -1}}},
		{"negative partition", Checkpoint{Topic: "t", Offsets: map[int]int64{-1: 0}}},
		{"bad symbol", Checkpoint{Topic: "t", Symbols: []Symbol{{Name: "A B", State: state(1, 1, 1)}}}},
		{"seq 0", Checkpoint{Topic: "t", Symbols: []Symbol{{Name: "A", State: state(0, 1, 1)}}}},
		{"nil state", Checkpoint{Topic: "t", Symbols: []Symbol{{Name: "A"}}}},
		{"bars of another interval count", Checkpoint{Topic: "t", BarLens: []time.Duration{time.Second},
			Symbols: []Symbol{{Name: "A", State: state(1, 1, 1), Bars: &bars.Series{Bars: [][]bars.Bar{nil, nil}}}}}},
		{"bar off its interval", Checkpoint{Topic: "t", BarLens: []time.Duration{time.Minute},
			Symbols: []Symbol{{Name: "A", State: state(1, 1, 1), Bars: &bars.Series{Bars: [][]bars.Bar{{{T: 1e6}}}}}}}},
		{"bars out of order", Checkpoint{Topic: "t", BarLens: []time.Duration{time.Second},
			Symbols: []Symbol{{Name: "A", State: state(1, 1, 1), Bars: &bars.Series{Bars: [][]bars.Bar{{{T: 2e6}, {T: 1e6}}}}}}}},
		{"bar after 2106", Checkpoint{Topic: "t", BarLens: []time.Duration{time.Second},
			Symbols: []Symbol{{Name: "A", State: state(1, 1, 1), Bars: &bars.Series{Bars: [][]bars.Bar{{{T: 1 << 33 * 1e6}}}}}}}},
		{"interval of half a second", Checkpoint{Topic: "t", BarLens: []time.Duration{time.Second / 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cp.AppendBinary(nil); err == nil {
				t.Fatal("encoded; want an error")
			}
		})
	}
}

// reseal recomputes the checksum after a test changed the body on purpose.
func reseal(b []byte) []byte {
	body := b[:len(b)-crcSize]
	return binary.BigEndian.AppendUint32(body[:len(body):len(body)], crc32c(body))
}

func TestDecodeRefuses(t *testing.T) {
	good, err := sample().AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(fn func(b []byte) []byte) []byte {
		return fn(append([]byte(nil), good...))
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty file", nil, ErrNotCheckpoint},
		{"JSON file", []byte(`{"topic":"ticks"}`), ErrNotCheckpoint},
		{"other magic", mod(func(b []byte) []byte { b[0] = 'T'; return b }), ErrNotCheckpoint},
		{"magic only", []byte(magic), ErrCorrupt},
		{"version 3", mod(func(b []byte) []byte { b[len(magic)+1] = 3; return reseal(b) }), ErrVersion},
		{"version 0", mod(func(b []byte) []byte { b[len(magic)+1] = 0; return reseal(b) }), ErrVersion},
		{"flipped bit", mod(func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }), ErrCorrupt},
		{"truncated", good[:len(good)-9], ErrCorrupt},
		{"bad checksum", mod(func(b []byte) []byte { b[len(b)-1]++; return b }), ErrCorrupt},
		{"trailing bytes", mod(func(b []byte) []byte {
			body := append(b[:len(b)-crcSize:len(b)-crcSize], 0)
			return reseal(append(body, 0, 0, 0, 0))
		}), ErrCorrupt},
		{"huge symbol count", reseal(append(append([]byte(magic), 0, 1, 1, 't', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f), 0, 0, 0, 0)), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want %v", cp, err, tt.want)
			}
		})
	}
}

func TestWriteReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.ckpt")
	first := sample()
	if err := WriteFile(path, first); err != nil {
		t.Fatal(err)
	}
	second := sample()
	second.Offsets[0]++
	second.Symbols = second.Symbols[:1]
	if err := WriteFile(path, second); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path, "ticks")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, second) {
		t.Fatalf("read %+v, want the second checkpoint %+v", got, second)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want only the checkpoint (no temporary left behind)", len(entries))
	}

	tests := []struct {
		name, path, topic string
		want              error
	}{
		{"foreign topic", path, "other", ErrForeign},
		{"missing file", filepath.Join(dir, "none"), "ticks", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadFile(tt.path, tt.topic); !errors.Is(err, tt.want) {
				t.Fatalf("ReadFile = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteFileFailsCleanly(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "missing-dir", "x.ckpt"), sample()); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

// FuzzDecode checks that Decode never panics nor allocates without bound on
// any input, and that what it accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	good, err := sample().AppendBinary(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	v1, err := os.ReadFile("testdata/v1.ckpt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v1)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := Decode(b)
		if err != nil {
			return
		}
		again, err := cp.AppendBinary(nil)
		if err != nil {
			t.Fatalf("accepted checkpoint does not encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded checkpoint does not decode: %v", err)
		}
	})
}

func TestRemoveTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ticks[1].ckpt")
	left := []string{path + ".tmp123", path + ".tmp9"}
	keep := []string{path, filepath.Join(dir, "other.ckpt.tmp1"), filepath.Join(dir, "ticks1.ckpt.tmp2")}
	for _, f := range append(left, keep...) {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemp(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(left) {
		t.Errorf("removed %v, want %v", removed, left)
	}
	for _, f := range left {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", f, err)
		}
	}
	for _, f := range keep {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s removed: %v", f, err)
		}
	}
}
