package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tickstream/tickstream/codec"
)

// describe renders an update read from line as "line SYM field=value ...",
// fields in table order, for compact expectations.
func describe(line int, u *codec.Update) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", line, u.Sym)
	for f := range codec.NumFields {
		if u.Mask.Has(f) {
			fmt.Fprintf(&b, " %s=%s", codec.FieldNames[f], strconv.FormatFloat(u.Values[f], 'f', -1, 64))
		}
	}
	return b.String()
}

// readAll reads a replay in format and returns the updates described, and
// the error; with skip, the bad lines' errors are collected instead.
func readAll(input, format string, skip bool) (got, bad []string, err error) {
	fn := func(line int, u *codec.Update) error {
		got = append(got, describe(line, u))
		return nil
	}
	var onBad func(error) error
	if skip {
		onBad = func(err error) error {
			bad = append(bad, err.Error())
			return nil
		}
	}
	err = readReplay(strings.NewReader(input), format, fn, onBad)
	return got, bad, err
}

func TestReadReplay(t *testing.T) {
	tests := []struct {
		name   string
		format string
		input  string
		want   []string // updates delivered before the end or the error
		err    string   // the error, "" for none
		is     error    // what the error wraps, if anything
	}{
		{
			name:   "jsonl",
			format: FormatJSONL,
			input:  `{"sym":"AAPL","ts":1750000000000000,"bid":187.23,"bidSize":300}` + "\n\n" + `{"sym":"BRK.B","last":480.5,"volume":12345,"x":"ignored"}` + "\n",
			want: []string{
				"1 AAPL ts=1750000000000000 bid=187.23 bidSize=300",
				"3 BRK.B last=480.5 volume=12345",
			},
		},
		{
			name:  "jsonl detected, CRLF, leading blank lines, no final newline",
			input: "\r\n  \r\n" + `{"sym":"MSFT","ask":480.2}` + "\r\n" + `{"sym":"MSFT","askSize":100}`,
			want:  []string{"3 MSFT ask=480.2", "4 MSFT askSize=100"},
		},
		{
			name:   "jsonl without sym",
			format: FormatJSONL,
			input:  `{"sym":"A","bid":1}` + "\n" + `{"bid":2}` + "\n" + `{"sym":"A","bid":3}`,
			want:   []string{"1 A bid=1"},
			err:    "line 2: record has no symbol",
			is:     codec.ErrNoSymbol,
		},
		{
			name:  "jsonl string price",
			input: `{"sym":"A","bid":1}` + "\n\n" + `{"sym":"A","bid":"2"}`,
			want:  []string{"1 A bid=1"},
			err:   "line 3: field of the wrong type: bid is not a number",
			is:    codec.ErrWrongType,
		},
		{
			name:   "jsonl fractional ts",
			format: FormatJSONL,
			input:  `{"sym":"A","ts":1.5}`,
			err:    "line 1: ",
			is:     codec.ErrBadValue,
		},
		{
			name:   "jsonl not an object",
			format: FormatJSONL,
			input:  `{"sym":"A"}` + "\n" + `["A",1]`,
			want:   []string{"1 A"},
			err:    "line 2: malformed record: not a JSON object",
			is:     codec.ErrMalformed,
		},
		{
			name:  "jsonl truncated object",
			input: `{"sym":"A","bid":`,
			err:   "line 1: ",
			is:    codec.ErrMalformed,
		},
		{
			name:  "jsonl invalid symbol",
			input: `{"sym":"A B","bid":1}`,
			err:   "line 1: ",
			is:    codec.ErrBadSymbol,
		},
		{
			name:   "jsonl line too long",
			format: FormatJSONL,
			input:  `{"sym":"A"}` + "\n" + `{"sym":"` + strings.Repeat("A", MaxLineBytes) + `"}`,
			want:   []string{"1 A"},
			err:    "line 2: longer than",
		},
		{
			name:   "csv",
			format: FormatCSV,
			input:  "sym,ts,bid,bidSize,ask,askSize\nAAPL,1750000000000000,187.23,300,187.25,200\nMSFT,,480.1,,,\n",
			want: []string{
				"2 AAPL ts=1750000000000000 bid=187.23 bidSize=300 ask=187.25 askSize=200",
				"3 MSFT bid=480.1",
			},
		},
		{
			name:  "csv detected, byte order mark, blank lines, spaces, CRLF",
			input: "\ufeff\n sym , last , volume\r\n\r\nNVDA, 172.4 , 1000\r\nNVDA,172.41,1100\r\n",
			want:  []string{"4 NVDA last=172.4 volume=1000", "5 NVDA last=172.41 volume=1100"},
		},
		{
			name:  "csv quoted cells",
			input: "\"sym\",\"bid\"\n\"BF.B\",\"40.5\"\n",
			want:  []string{"2 BF.B bid=40.5"},
		},
		{
			name:  "csv header only",
			input: "sym,bid\n",
		},
		{
			name:  "csv without sym column",
			input: "ts,bid\n1,2\n",
			err:   "line 1: the header has no sym column",
		},
		{
			name:  "csv unknown column",
			input: "\n\nsym,bidsize\nA,1\n",
			err:   `line 3: unknown column "bidsize"`,
		},
		{
			name:  "csv repeated column",
			input: "sym,bid,bid\nA,1,2\n",
			err:   `line 1: column "bid" appears twice`,
		},
		{
			name:  "csv wrong number of cells",
			input: "sym,bid\nA,1\nA,2,3\nA,4\n",
			want:  []string{"2 A bid=1"},
			err:   "line 3: wrong number of fields",
		},
		{
			name:  "csv not a number",
			input: "sym,bid\nA,1\nA,abc\n",
			want:  []string{"2 A bid=1"},
			err:   `line 3: field of the wrong type: bid "abc" is not a number`,
			is:    codec.ErrWrongType,
		},
		{
			name:  "csv empty sym",
			input: "sym,bid\nA,1\n,2\n",
			want:  []string{"2 A bid=1"},
			err:   "line 3: record has no symbol",
			is:    codec.ErrNoSymbol,
		},
		{
			name:  "csv invalid symbol",
			input: "sym,bid\nA;B,1\n",
			err:   "line 2: ",
			is:    codec.ErrBadSymbol,
		},
		{
			name:  "csv infinite price",
			input: "sym,bid\nA,Inf\n",
			err:   "line 2: field value out of range: bid is not finite",
			is:    codec.ErrBadValue,
		},
		{
			name:  "csv negative ts",
			input: "sym,ts\nA,-1\n",
			err:   "line 2: ",
			is:    codec.ErrBadValue,
		},
		{
			name:  "csv bare quote",
			input: "sym,bid\nA,1\nA\"B,2\n",
			want:  []string{"2 A bid=1"},
			err:   "line 3: ",
		},
		{name: "empty input", input: ""},
		{name: "blank input", input: "\n \n\t\n"},
		{
			name:   "unknown format",
			format: "xml",
			input:  "<ticks/>",
			err:    `unknown replay format "xml"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := readAll(tt.input, tt.format, false)
			if !slices.Equal(got, tt.want) {
				t.Errorf("updates:\n got %q\nwant %q", got, tt.want)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %q, want none", err)
			case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
				t.Errorf("error %v, want one starting %q", err, tt.err)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Errorf("error %q does not wrap %q", err, tt.is)
			}
		})
	}
}

func TestReadReplaySkipBad(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
		bad   []string // prefixes of the errors of the skipped lines
		err   string   // a fatal error, "" for none
	}{
		{
			name:  "jsonl",
			input: `{"sym":"A","bid":1}` + "\n" + `{"bid":2}` + "\n" + `nonsense` + "\n" + `{"sym":"A","bid":4}` + "\n",
			want:  []string{"1 A bid=1", "4 A bid=4"},
			bad:   []string{"line 2: record has no symbol", "line 3: malformed record"},
		},
		{
			name:  "csv",
			input: "sym,bid\nA,1\nA,x\nA,2,3\n,4\nA,5\n",
			want:  []string{"2 A bid=1", "6 A bid=5"},
			bad:   []string{"line 3: field of the wrong type", "line 4: wrong number of fields", "line 5: record has no symbol"},
		},
		{
			name:  "csv bad header is not skipped",
			input: "sym,bogus\nA,1\n",
			err:   `line 1: unknown column "bogus"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := readAll(tt.input, "", true)
			if !slices.Equal(got, tt.want) {
				t.Errorf("updates:\n got %q\nwant %q", got, tt.want)
			}
			if len(bad) != len(tt.bad) {
				t.Fatalf("skipped %q, want %d lines", bad, len(tt.bad))
			}
			for i := range bad {
				if !strings.HasPrefix(bad[i], tt.bad[i]) {
					t.Errorf("skipped line error %q, want one starting %q", bad[i], tt.bad[i])
				}
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestReadReplayCallbackError(t *testing.T) {
	stop := errors.New("stop")
	var lines []int
	err := ReadReplay(strings.NewReader("sym,bid\nA,1\nA,2\nA,3\n"), "", func(line int, u *codec.Update) error {
		lines = append(lines, line)
		if line == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("error %v, want the callback's, unwrapped", err)
	}
	if !slices.Equal(lines, []int{2, 3}) {
		t.Errorf("lines %v, want [2 3]", lines)
	}
}
