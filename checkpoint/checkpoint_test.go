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

func sample() *Checkpoint {
	return &Checkpoint{
		Topic:   "ticks",
		Created: time.UnixMicro(1_764_000_000_123_456),
		Offsets: map[int]int64{0: 120_000, 1: 0, 7: math.MaxInt64},
		Symbols: []Symbol{
			{"AAPL", state(42, codec.FieldTS, 1_764_000_000_000_000, codec.FieldBid, 187.23, codec.FieldAsk, 187.25)},
			{"BRK.B", state(1, codec.FieldPrevClose, -0.5)},
			{"X:Y/Z-1_2", state(math.MaxUint64, codec.FieldLow, math.SmallestNonzeroFloat64, codec.FieldHigh, math.MaxFloat64)},
		},
	}
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

func TestEncodeRefusesInvalid(t *testing.T) {
	tests := []struct {
		name string
		cp   Checkpoint
	}{
		{"no topic", Checkpoint{}},
		{"negative offset", Checkpoint{Topic: "t", Offsets: map[int]int64{0: -1}}},
		{"negative partition", Checkpoint{Topic: "t", Offsets: map[int]int64{-1: 0}}},
		{"bad symbol", Checkpoint{Topic: "t", Symbols: []Symbol{{"A B", state(1, 1, 1)}}}},
		{"seq 0", Checkpoint{Topic: "t", Symbols: []Symbol{{"A", state(0, 1, 1)}}}},
		{"nil state", Checkpoint{Topic: "t", Symbols: []Symbol{{"A", nil}}}},
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
		{"version 2", mod(func(b []byte) []byte { b[len(magic)+1] = 2; return reseal(b) }), ErrVersion},
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
