package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
)

// The two kinds of round of RunHistory.
const (
	// RoundQuotes subscribes without bars: the storm's cost before bars.
	RoundQuotes = "quotes"
	// RoundHistory subscribes with Config.Bars and Config.BarCount.
	RoundHistory = "history"
	// RoundResume subscribes with Config.Bars and the bars of the last two
	// intervals (barSince): what the TypeScript SDK asks for when it
	// reconnects holding the bars up to the last one.
	RoundResume = "resume"
)

// roundKinds are the kinds of round of RunHistory, in the order they run.
var roundKinds = []string{RoundQuotes, RoundHistory, RoundResume}

// Bounds of a history run.
const (
	// MaxHistoryRounds bounds Config.HistoryRounds.
	MaxHistoryRounds = 20
	// maxStormDials bounds the dials in flight of one storm, as Run's storm.
	maxStormDials = 10_000
)

// HistoryRound is one reconnect storm of RunHistory: every connection
// opened at once, each timed from its dial to its first chart.
type HistoryRound struct {
	// Kind is RoundQuotes, RoundHistory or RoundResume.
	Kind      string `json:"kind"`
	Attempted int    `json:"attempted"`
	Ready     int    `json:"ready"`
	Failed    int    `json:"failed"`
	// Total is the time from the first dial to the last first chart.
	Total time.Duration `json:"total"`
	// FirstChart is each connection's time from its dial to its first
	// chart: the BARS of every symbol (RoundHistory, RoundResume), or the
	// SNAPSHOT of every symbol (RoundQuotes).
	FirstChart Latency `json:"firstChart"`
	// Bytes is each connection's wire bytes (after permessage-deflate,
	// with the WebSocket framing) from its dial to its first chart.
	Bytes ByteStats `json:"bytes"`
	// BarsPerHistory is the mean number of bars a BARS carried.
	BarsPerHistory float64 `json:"barsPerHistory,omitempty"`
	// Server is the server's CPU over Total, nil when not measured.
	Server *ProcStats `json:"server,omitempty"`
	// Bench is the benchmark's own CPU over the round (its clients decode,
	// and inflate with compression, everything the server sends): near its
	// cores' limit, it, not the server, sets the times.
	Bench *ProcStats `json:"bench,omitempty"`
}

// ByteStats summarizes bytes per connection.
type ByteStats struct {
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P99   int64   `json:"p99"`
	Max   int64   `json:"max"`
	Total int64   `json:"total"`
}

// HistoryResult is every figure of RunHistory.
type HistoryResult struct {
	Config   ResultConfig   `json:"config"`
	Bars     string         `json:"bars"`
	BarCount int            `json:"barCount"`
	Started  time.Time      `json:"started"`
	Elapsed  time.Duration  `json:"elapsed"`
	Rounds   []HistoryRound `json:"rounds"`
	// Errors counts failures by kind; Violations the breaches of the
	// ordering contract (guarantee 5 included) the connections' Books saw.
	Errors           map[string]int64 `json:"errors"`
	Violations       int64            `json:"violations"`
	ViolationSamples []string         `json:"violationSamples,omitempty"`
	Passed           bool             `json:"passed"`
	Failures         []string         `json:"failures,omitempty"`
}

// histSession is one connection of a history round.
type histSession struct {
	idx   int // the slot's
	conn  *client.Conn
	start time.Time
	wire  atomic.Int64 // bytes read from the socket so far
	kind  string
	want  int // BARS (or symbols ready) that make the first chart
	// refusal is the server's ERROR, which explains a first chart that
	// never comes.
	refusal atomic.Pointer[string]

	// Owned by the connection's read goroutine until done is closed.
	histories int
	bars      int64
	doneAt    time.Time
	doneBytes int64
	done      chan struct{}
}

// RunHistory runs reconnect storms with history on: Config.Conns
// connections open at once, each subscribing to its SymbolsPerConn symbols
// with bars Config.Bars and barCount Config.BarCount, and each is timed and
// weighed until its first chart, the BARS of every symbol. The rounds
// alternate with storms that ask for no bars (the cost of a storm before
// bars) and storms that ask only for the bars of the last two intervals
// (RoundResume), Config.HistoryRounds of each; every round closes all its
// connections before the next. The server's CPU is sampled around each
// round when it runs on this machine. Nothing is fed: the server's bars are
// whatever its topic holds (serve --sim-history, or bench --embedded
// --history, writes a past).
func RunHistory(ctx context.Context, cfg Config, logger *slog.Logger) (*HistoryResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Bars == "" || cfg.BarCount < 1 || cfg.BarCount > codec.MaxBarHistory:
		return nil, fmt.Errorf("bench: a history run needs Bars and BarCount 1 to %d", codec.MaxBarHistory)
	case intervalLen(cfg.Bars) <= 0:
		return nil, fmt.Errorf("bench: Bars %q: want an interval name such as 1s, 1m or 1h", cfg.Bars)
	case cfg.HistoryRounds < 1 || cfg.HistoryRounds > MaxHistoryRounds:
		return nil, fmt.Errorf("bench: HistoryRounds %d: want 1 to %d", cfg.HistoryRounds, MaxHistoryRounds)
	case cfg.Rate > 0:
		return nil, errors.New("bench: a history run feeds nothing: want Rate 0")
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &runner{cfg: cfg, log: logger, clientLog: slog.New(slog.DiscardHandler), errors: map[string]int64{}, closes: map[int]int64{}}
	bound := time.Duration(len(roundKinds)*cfg.HistoryRounds)*(2*cfg.DialTimeout) + time.Minute
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	r.ctx = ctx
	r.findServer()
	if err := waitReady(ctx, cfg.URL, cfg.httpClient()); err != nil {
		return nil, err
	}

	market := sim.NewMarket(sim.Config{Symbols: cfg.Symbols, Seed: cfg.Seed})
	ips := r.sourceIPs()
	r.slots = make([]*slot, cfg.Conns)
	for i := range r.slots {
		r.slots[i] = &slot{idx: i}
		if ips > 0 {
			r.slots[i].laddr = sourceAddr(i, ips)
		}
	}
	chooseSymbols(r.slots, market.Symbols()[:cfg.Symbols], cfg.SymbolsPerConn, cfg.Zipf, cfg.Seed)

	res := &HistoryResult{Config: r.resultConfig(ips), Bars: cfg.Bars, BarCount: cfg.BarCount, Started: time.Now()}
	var runErr error
	for i := range len(roundKinds) * cfg.HistoryRounds {
		kind := roundKinds[i%len(roundKinds)]
		round, err := r.historyRound(ctx, kind)
		res.Rounds = append(res.Rounds, round)
		logger.Info("bench: history round", "kind", kind, "ready", round.Ready, "total", round.Total,
			"firstChartP50", round.FirstChart.P50, "bytesP50", round.Bytes.P50)
		if err != nil {
			runErr = err
			break
		}
	}
	res.Elapsed = time.Since(res.Started)
	res.Errors = r.errors
	res.Violations, res.ViolationSamples = r.violations, r.violationSamples
	var fail []string
	for _, rd := range res.Rounds {
		if rd.Failed > 0 {
			fail = append(fail, fmt.Sprintf("%d of %d connections of a %s round had no first chart", rd.Failed, rd.Attempted, rd.Kind))
		}
	}
	if res.Violations > 0 {
		fail = append(fail, fmt.Sprintf("%d violations of the ordering contract", res.Violations))
	}
	res.Passed, res.Failures = len(fail) == 0 && runErr == nil, fail
	return res, runErr
}

// readyWait bounds RunHistory's wait for the server to have read its topic.
const readyWait = time.Minute

// waitReady waits until the server at the WebSocket url answers /readyz with
// 200 to hc: it has read its topic, so its bars are all there.
func waitReady(ctx context.Context, url string, hc *http.Client) error {
	base, err := client.RESTBase(url)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	if err := PollOK(ctx, hc, base+"/readyz", nil); err != nil {
		return fmt.Errorf("bench: the server was not ready (GET %s/readyz) within %v", base, readyWait)
	}
	return nil
}

// ErrPollStopped is PollOK's error when its stop channel closed first.
var ErrPollStopped = errors.New("bench: stopped polling")

// PollOK asks url with GET every 50ms, with hc (nil: http.DefaultClient),
// until it answers 200 (nil), ctx ends (ctx's error), or stop closes
// (ErrPollStopped; a nil stop never does). Each request may take 2 s.
func PollOK(ctx context.Context, hc *http.Client, url string, stop <-chan struct{}) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			return err
		}
		resp, err := hc.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-stop:
			return ErrPollStopped
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// historyRound opens every slot's connection at once, waits for each one's
// first chart (or its failure), and closes them all.
func (r *runner) historyRound(ctx context.Context, kind string) (HistoryRound, error) {
	rd := HistoryRound{Kind: kind, Attempted: len(r.slots)}
	opts := r.cfg.subOptions()
	switch kind {
	case RoundHistory:
		opts.Bars, opts.BarCount = r.cfg.Bars, r.cfg.BarCount
	case RoundResume:
		iv := intervalLen(r.cfg.Bars)
		opts.Bars, opts.HasBarSince = r.cfg.Bars, true
		opts.BarSince = time.Now().Truncate(iv).Add(-iv).UnixMicro()
	}
	var cpu0 procSample
	if r.pid > 0 {
		cpu0, _ = readProc(r.pid)
	}
	self0, selfErr := readProc(os.Getpid())
	var (
		mu       sync.Mutex
		sessions = make([]*histSession, 0, len(r.slots))
		wg       sync.WaitGroup
	)
	start := time.Now()
	sem := make(chan struct{}, min(len(r.slots), maxStormDials))
	for _, sl := range r.slots {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := r.historyDial(ctx, sl, kind, opts)
			if s == nil {
				r.countError(dialErrorKind(err))
				return
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
			if err != nil {
				r.countError(err.Error())
			}
		}()
	}
	wg.Wait()
	var end time.Time
	// Bytes share the latency histograms' range (1 to 3e8): a connection's
	// bytes to its first chart stay far below 300 MB.
	charts, bytes := newHistogram(), newHistogram()
	var total, bars, histories int64
	for _, s := range sessions {
		if s.doneAt.IsZero() {
			continue
		}
		rd.Ready++
		end = later(end, s.doneAt)
		_ = charts.RecordValue(min(max(s.doneAt.Sub(s.start).Microseconds(), latencyMin), latencyMax))
		_ = bytes.RecordValue(max(s.doneBytes, 1))
		total += s.doneBytes
		bars += s.bars
		histories += int64(s.histories)
	}
	rd.Failed = rd.Attempted - rd.Ready
	if rd.Ready > 0 {
		rd.Total = end.Sub(start)
		rd.FirstChart = summarize(charts)
		rd.Bytes = ByteStats{Mean: float64(total) / float64(rd.Ready), P50: bytes.ValueAtQuantile(50),
			P99: bytes.ValueAtQuantile(99), Max: bytes.Max(), Total: total}
	}
	if histories > 0 {
		rd.BarsPerHistory = float64(bars) / float64(histories)
	}
	if r.pid > 0 && rd.Total > 0 {
		if cpu1, err := readProc(r.pid); err == nil {
			// The samples bracket the round, closes included: a little
			// more than Total, never less.
			rd.Server = &ProcStats{PID: r.pid, Shared: r.shared, CPUSeconds: cpu1.cpuSeconds - cpu0.cpuSeconds,
				RSSBytes: cpu1.rssBytes, MaxRSSBytes: cpu1.rssBytes}
			rd.Server.Cores = rd.Server.CPUSeconds / rd.Total.Seconds()
		}
	}
	if self1, err := readProc(os.Getpid()); err == nil && selfErr == nil && !r.shared && rd.Total > 0 {
		rd.Bench = &ProcStats{PID: os.Getpid(), CPUSeconds: self1.cpuSeconds - self0.cpuSeconds, RSSBytes: self1.rssBytes, MaxRSSBytes: self1.rssBytes}
		rd.Bench.Cores = rd.Bench.CPUSeconds / rd.Total.Seconds()
	}
	for _, s := range sessions {
		s.conn.Close()
		r.collectBook(s.conn.Book(), s.idx)
	}
	return rd, ctx.Err()
}

// historyDial opens one connection of a round, subscribes with opts and
// waits for its first chart. It returns the session (nil when the dial
// failed) and what went wrong.
func (r *runner) historyDial(ctx context.Context, sl *slot, kind string, opts *codec.SubOptions) (*histSession, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	s := &histSession{idx: sl.idx, start: time.Now(), kind: kind, want: len(sl.syms), done: make(chan struct{})}
	dialer := &net.Dialer{}
	if sl.laddr != nil {
		dialer.LocalAddr = sl.laddr
	}
	copts := client.Options{
		TLSConfig:   r.cfg.TLSConfig,
		Compression: r.cfg.Compression,
		Logger:      r.clientLog,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: &s.wire}, nil
		},
		OnMessage: func(m *codec.Message) { s.onMessage(m) },
	}
	if r.cfg.JSON {
		copts.Format = codec.JSON
	}
	c, err := client.Dial(ctx, r.cfg.URL, copts)
	if err != nil {
		return nil, err
	}
	s.conn = c
	if _, err := c.Subscribe(sl.syms, opts); err != nil {
		return s, fmt.Errorf("subscribe write failed")
	}
	select {
	case <-s.done:
		return s, nil
	case <-c.Done():
		return s, fmt.Errorf("closed before the first chart: %d %s", c.CloseCode(), closeName(c.CloseCode()))
	case <-ctx.Done():
		if e := s.refusal.Load(); e != nil {
			return s, errors.New(*e)
		}
		return s, errors.New("no first chart within the dial timeout")
	}
}

// onMessage runs on the connection's read goroutine, after its Book checked
// and applied m.
func (s *histSession) onMessage(m *codec.Message) {
	if !s.doneAt.IsZero() {
		return
	}
	switch {
	case m.Op == codec.OpError:
		e := fmt.Sprintf("server ERROR %d: %s", m.Code, m.Text)
		s.refusal.Store(&e)
		return
	case s.kind != RoundQuotes && m.Op == codec.OpBars:
		s.histories++
		s.bars += int64(len(m.Bars))
		if s.histories < s.want {
			return
		}
	case s.kind == RoundQuotes && (m.Op == codec.OpAck || m.Op == codec.OpSnapshot):
		if !s.conn.Book().Ready() {
			return
		}
	default:
		return
	}
	s.doneAt, s.doneBytes = time.Now(), s.wire.Load()
	close(s.done)
}

// intervalLen is the length of a bar interval named like the server's ("1s",
// "5m", "1h"), 0 for a name that is not one.
func intervalLen(name string) time.Duration {
	d, err := time.ParseDuration(name)
	if err != nil || d < time.Second {
		return 0
	}
	return d
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// WriteHistorySummary writes res as a table for people: one row per round,
// then the medians of each kind's rounds.
func WriteHistorySummary(w io.Writer, res *HistoryResult) error {
	c := &res.Config
	var b strings.Builder
	format := c.wireFormat()
	fmt.Fprintf(&b, "tickstream bench --history  %s  %s\n", c.URL, res.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "  reconnect storms of %d connections × %d of %d symbols, %s, %d source address(es); %d CPUs\n",
		c.Conns, c.SymbolsPerConn, c.Symbols, format, c.SourceIPs, c.NumCPU)
	fmt.Fprintf(&b, "  %s: SUB without bars; %s: SUB with bars %s, barCount %d; %s: bars %s since the last 2 (an SDK's reconnect)\n",
		RoundQuotes, RoundHistory, res.Bars, res.BarCount, RoundResume, res.Bars)
	b.WriteString("  first chart: every symbol's SNAPSHOT (quotes), BARS (history, resume)\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tready\tall in ms\tfirst chart p50 ms\tp99 ms\tmax ms\tKB/conn p50\tp99\tbars/BARS\tserver CPU s\tcores\tbench cores\t")
	for _, rd := range res.Rounds {
		fmt.Fprintf(tw, "%s\t%d/%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%s\t%s\t%s\t\n", rd.Kind, rd.Ready, rd.Attempted,
			ms(rd.Total), ms(rd.FirstChart.P50), ms(rd.FirstChart.P99), ms(rd.FirstChart.Max),
			float64(rd.Bytes.P50)/1024, float64(rd.Bytes.P99)/1024, rd.BarsPerHistory, cpuSeconds(rd.Server), cores(rd.Server), cores(rd.Bench))
	}
	for _, kind := range roundKinds {
		m := medianRound(res.Rounds, kind)
		if m == nil {
			continue
		}
		fmt.Fprintf(tw, "median %s\t\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%s\t%s\t%s\t\n", kind,
			ms(m.Total), ms(m.FirstChart.P50), ms(m.FirstChart.P99), ms(m.FirstChart.Max),
			float64(m.Bytes.P50)/1024, float64(m.Bytes.P99)/1024, m.BarsPerHistory, cpuSeconds(m.Server), cores(m.Server), cores(m.Bench))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nerrors: %s\n", countsLine(res.Errors))
	if res.Violations > 0 {
		fmt.Fprintf(&b, "violations: %d\n  %s\n", res.Violations, strings.Join(res.ViolationSamples, "\n  "))
	}
	if res.Passed {
		b.WriteString("PASSED\n")
	} else {
		fmt.Fprintf(&b, "FAILED: %s\n", strings.Join(res.Failures, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// medianRound returns the median, figure by figure, of the rounds of a
// kind (nil when there are none): each column is the median of its own
// values, so a row need not be one of the rounds.
func medianRound(rounds []HistoryRound, kind string) *HistoryRound {
	var of []HistoryRound
	for _, rd := range rounds {
		if rd.Kind == kind && rd.Ready > 0 {
			of = append(of, rd)
		}
	}
	if len(of) == 0 {
		return nil
	}
	med := func(f func(*HistoryRound) float64) float64 {
		v := make([]float64, len(of))
		for i := range of {
			v[i] = f(&of[i])
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := HistoryRound{Kind: kind}
	m.Total = time.Duration(med(func(r *HistoryRound) float64 { return float64(r.Total) }))
	m.FirstChart.P50 = time.Duration(med(func(r *HistoryRound) float64 { return float64(r.FirstChart.P50) }))
	m.FirstChart.P99 = time.Duration(med(func(r *HistoryRound) float64 { return float64(r.FirstChart.P99) }))
	m.FirstChart.Max = time.Duration(med(func(r *HistoryRound) float64 { return float64(r.FirstChart.Max) }))
	m.Bytes.P50 = int64(med(func(r *HistoryRound) float64 { return float64(r.Bytes.P50) }))
	m.Bytes.P99 = int64(med(func(r *HistoryRound) float64 { return float64(r.Bytes.P99) }))
	m.BarsPerHistory = med(func(r *HistoryRound) float64 { return r.BarsPerHistory })
	if of[0].Server != nil {
		m.Server = &ProcStats{
			CPUSeconds: med(func(r *HistoryRound) float64 { return cpuOf(r.Server) }),
			Cores:      med(func(r *HistoryRound) float64 { return coresOf(r.Server) }),
		}
	}
	if of[0].Bench != nil {
		m.Bench = &ProcStats{Cores: med(func(r *HistoryRound) float64 { return coresOf(r.Bench) })}
	}
	return &m
}

func cpuOf(p *ProcStats) float64 {
	if p == nil {
		return 0
	}
	return p.CPUSeconds
}

func coresOf(p *ProcStats) float64 {
	if p == nil {
		return 0
	}
	return p.Cores
}

func cpuSeconds(p *ProcStats) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", p.CPUSeconds)
}

func cores(p *ProcStats) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", p.Cores)
}

// WriteHistoryJSON writes res as indented JSON.
func WriteHistoryJSON(w io.Writer, res *HistoryResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("bench: write JSON: %w", err)
	}
	return nil
}

// WriteHistory writes a past of the market that Config describes (its
// Symbols and Seed, as RunHistory chooses from) to its Brokers' Topic:
// updates stamped over the span before now, at most n. A history run needs
// bars on the server; this gives a server that reads the topic from the
// start (bench --embedded) a day of them.
func WriteHistory(ctx context.Context, cfg Config, span time.Duration, n int) (int64, error) {
	p, err := sim.NewProducer(sim.ProducerConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, Transport: cfg.Transport})
	if err != nil {
		return 0, fmt.Errorf("bench: history: %w", err)
	}
	defer p.Close()
	now := time.Now()
	st, err := p.History(ctx, sim.NewMarket(sim.Config{Symbols: cfg.Symbols, Seed: cfg.Seed}), now.Add(-span), now, n)
	if err != nil {
		return st.Records, fmt.Errorf("bench: history: %w", err)
	}
	return st.Records, nil
}
