package server

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
)

// maxRESTBars bounds the bars of one GET /api/v1/bars, as of one BARS.
const maxRESTBars = codec.MaxBarHistory

// serveBars answers GET /api/v1/bars: the bars of one symbol at one
// interval, in JSON or CSV.
func (s *Server) serveBars(w http.ResponseWriter, r *http.Request) {
	b := s.node.Bars()
	if b == nil {
		writeError(w, http.StatusNotFound, "bars are off on this server")
		return
	}
	q := r.URL.Query()
	csv, err := wantsCSV(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := q.Get("symbol")
	if !codec.ValidSymbol([]byte(name)) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("symbol %q: want 1 to 32 characters of A-Z a-z 0-9 . _ : / -", name))
		return
	}
	if grantOf(r).denied([]string{name}) != nil {
		writeError(w, http.StatusForbidden, "not entitled to "+name)
		return
	}
	ivName := q.Get("interval")
	i, ok := b.IntervalIndex(ivName)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown interval %q (this server has %s)", ivName, b.IntervalNames()))
		return
	}
	from, err := barTime(q, "from", 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	to, err := barTime(q, "to", maxBarTime)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if to < from {
		writeError(w, http.StatusBadRequest, "to is before from")
		return
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxRESTBars {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want an integer from 1 to %d", maxRESTBars))
			return
		}
	}
	sym := s.node.Store().Lookup([]byte(name))
	if sym == nil || sym.Load().Seq == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown symbol %q: the feed has not carried it", name))
		return
	}
	// One more than the bound, to tell a range that holds too many.
	n := limit
	if n == 0 {
		n = maxRESTBars + 1
	}
	got, seq := b.AppendRange(nil, sym, i, from, to, n)
	if len(got) > maxRESTBars {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("range holds more than %d bars; narrow from/to or set limit", maxRESTBars))
		return
	}
	if csv {
		writeBarsCSV(w, got)
		return
	}
	resp := client.BarsResponse{Symbol: name, Interval: ivName, Seq: seq, Bars: make([]client.RESTBar, len(got))}
	for k, bar := range got {
		resp.Bars[k] = client.RESTBar(bar)
	}
	writeJSON(w, http.StatusOK, resp)
}

// maxBarTime is the latest time from and to take: the largest integer
// every client's numbers hold, in µs.
const maxBarTime = codec.MaxSafeInt - 1

// barTime reads query parameter key, a time as RFC 3339 or unix
// microseconds, or returns def when it is absent.
func barTime(q url.Values, key string, def int64) (int64, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	if us, err := strconv.ParseInt(v, 10, 64); err == nil {
		if us < 0 || us > maxBarTime {
			return 0, fmt.Errorf("%s %s: want unix microseconds from 0 to 2^53-1", key, v)
		}
		return us, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Before(time.Unix(0, 0)) || t.UnixMicro() > maxBarTime {
		return 0, fmt.Errorf("%s %q: want an RFC 3339 time (2026-11-30T14:30:00Z) or unix microseconds after 1970", key, v)
	}
	return t.UnixMicro(), nil
}

// wantsCSV reads the format the client asks for: format=csv or json, else
// CSV when its Accept names text/csv.
func wantsCSV(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return strings.Contains(r.Header.Get("Accept"), "text/csv"), nil
	default:
		return false, fmt.Errorf("format %q: want json or csv", f)
	}
}

// writeBarsCSV writes bars as CSV with a header line, times in RFC 3339.
func writeBarsCSV(w http.ResponseWriter, bs []bars.Bar) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriter(w)
	bw.WriteString("time,open,high,low,close,volume,trades\n")
	var line []byte
	for _, b := range bs {
		line = time.UnixMicro(b.T).UTC().AppendFormat(line[:0], time.RFC3339)
		for _, v := range [...]float64{b.Open, b.High, b.Low, b.Close, b.Volume} {
			line = strconv.AppendFloat(append(line, ','), v, 'f', -1, 64)
		}
		line = strconv.AppendUint(append(line, ','), uint64(b.Trades), 10)
		bw.Write(append(line, '\n'))
	}
	bw.Flush()
}

// serveBarIntervals answers GET /api/v1/bars/intervals: the intervals the
// node keeps bars of.
func (s *Server) serveBarIntervals(w http.ResponseWriter, _ *http.Request) {
	b := s.node.Bars()
	if b == nil {
		writeError(w, http.StatusNotFound, "bars are off on this server")
		return
	}
	ivs := make([]client.BarInterval, 0, len(b.Intervals()))
	for _, iv := range b.Intervals() {
		ivs = append(ivs, client.BarInterval{Name: iv.Name, Seconds: iv.Seconds(), Keep: iv.Keep})
	}
	writeJSON(w, http.StatusOK, ivs)
}
