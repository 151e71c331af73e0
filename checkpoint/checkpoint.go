// Package checkpoint saves and loads a node's ingest state — the snapshot of
// every symbol and the next offset of every partition — so that a restarted
// node resumes where it stopped instead of replaying the whole log.
//
// A checkpoint file is versioned and checksummed, and it is replaced
// atomically: a reader sees either the previous checkpoint or the new one,
// never a torn write, even after a crash or power loss. ReadFile refuses a
// file that is not a checkpoint, was written by an unknown version, is
// corrupt, or belongs to another topic, with an error that says which.
//
// The format (all integers big-endian or unsigned LEB128 varints):
//
//	magic    8 bytes "tickckpt"
//	version  uint16, 2 (version 1 lacks intervals and bars; it is still read)
//	topic    uvarint length, bytes
//	created  uvarint unix microseconds
//	parts    uvarint count, then per partition: uvarint id, uvarint next offset
//	intervals uvarint count, then per bar interval: uvarint seconds
//	symbols  uvarint count, then per symbol: uvarint name length, name,
//	         uvarint seq, uvarint field mask, then one little-endian float64
//	         per field in the mask, in field order; then uvarint flags
//	         (1: the symbol has bars, 2: it has traded) and, with bars, per
//	         interval: uvarint count, then per bar, oldest first:
//	           uvarint start: in intervals since 1970 for the first bar,
//	                  since the previous bar's for the others
//	           uvarint trades
//	           number open (from the previous bar's close; 0 for the first),
//	                  high, low, close (from open), volume (from 0)
//	crc      uint32 CRC-32C (Castagnoli) of every byte before it
//
// A number is stored as a decimal where that is exact — uvarint
// zigzag(m - round(ref×10^k))×16 + k for the value m/10^k, k 0 to 9 — and
// as uvarint 15 and a little-endian float64 where it is not: prices of a
// few decimals close to the previous one take a byte or two instead of
// eight.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// Version is the format version this package writes. It reads this one and
// version 1, whose checkpoints hold no bars.
const Version = 2

const (
	magic      = "tickckpt"
	headerSize = len(magic) + 2
	crcSize    = 4
	// maxTopic is Kafka's limit on a topic name.
	maxTopic = 249
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Reasons a checkpoint is refused. The errors of Decode and ReadFile wrap
// one of them.
var (
	ErrNotCheckpoint = errors.New("not a tickstream checkpoint")
	ErrVersion       = errors.New("unsupported checkpoint version")
	ErrCorrupt       = errors.New("corrupt checkpoint")
	ErrForeign       = errors.New("checkpoint of another topic")
)

// Symbol is one symbol's saved state.
type Symbol struct {
	Name  string
	State *snapshot.State
	// Bars are the symbol's bars, per interval of Checkpoint.BarLens; nil
	// when it has none.
	Bars *bars.Series
}

// Checkpoint is a consistent picture of ingest: for every partition, Offsets
// holds the next offset to read, and Symbols the state made by exactly the
// records before those offsets.
type Checkpoint struct {
	// Topic is the price topic the offsets belong to.
	Topic string
	// Created is when the picture was taken.
	Created time.Time
	// Offsets maps a partition to the next offset to read.
	Offsets map[int]int64
	// BarLens are the bar intervals of the symbols' Bars.
	BarLens []time.Duration
	// Symbols holds every symbol that has data (seq > 0).
	Symbols []Symbol
}

// AppendBinary appends the encoded checkpoint to dst.
func (c *Checkpoint) AppendBinary(dst []byte) ([]byte, error) {
	if len(c.Topic) == 0 || len(c.Topic) > maxTopic {
		return dst, fmt.Errorf("checkpoint: topic %q: want 1 to %d bytes", c.Topic, maxTopic)
	}
	start := len(dst)
	dst = append(dst, magic...)
	dst = binary.BigEndian.AppendUint16(dst, Version)
	dst = appendString(dst, c.Topic)
	dst = binary.AppendUvarint(dst, uint64(max(c.Created.UnixMicro(), 0)))
	dst = binary.AppendUvarint(dst, uint64(len(c.Offsets)))
	for _, p := range slices.Sorted(maps.Keys(c.Offsets)) {
		off := c.Offsets[p]
		if p < 0 || off < 0 {
			return dst, fmt.Errorf("checkpoint: partition %d at offset %d: want both non-negative", p, off)
		}
		dst = binary.AppendUvarint(dst, uint64(p))
		dst = binary.AppendUvarint(dst, uint64(off))
	}
	if len(c.BarLens) > bars.MaxIntervals {
		return dst, fmt.Errorf("checkpoint: %d bar intervals: want at most %d", len(c.BarLens), bars.MaxIntervals)
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.BarLens)))
	for _, l := range c.BarLens {
		if l < time.Second || l > maxBarLen || l%time.Second != 0 {
			return dst, fmt.Errorf("checkpoint: bar interval %v: want whole seconds up to 24h", l)
		}
		dst = binary.AppendUvarint(dst, uint64(l/time.Second))
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Symbols)))
	for _, s := range c.Symbols {
		st := s.State
		if !codec.ValidSymbol([]byte(s.Name)) || st == nil || st.Seq == 0 || st.Mask == 0 || st.Mask&^codec.AllFields != 0 {
			return dst, fmt.Errorf("checkpoint: symbol %q: invalid name or state", s.Name)
		}
		dst = appendString(dst, s.Name)
		dst = binary.AppendUvarint(dst, st.Seq)
		dst = binary.AppendUvarint(dst, uint64(st.Mask))
		for f := 0; f < codec.NumFields; f++ {
			if st.Mask.Has(f) {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.Values[f]))
			}
		}
		var err error
		if dst, err = appendSeries(dst, s.Bars, c.BarLens); err != nil {
			return dst, fmt.Errorf("checkpoint: symbol %q: %w", s.Name, err)
		}
	}
	return binary.BigEndian.AppendUint32(dst, crc32c(dst[start:])), nil
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// Decode decodes an encoded checkpoint. It checks the magic, the version
// and the checksum before it trusts any other byte.
func Decode(b []byte) (*Checkpoint, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, ErrNotCheckpoint
	}
	if len(b) < headerSize+crcSize {
		return nil, fmt.Errorf("%w: truncated to %d bytes", ErrCorrupt, len(b))
	}
	version := binary.BigEndian.Uint16(b[len(magic):])
	if version != 1 && version != Version {
		return nil, fmt.Errorf("%w %d (this build reads versions 1 to %d)", ErrVersion, version, Version)
	}
	body := b[:len(b)-crcSize]
	if want, got := binary.BigEndian.Uint32(b[len(body):]), crc32c(body); want != got {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	d := decoder{b: body, i: headerSize}
	c := &Checkpoint{}
	c.Topic = d.string(maxTopic)
	c.Created = time.UnixMicro(int64(d.uvarint(math.MaxInt64)))
	// Every entry takes at least two bytes: a count larger than what is
	// left is corrupt, and bounding it first keeps allocations in check.
	nparts := d.uvarint(uint64(d.left() / 2))
	c.Offsets = make(map[int]int64, nparts)
	for range nparts {
		p := int(d.uvarint(math.MaxInt32))
		off := int64(d.uvarint(math.MaxInt64))
		if _, dup := c.Offsets[p]; dup && d.err == nil {
			d.err = fmt.Errorf("partition %d listed twice", p)
		}
		c.Offsets[p] = off
	}
	if version >= 2 {
		if n := d.uvarint(bars.MaxIntervals); n > 0 {
			c.BarLens = make([]time.Duration, n)
		}
		for i := range c.BarLens {
			c.BarLens[i] = time.Duration(d.uvarint(uint64(maxBarLen/time.Second))) * time.Second
			if c.BarLens[i] == 0 && d.err == nil {
				d.err = errors.New("bar interval of 0 seconds")
			}
		}
	}
	nsyms := d.uvarint(uint64(d.left() / 4))
	c.Symbols = make([]Symbol, 0, nsyms)
	seen := make(map[string]struct{}, nsyms)
	for range nsyms {
		name := d.string(32)
		st := &snapshot.State{Seq: d.uvarint(math.MaxUint64), Mask: codec.FieldMask(d.uvarint(math.MaxUint32))}
		if d.err != nil {
			break
		}
		if !codec.ValidSymbol([]byte(name)) || st.Seq == 0 || st.Mask == 0 {
			d.err = fmt.Errorf("symbol %q: invalid name or state", name)
			break
		}
		if st.Mask&^codec.AllFields != 0 {
			d.err = fmt.Errorf("symbol %q: field mask %#x has fields this build does not know", name, st.Mask)
			break
		}
		if _, dup := seen[name]; dup {
			d.err = fmt.Errorf("symbol %q listed twice", name)
			break
		}
		seen[name] = struct{}{}
		for f := 0; f < codec.NumFields; f++ {
			if st.Mask.Has(f) {
				st.Values[f] = d.float64()
			}
		}
		sym := Symbol{Name: name, State: st}
		if version >= 2 {
			sym.Bars = d.series(c.BarLens)
		}
		c.Symbols = append(c.Symbols, sym)
	}
	if d.err == nil && d.left() != 0 {
		d.err = fmt.Errorf("%d trailing bytes", d.left())
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	return c, nil
}

// decoder reads the body of a checkpoint; the first error sticks and every
// later read returns a zero value.
type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) left() int { return len(d.b) - d.i }

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.err = fmt.Errorf("bad varint at byte %d", d.i)
		return 0
	}
	if v > limit {
		d.err = fmt.Errorf("value %d at byte %d is over its limit %d", v, d.i, limit)
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) string(limit int) string {
	n := int(d.uvarint(uint64(limit)))
	if d.err != nil {
		return ""
	}
	if n > d.left() {
		d.err = fmt.Errorf("string of %d bytes at byte %d runs past the end", n, d.i)
		return ""
	}
	s := string(d.b[d.i : d.i+n])
	d.i += n
	return s
}

func (d *decoder) float64() float64 {
	if d.err != nil {
		return 0
	}
	if d.left() < 8 {
		d.err = fmt.Errorf("value at byte %d runs past the end", d.i)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:]))
	d.i += 8
	return v
}

// ReadFile reads and decodes the checkpoint at path. When topic is not
// empty, a checkpoint of another topic is refused with ErrForeign.
func ReadFile(path, topic string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	c, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if topic != "" && c.Topic != topic {
		return nil, fmt.Errorf("checkpoint: %s: %w: it is of topic %q, not %q", path, ErrForeign, c.Topic, topic)
	}
	return c, nil
}

// WriteFile replaces the checkpoint at path with c, atomically and durably:
// it writes a temporary file in the same directory, syncs it, renames it
// over path and syncs the directory, so that a crash at any point leaves
// either the old checkpoint or the new one.
func WriteFile(path string, c *Checkpoint) error {
	b, err := c.AppendBinary(nil)
	if err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("checkpoint: write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", path, err)
	}
	return nil
}

// RemoveTemp deletes the temporary files that WriteFile left beside path
// when the process died between creating one and renaming it, and returns
// their names. Call it before the first WriteFile of a process: a writer
// at work on the same path would lose its temporary file.
func RemoveTemp(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), base+".tmp") {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if err := os.Remove(name); err != nil {
			return removed, fmt.Errorf("checkpoint: %w", err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
