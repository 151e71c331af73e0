package sim

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tickstream/tickstream/codec"
)

// Formats of a replay file, for ReadReplay and ReplayOptions.
const (
	// FormatJSONL is one update per line, a JSON object in the ingest
	// format: the field names of protocol v1 plus "sym", which is required.
	FormatJSONL = "jsonl"
	// FormatCSV is a header row naming the columns (field names of protocol
	// v1 and "sym", which is required), then one update per row; an empty
	// cell leaves its field out of the update.
	FormatCSV = "csv"
)

// MaxLineBytes bounds a line of a JSONL replay file.
const MaxLineBytes = 1 << 20

// ReadReplay reads a recorded file of updates in format (FormatJSONL,
// FormatCSV, or "" to detect it: JSONL when the first non-blank character is
// '{', else CSV) and calls fn with each update and the line it starts on.
// Blank lines are skipped. u and u.Sym are valid only during the call.
//
// A line that does not hold a valid update stops the reading with an error
// that names the line ("line 12: ..."), wrapping the codec error (such as
// codec.ErrNoSymbol or codec.ErrWrongType) where there is one. An error from
// fn stops the reading and is returned as it is.
func ReadReplay(r io.Reader, format string, fn func(line int, u *codec.Update) error) error {
	return readReplay(r, format, fn, nil)
}

// readReplay is ReadReplay that hands each bad line's error to bad, when bad
// is not nil, and goes on with the next line unless bad returns an error.
// Errors that leave no next line to go on with (a bad CSV header, a JSONL
// line over MaxLineBytes, a failed read) stop the reading regardless.
func readReplay(r io.Reader, format string, fn func(int, *codec.Update) error, bad func(error) error) error {
	onBad := func(err error) error {
		if bad == nil {
			return err
		}
		return bad(err)
	}
	br := bufio.NewReader(r)
	skipped, err := skipBlank(br)
	if err != nil {
		return fmt.Errorf("read replay: %w", err)
	}
	if format == "" {
		format = FormatCSV
		if c, err := br.Peek(1); err == nil && c[0] == '{' {
			format = FormatJSONL
		}
	}
	switch format {
	case FormatJSONL:
		return readJSONL(br, skipped, fn, onBad)
	case FormatCSV:
		return readCSV(br, skipped, fn, onBad)
	}
	return fmt.Errorf("unknown replay format %q (want %q, %q, or empty to detect)", format, FormatJSONL, FormatCSV)
}

// skipBlank consumes a UTF-8 byte order mark (spreadsheets write one) and
// the blank space before the first line with content, returning the number
// of lines it consumed.
func skipBlank(br *bufio.Reader) (lines int, err error) {
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3)
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
		switch c {
		case '\n':
			lines++
		case ' ', '\t', '\r':
		default:
			return lines, br.UnreadByte()
		}
	}
}

func readJSONL(br *bufio.Reader, line int, fn func(int, *codec.Update) error, onBad func(error) error) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	var u codec.Update
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var err error
		if b[0] != '{' {
			err = fmt.Errorf("%w: not a JSON object", codec.ErrMalformed)
		} else {
			err = codec.DecodeRecord(nil, b, &u)
		}
		if err != nil {
			if err := onBad(fmt.Errorf("line %d: %w", line, err)); err != nil {
				return err
			}
			continue
		}
		if err := fn(line, &u); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", line+1, MaxLineBytes)
		}
		return fmt.Errorf("read replay: %w", err)
	}
	return nil
}

// symColumn marks the sym column in the field index of each CSV column.
const symColumn = -1

func readCSV(br *bufio.Reader, skipped int, fn func(int, *codec.Update) error, onBad func(error) error) error {
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	lineErr := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("line %d: %w", pe.Line+skipped, pe.Err)
		}
		return fmt.Errorf("read replay: %w", err)
	}
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return lineErr(err)
	}
	cols, err := csvColumns(header)
	if err != nil {
		return fmt.Errorf("line %d: %w", skipped+1, err)
	}
	var u codec.Update
	var sym []byte
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return lineErr(err)
			}
			if err := onBad(lineErr(err)); err != nil {
				return err
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		line += skipped
		sym, err = csvUpdate(cols, rec, sym, &u)
		if err != nil {
			if err := onBad(fmt.Errorf("line %d: %w", line, err)); err != nil {
				return err
			}
			continue
		}
		if err := fn(line, &u); err != nil {
			return err
		}
	}
}

// csvColumns maps each column of a CSV header to its field index or
// symColumn. An unknown or repeated name is refused rather than ignored: a
// misspelt column ("bidsize") would otherwise drop its data without a word.
func csvColumns(header []string) ([]int, error) {
	cols := make([]int, len(header))
	seen := make(map[string]bool, len(header))
	hasSym := false
	for j, name := range header {
		name = strings.TrimSpace(name)
		if seen[name] {
			return nil, fmt.Errorf("column %q appears twice in the header", name)
		}
		seen[name] = true
		if name == "sym" {
			cols[j], hasSym = symColumn, true
			continue
		}
		f, ok := codec.FieldIndex(name)
		if !ok {
			return nil, fmt.Errorf("unknown column %q in the header (want sym and fields of %s)",
				name, strings.Join(codec.FieldNames[:], ", "))
		}
		cols[j] = f
	}
	if !hasSym {
		return nil, errors.New("the header has no sym column")
	}
	return cols, nil
}

// csvUpdate fills u from one CSV row; sym is a buffer for the symbol, which
// it returns for reuse.
func csvUpdate(cols []int, rec []string, sym []byte, u *codec.Update) ([]byte, error) {
	u.Reset()
	sym = sym[:0]
	for j, cell := range rec {
		cell = strings.TrimSpace(cell)
		if cell == "" {
			continue
		}
		f := cols[j]
		if f == symColumn {
			sym = append(sym, cell...)
			if !codec.ValidSymbol(sym) {
				return sym, fmt.Errorf("%w: %q", codec.ErrBadSymbol, cell)
			}
			u.Sym = sym
			continue
		}
		v, err := strconv.ParseFloat(cell, 64)
		if err != nil {
			return sym, fmt.Errorf("%w: %s %q is not a number", codec.ErrWrongType, codec.FieldNames[f], cell)
		}
		if err := checkValue(f, v); err != nil {
			return sym, err
		}
		u.Set(f, v)
	}
	if len(u.Sym) == 0 {
		return sym, codec.ErrNoSymbol
	}
	return sym, nil
}

// checkValue refuses the values codec.DecodeRecord refuses in a record, so
// that a CSV replay cannot write what ingest would drop.
func checkValue(f int, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%w: %s is not finite", codec.ErrBadValue, codec.FieldNames[f])
	}
	if f == codec.FieldTS && (v < 0 || v != math.Trunc(v) || v >= codec.MaxSafeInt) {
		return fmt.Errorf("%w: ts %v is not a unix-microsecond integer", codec.ErrBadValue, v)
	}
	return nil
}
