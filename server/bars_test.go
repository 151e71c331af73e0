package server

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/barstest"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// barsStart is the first ts of the bars tests' logs: a day's start.
var barsStart = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMicro()

// barsLog is a known log of 8 symbols over about 40 minutes, and a
// symbol LONG with a trade a second for 10 050 seconds: more 1 s bars
// than one answer holds.
func barsLog() []kafka.Message {
	log := barstest.Log(barstest.LogConfig{Seed: 3, Records: 6000, Symbols: 8, Start: barsStart, Step: 400_000})
	var u codec.Update
	for k := range 10_050 {
		u.Reset()
		u.Sym = []byte("LONG")
		u.Set(codec.FieldTS, float64(barsStart+int64(k)*1e6))
		u.Set(codec.FieldLast, 50+float64(k%13)*0.5)
		u.Set(codec.FieldLastSize, 10)
		log = append(log, kafka.Message{Key: []byte("LONG"), Value: codec.AppendRecord(nil, &u, false)})
	}
	return log
}

// barsNode runs a node over barsLog with 1 s bars for 3 hours and 1 min
// bars for a day, and waits until it has read the whole log.
func barsNode(t *testing.T, cfg Config) (*testNode, *barstest.Reference) {
	t.Helper()
	b := testBroker(t, 3)
	log := barsLog()
	kafkatest.Produce(t, b.Addrs(), "ticks", nil, log)
	ivs, err := bars.ParseIntervals("1s:3h,1m:24h")
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, setup{Config: cfg, Node: node.Config{Brokers: b.Addrs(), Bars: bars.Config{Intervals: ivs}}})
	n.waitRead(t, uint64(len(log)))
	return n, barstest.Replay(ivs, log)
}

// get returns the status and body of GET target on s.
func get(t *testing.T, s *Server, target string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr()+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestBarsREST reads every symbol's bars over REST, as JSON and as CSV,
// whole and in ranges, and holds them to the reference of the log.
func TestBarsREST(t *testing.T) {
	n, ref := barsNode(t, Config{})
	if ref.Count() == 0 {
		t.Fatal("the log makes no bar")
	}
	names := ref.Symbols()
	slices.Sort(names)
	for _, name := range names {
		for i, iv := range []string{"1s", "1m"} {
			want := ref.Bars(name, i)
			target := fmt.Sprintf("/api/v1/bars?symbol=%s&interval=%s", name, iv)
			if len(want) > 10_000 {
				want = want[len(want)-10_000:]
				target += "&limit=10000"
			}
			got, seq := restBars(t, "http://"+n.Addr(), target)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %d bars, want %d:\n got %v\nwant %v", target, len(got), len(want), got, want)
			}
			if len(want) > 0 && seq != ref.Seq(name) {
				t.Fatalf("%s: seq %d, want %d", target, seq, ref.Seq(name))
			}
			if got := csvBars(t, n.Server, target); !slices.Equal(got, want) {
				t.Fatalf("%s as CSV: %d bars, want %d:\n got %v\nwant %v", target, len(got), len(want), got, want)
			}
		}
	}
	all := ref.Bars("BAR03", 1)
	if len(all) < 10 {
		t.Fatalf("BAR03 has %d 1m bars, want 10 or more", len(all))
	}
	rfc := func(us int64) string { return url.QueryEscape(time.UnixMicro(us).UTC().Format(time.RFC3339Nano)) }
	ranges := []struct {
		query string
		want  []bars.Bar
	}{
		{fmt.Sprintf("from=%d&to=%d", all[2].T, all[5].T), all[2:5]},
		{fmt.Sprintf("from=%s&to=%s", rfc(all[2].T), rfc(all[5].T)), all[2:5]},
		{fmt.Sprintf("from=%d", all[2].T+1), all[3:]},
		{fmt.Sprintf("to=%s&limit=2", rfc(all[5].T-1)), all[3:5]},
		{"limit=3", all[len(all)-3:]},
		{fmt.Sprintf("from=%d&to=%d", all[2].T, all[2].T), nil},
	}
	for _, tt := range ranges {
		target := "/api/v1/bars?symbol=BAR03&interval=1m&" + tt.query
		if got, _ := restBars(t, "http://"+n.Addr(), target); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", target, got, tt.want)
		}
	}
	code, hdr, body := get(t, n.Server, "/api/v1/bars?symbol=BAR03&interval=1m", "Accept", "text/csv")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.HasPrefix(string(body), "time,open,high,low,close,volume,trades\n") {
		t.Errorf("Accept: text/csv: %d %s %.60q", code, hdr.Get("Content-Type"), body)
	}
	var late [2]int
	for _, name := range names {
		for i := range late {
			late[i] += ref.Late(name, i)
		}
	}
	for i, iv := range []string{"1s", "1m"} {
		if got := metric(t, n.Server, `tickstream_bars_late_total{interval="`+iv+`"}`); got != float64(late[i]) {
			t.Errorf("tickstream_bars_late_total{interval=%q} %v, want %d", iv, got, late[i])
		}
	}
	if late[0] == 0 {
		t.Error("the log has no late record at 1s: the late counter is not tested")
	}
	if got := metric(t, n.Server, "tickstream_bars_memory_bytes"); got < float64(ref.Count())*float64(bars.BytesPerBar) {
		t.Errorf("tickstream_bars_memory_bytes %v, less than the %d bars held", got, ref.Count())
	}
	if got := metric(t, n.Server, "tickstream_bars_capped_total"); got != 0 {
		t.Errorf("tickstream_bars_capped_total %v, want 0 (far below the bound)", got)
	}
	var ivs []client.BarInterval
	getJSON(t, "http://"+n.Addr()+"/api/v1/bars/intervals", &ivs)
	if want := []client.BarInterval{{Name: "1s", Seconds: 1, Keep: 10800}, {Name: "1m", Seconds: 60, Keep: 1440}}; !slices.Equal(ivs, want) {
		t.Errorf("intervals %+v, want %+v", ivs, want)
	}
}

// restBars returns the bars and seq of a GET /api/v1/bars in JSON from
// the node at base (http://host:port).
func restBars(t *testing.T, base, target string) ([]bars.Bar, uint64) {
	t.Helper()
	var resp client.BarsResponse
	getJSON(t, base+target, &resp)
	var out []bars.Bar
	for _, b := range resp.Bars {
		out = append(out, bars.Bar(b))
	}
	return out, resp.Seq
}

// csvBars returns the bars of a GET /api/v1/bars in CSV.
func csvBars(t *testing.T, s *Server, target string) []bars.Bar {
	t.Helper()
	code, _, body := get(t, s, target+"&format=csv")
	if code != http.StatusOK {
		t.Fatalf("GET %s as CSV: %d %s", target, code, body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "time,open,high,low,close,volume,trades" {
		t.Fatalf("CSV header %v", rows)
	}
	var out []bars.Bar
	for _, row := range rows[1:] {
		tm, err := time.Parse(time.RFC3339, row[0])
		if err != nil {
			t.Fatal(err)
		}
		var v [5]float64
		for k := range v {
			if v[k], err = strconv.ParseFloat(row[1+k], 64); err != nil {
				t.Fatal(err)
			}
		}
		n, err := strconv.ParseUint(row[6], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bars.Bar{T: tm.UnixMicro(), Open: v[0], High: v[1], Low: v[2], Close: v[3], Volume: v[4], Trades: uint32(n)})
	}
	return out
}

// TestBarsRESTRefuses sends bad requests: each gets its status and a
// message that says what is wrong.
func TestBarsRESTRefuses(t *testing.T) {
	auth, err := NewAuthenticator(AuthConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := barsNode(t, Config{Auth: auth})
	grant := "&token=" + token(t, []string{"BAR01", "LONG", "NOSUCH"}, time.Now().Add(time.Hour), nil)
	expired := "&token=" + token(t, []string{"BAR01"}, time.Now().Add(-time.Hour), nil)
	tests := []struct {
		name, query string
		status      int
		want        string
	}{
		{"no token", "symbol=BAR01&interval=1m", 401, ""},
		{"expired token", "symbol=BAR01&interval=1m" + expired, 401, ""},
		{"not entitled", "symbol=BAR02&interval=1m" + grant, 403, "not entitled to BAR02"},
		{"no symbol", "interval=1m" + grant, 400, `symbol "": want 1 to 32 characters`},
		{"bad symbol", "symbol=" + url.QueryEscape("BAR 01") + "&interval=1m" + grant, 400, `symbol "BAR 01"`},
		{"no interval", "symbol=BAR01" + grant, 400, `unknown interval "" (this server has 1s, 1m)`},
		{"unknown interval", "symbol=BAR01&interval=5m" + grant, 400, `unknown interval "5m" (this server has 1s, 1m)`},
		{"interval not canonical", "symbol=BAR01&interval=60s" + grant, 400, `unknown interval "60s"`},
		{"bad from", "symbol=BAR01&interval=1m&from=yesterday" + grant, 400, `from "yesterday": want an RFC 3339 time`},
		{"negative from", "symbol=BAR01&interval=1m&from=-5" + grant, 400, "from -5: want unix microseconds"},
		{"from past 2^53", "symbol=BAR01&interval=1m&from=9007199254740992" + grant, 400, "from 9007199254740992"},
		{"from before 1970", "symbol=BAR01&interval=1m&from=1969-12-31T23:59:59Z" + grant, 400, "from"},
		{"bad to", "symbol=BAR01&interval=1m&to=2026-13-01T00:00:00Z" + grant, 400, "to "},
		{"to before from", "symbol=BAR01&interval=1m&from=2000&to=1000" + grant, 400, "to is before from"},
		{"limit 0", "symbol=BAR01&interval=1m&limit=0" + grant, 400, "limit: want an integer from 1 to 10000"},
		{"limit too large", "symbol=BAR01&interval=1m&limit=10001" + grant, 400, "limit"},
		{"limit not a number", "symbol=BAR01&interval=1m&limit=ten" + grant, 400, "limit"},
		{"bad format", "symbol=BAR01&interval=1m&format=xml" + grant, 400, `format "xml": want json or csv`},
		{"range too long", "symbol=LONG&interval=1s" + grant, 400, "range holds more than 10000 bars; narrow from/to or set limit"},
		{"unknown symbol", "symbol=NOSUCH&interval=1m" + grant, 404, `unknown symbol "NOSUCH"`},
		{"the long range with a limit", "symbol=LONG&interval=1s&limit=10000" + grant, 200, ""},
		{"the long range narrowed", fmt.Sprintf("symbol=LONG&interval=1s&from=%d", barsStart+5000*1e6) + grant, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := get(t, n.Server, "/api/v1/bars?"+tt.query)
			if code != tt.status {
				t.Fatalf("status %d %s, want %d", code, body, tt.status)
			}
			if code == 200 {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tt.want) {
				t.Fatalf("error %q (%v), want one containing %q", e.Error, err, tt.want)
			}
		})
	}
	// Nothing else changed: the refusals left the bars as they were.
	if got, _ := restBars(t, "http://"+n.Addr(), "/api/v1/bars?symbol=LONG&interval=1m"+grant); len(got) != 168 {
		t.Fatalf("LONG has %d 1m bars after the refusals, want 168", len(got))
	}
}
