package bench

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/sim"
)

// Bounds of the drain after the feed stops: deliveries must stop changing
// for quietPeriod (plus the conflation interval under MaxHz) within
// maxDrain, or the final-state check is skipped.
const (
	quietPeriod = 500 * time.Millisecond
	maxDrain    = 15 * time.Second
)

// Thresholds of a sustained step, besides the p99 limit.
const (
	// minProduced is the share of the target rate the producer must
	// reach: below it the feed, not the server, set the pace.
	minProduced = 0.9
	// maxConflatedShare is the share of updates that may reach the
	// connections merged when no MaxHz asked for it: more means the
	// server conflates because it cannot keep up.
	maxConflatedShare = 0.01
)

// runner is the state of one Run.
type runner struct {
	cfg       Config
	log       *slog.Logger
	clientLog *slog.Logger
	sub       *codec.SubOptions
	slots     []*slot
	rec       *recorder
	// marketSymbols are the symbols to choose from; slow holds the
	// connections that never read (nil without Config.SlowConns).
	marketSymbols []string
	slow          *slowPool
	// poller reads the connections where it can; nil: client.Conn does.
	poller connPoller
	// http reads the server's HTTP endpoints (/metrics, the snapshot).
	http   *http.Client
	ctx    context.Context
	start  time.Time
	pid    int
	shared bool

	open      atomic.Int64
	measuring atomic.Bool

	// mu guards what follows, and serializes tick.
	mu               sync.Mutex
	errors           map[string]int64
	closes           map[int]int64
	violations       int64
	violationSamples []string
	phase            string
	step             int
	rate             float64
	windowStart      time.Time
	stepHist         *hdrhistogram.Histogram
	intervalHist     *hdrhistogram.Histogram
	series           []Point
	lastTick         time.Time
	lastDeliveries   int64
	maxRSS           int64
	// mem0 is the server's memory before the connections opened.
	mem0 memorySample
}

// Run runs the benchmark that cfg describes and returns its figures. It
// returns an error when cfg is invalid or the run could not start (no
// connection at all); a run that measured but found the server at fault
// (ordering violations, lost updates, dropped connections) returns a
// Result whose Passed is false. Run ends by itself: every wait is bounded,
// and the whole run by the time its configuration implies plus a margin.
// ctx cancels it; the figures measured so far are returned with ctx's
// error.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &runner{
		cfg:          cfg,
		log:          logger,
		clientLog:    slog.New(slog.DiscardHandler),
		sub:          cfg.subOptions(),
		rec:          newRecorder(),
		start:        time.Now(),
		errors:       map[string]int64{},
		closes:       map[int]int64{},
		stepHist:     newHistogram(),
		intervalHist: newHistogram(),
		phase:        "connecting",
		http:         cfg.httpClient(),
	}
	defer r.http.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, r.timeBound())
	defer cancel()
	r.ctx = ctx
	r.findServer()
	defer r.startPoller()()

	market := sim.NewMarket(sim.Config{Symbols: cfg.Symbols, Seed: cfg.Seed})
	r.slots = make([]*slot, cfg.Conns)
	ips := r.sourceIPs()
	for i := range r.slots {
		r.slots[i] = &slot{idx: i}
		if ips > 0 {
			r.slots[i].laddr = sourceAddr(i, ips)
		}
	}
	r.marketSymbols = market.Symbols()[:cfg.Symbols]
	chooseSymbols(r.slots, r.marketSymbols, cfg.SymbolsPerConn, cfg.Zipf, cfg.Seed)

	res := &Result{Config: r.resultConfig(ips), Started: r.start}
	ticker := r.startTicker()
	defer ticker()

	r.mem0 = r.serverMemory(ctx)
	res.Connect = r.connectAll(ctx, r.slots, cfg.RampRate, cfg.DialConcurrency)
	if res.Connect.Ready == 0 {
		r.closeAll(r.slots, cfg.DialConcurrency)
		return nil, fmt.Errorf("bench: none of %d connections to %s got ready: %s", cfg.Conns, cfg.URL, r.errorSummary())
	}
	var slowCloses0 map[string]float64
	if cfg.SlowConns > 0 {
		r.setPhase("slow conns")
		slowCloses0 = r.scrapeMetrics(ctx, slowClosesMetric)
		slow := r.newSlowPool()
		slow.open(ctx, cfg.DialConcurrency)
		r.mu.Lock()
		r.slow = slow
		r.mu.Unlock()
	}

	var producer *sim.Producer
	if len(cfg.Brokers) > 0 {
		var err error
		producer, err = sim.NewProducer(sim.ProducerConfig{
			Brokers:      cfg.Brokers,
			Topic:        cfg.Topic,
			BatchTimeout: time.Millisecond, // a write waits for no batch: latency counts from the event
			Transport:    cfg.Transport,
			Logger:       r.log,
		})
		if err != nil {
			r.closeAll(r.slots, cfg.DialConcurrency)
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer producer.Close()
	}

	var runErr error
	for i := 0; ; i++ {
		rate := cfg.Rate * math.Pow(cfg.StepFactor, float64(i))
		st, err := r.runStep(ctx, i, rate, producer, market, res)
		res.Steps = append(res.Steps, st)
		if err != nil {
			runErr = err
			break
		}
		if !cfg.FindMax || !st.Sustained || i+1 >= cfg.MaxSteps || rate*cfg.StepFactor > MaxRate {
			break
		}
	}
	if cfg.FindMax {
		for _, st := range res.Steps {
			if st.Sustained && st.DeliveriesPerSec > res.MaxSustained {
				res.MaxSustained, res.MaxSustainedRate = st.DeliveriesPerSec, st.Rate
			}
		}
	}

	r.setPhase("draining")
	switch {
	case runErr != nil:
		res.Final.Skipped = "the run was interrupted"
	case producer == nil:
		res.Final.Skipped = "the benchmark did not feed the topic (no brokers), so the feed never goes quiet"
	case !r.drain(ctx):
		res.Final.Skipped = fmt.Sprintf("deliveries did not stop within %v of the feed's end", maxDrain)
	default:
		res.Final = r.finalCheck(ctx)
	}
	r.closeAll(r.slots, cfg.DialConcurrency)
	if r.slow != nil {
		r.mu.Lock()
		slow := r.slow
		r.slow = nil
		r.mu.Unlock()
		st := slow.close()
		st.SlowCloses = -1
		if m := r.scrapeMetrics(ctx, slowClosesMetric); m != nil && slowCloses0 != nil {
			st.SlowCloses = int64(m[slowClosesMetric] - slowCloses0[slowClosesMetric])
		}
		res.Slow = &st
	}
	res.Totals.Deliveries, res.Totals.Conflated, res.Totals.WireBytes = r.totals()
	r.finish(res)
	return res, runErr
}

// timeBound is the longest a run can take: the ramp, each step with a
// storm's reconnection, the drain, and a margin.
func (r *runner) timeBound() time.Duration {
	c := &r.cfg
	steps := 1
	if c.FindMax {
		steps = c.MaxSteps
	}
	d := 2*c.DialTimeout + time.Duration(steps)*(c.Warmup+c.Duration) + maxDrain + time.Minute
	if c.RampRate > 0 {
		d += time.Duration(float64(c.Conns) / c.RampRate * float64(time.Second))
	}
	if c.Storm {
		d += c.DialTimeout
	}
	if c.SlowConns > 0 {
		d += c.DialTimeout
	}
	return d
}

// loopback reports whether the server's host is a loopback address.
func (r *runner) loopback() (host string, port int, ok bool) {
	u, err := url.Parse(r.cfg.URL)
	if err != nil {
		return "", 0, false
	}
	host = u.Hostname()
	port, _ = strconv.Atoi(u.Port())
	if port == 0 {
		port = 80
		if u.Scheme == "wss" {
			port = 443
		}
	}
	if host == "localhost" {
		return host, port, true
	}
	ip := net.ParseIP(host)
	return host, port, ip != nil && ip.IsLoopback()
}

// sourceIPs is the number of source addresses to spread over, 0 to leave
// the choice to the system.
func (r *runner) sourceIPs() int {
	host, _, ok := r.loopback()
	if !ok || strings.Contains(host, ":") || host == "localhost" {
		return 0 // an IPv6 or named server: 127.0.0.0/8 does not reach it
	}
	if r.cfg.SourceIPs > 0 {
		return r.cfg.SourceIPs
	}
	n := r.cfg.Conns + r.cfg.SlowConns
	if n <= connsPerSourceIP {
		return 0
	}
	return (n + connsPerSourceIP - 1) / connsPerSourceIP
}

// findServer sets the process whose CPU and memory are sampled.
func (r *runner) findServer() {
	switch pid := r.cfg.ServerPID; {
	case pid > 0:
		r.pid = pid
	case pid == 0:
		_, port, ok := r.loopback()
		if !ok {
			return
		}
		p, err := listenerPID(port)
		if err != nil {
			r.log.Info("bench: server CPU and memory will not be measured", "err", err)
			return
		}
		r.pid = p
	default:
		return
	}
	r.shared = r.pid == os.Getpid()
	if _, err := readProc(r.pid); err != nil {
		r.log.Info("bench: server CPU and memory will not be measured", "err", err)
		r.pid = 0
	}
}

func (r *runner) resultConfig(ips int) ResultConfig {
	c := &r.cfg
	return ResultConfig{
		URL: c.URL, Topic: c.Topic, Fed: len(c.Brokers) > 0,
		Conns: c.Conns, SymbolsPerConn: c.SymbolsPerConn, SlowConns: c.SlowConns, Symbols: c.Symbols, Zipf: c.Zipf,
		MaxHz: c.MaxHz, Fields: c.Fields, JSON: c.JSON, Compression: c.Compression,
		RampRate: c.RampRate, SourceIPs: max(ips, 1), Rate: c.Rate, Warmup: c.Warmup,
		Duration: c.Duration, Seed: c.Seed, Storm: c.Storm, FindMax: c.FindMax, Overload: c.Overload,
		P99Limit: c.p99Limit(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		ClientReader: r.clientReader(),
	}
}

// startTicker calls tick every Interval until the returned function is
// called; that function waits for the ticker's goroutine to end.
func (r *runner) startTicker() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				r.tick(now)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// tick closes an interval: it drains the latencies recorded since the last
// tick into the step's histogram and series, and reports progress.
func (r *runner) tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var delivered int64
	for _, sl := range r.slots {
		delivered += sl.deliveries.Load()
	}
	r.intervalHist.Reset()
	r.rec.drain(r.intervalHist)
	var dps float64
	if !r.lastTick.IsZero() && now.After(r.lastTick) {
		dps = float64(delivered-r.lastDeliveries) / now.Sub(r.lastTick).Seconds()
	}
	r.lastTick, r.lastDeliveries = now, delivered
	if r.slow != nil {
		r.slow.poll(r.ctx, now)
	}
	if !r.windowStart.IsZero() {
		r.stepHist.Merge(r.intervalHist)
		l := summarize(r.intervalHist)
		r.series = append(r.series, Point{At: now.Sub(r.windowStart), DeliveriesPerSec: dps,
			P50: l.P50, P99: l.P99, P999: l.P999, Max: l.Max})
		if r.pid > 0 {
			if s, err := readProc(r.pid); err == nil {
				r.maxRSS = max(r.maxRSS, s.rssBytes)
			}
		}
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(Progress{
			Elapsed: now.Sub(r.start), Phase: r.phase, Step: r.step + 1, Rate: r.rate,
			Open: int(r.open.Load()), Conns: r.cfg.Conns, DeliveriesPerSec: dps,
			P99: time.Duration(r.stepHist.ValueAtQuantile(99)) * time.Microsecond,
		})
	}
}

func (r *runner) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

// totals sums the counters of every slot.
func (r *runner) totals() (deliveries, conflated, wire int64) {
	for _, sl := range r.slots {
		deliveries += sl.deliveries.Load()
		conflated += sl.conflated.Load()
		wire += sl.wireBytes.Load()
	}
	return
}

// measured sums the deliveries counted while a window measured.
func (r *runner) measured() (n int64) {
	for _, sl := range r.slots {
		n += sl.measured.Load()
	}
	return n
}

// Server metrics the run reads.
const (
	publishSum       = "tickstream_publish_seconds_sum"
	publishCount     = "tickstream_publish_seconds_count"
	slowClosesMetric = "tickstream_slow_consumer_closes_total"
)

// runStep feeds rate updates per second through a warm-up (and the storm)
// and a measured window, and returns the window's figures.
func (r *runner) runStep(ctx context.Context, i int, rate float64, p *sim.Producer, m *sim.Market, res *Result) (Step, error) {
	st := Step{Rate: rate, Duration: r.cfg.Duration}
	if p == nil {
		st.Rate = 0
	}
	r.mu.Lock()
	r.step, r.rate, r.phase = i, st.Rate, "warm-up"
	r.mu.Unlock()

	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	var feed sim.Stats
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		if p == nil {
			return
		}
		var err error
		if feed, err = p.Run(feedCtx, m, rate, 0); err != nil {
			r.log.Error("bench: feed failed", "err", err)
		}
	}()
	// The producer first writes every symbol's whole state, which is not
	// part of the paced updates.
	initial := int64(r.cfg.Symbols)

	if err := sleep(ctx, r.cfg.Warmup); err != nil {
		stopFeed()
		<-fed
		return st, err
	}
	if r.cfg.Storm && i == 0 {
		r.setPhase("storm")
		r.closeAll(r.slots, r.cfg.DialConcurrency)
		storm := r.connectAll(ctx, r.slots, 0, min(r.cfg.Conns, 10_000))
		res.Storm = &storm
	}

	startFeedAt := time.Now()
	r.tick(startFeedAt)
	_, c0, w0 := r.totals()
	m0 := r.measured()
	var cpu0 procSample
	if r.pid > 0 {
		cpu0, _ = readProc(r.pid)
	}
	self0, selfErr := readProc(os.Getpid())
	pub0 := r.scrapeMetrics(ctx, publishSum, publishCount)
	hist0, self0Sched := r.histograms(ctx, serverHistograms...), selfSchedLatencies()
	var over0 map[string]float64
	if r.cfg.Overload {
		over0 = r.conflationMetrics(ctx)
	}
	errs0 := r.errorCount()
	r.mu.Lock()
	r.phase, r.windowStart, r.series, r.maxRSS = "measuring", startFeedAt, nil, 0
	r.stepHist.Reset()
	r.mu.Unlock()
	r.measuring.Store(true)

	err := sleep(ctx, r.cfg.Duration)

	r.measuring.Store(false)
	end := time.Now()
	r.tick(end)
	_, c1, w1 := r.totals()
	m1 := r.measured()
	if i == 0 {
		res.Memory = memoryPerConn(r.mem0, r.serverMemory(ctx), int(r.open.Load()))
	}
	if pub1 := r.scrapeMetrics(ctx, publishSum, publishCount); pub0 != nil && pub1 != nil {
		if n := pub1[publishCount] - pub0[publishCount]; n > 0 {
			st.PublishMean = time.Duration((pub1[publishSum] - pub0[publishSum]) / n * 1e9)
		}
	}
	hist1 := r.histograms(ctx, serverHistograms...)
	st.SchedWait, st.BenchSchedWait = schedWait(hist0[schedMetric], hist1[schedMetric]), schedWait(self0Sched, selfSchedLatencies())
	st.Age = ageSplit(hist0, hist1)
	var over1 map[string]float64
	if r.cfg.Overload {
		over1 = r.conflationMetrics(ctx)
	}
	stopFeed()
	<-fed

	elapsed := end.Sub(startFeedAt)
	st.Duration = elapsed
	st.Deliveries, st.Conflated, st.WireBytes = m1-m0, c1-c0, w1-w0
	st.DeliveriesPerSec = float64(st.Deliveries) / elapsed.Seconds()
	if r.cfg.Overload {
		st.Overload = overloadStats(&st, over0, over1)
	}
	if st.Deliveries > 0 {
		st.BytesPerDelivery = float64(st.WireBytes) / float64(st.Deliveries)
	}
	// The producer's count covers the warm-up too: scale it to the window.
	if total := feed.Elapsed.Seconds(); p != nil && total > 0 {
		st.Produced = int64(float64(max(feed.Records-initial, 0)) * elapsed.Seconds() / total)
	}
	r.mu.Lock()
	st.Latency = summarize(r.stepHist)
	st.Distribution = distribution(r.stepHist)
	st.Series = r.series
	r.windowStart = time.Time{}
	maxRSS := r.maxRSS
	r.mu.Unlock()
	if r.pid > 0 {
		if cpu1, err := readProc(r.pid); err == nil {
			st.Server = &ProcStats{PID: r.pid, Shared: r.shared, CPUSeconds: cpu1.cpuSeconds - cpu0.cpuSeconds,
				RSSBytes: cpu1.rssBytes, MaxRSSBytes: max(maxRSS, cpu1.rssBytes)}
			st.Server.Cores = st.Server.CPUSeconds / elapsed.Seconds()
		}
	}
	if self1, err := readProc(os.Getpid()); err == nil && selfErr == nil && !r.shared {
		st.Bench = &ProcStats{PID: os.Getpid(), CPUSeconds: self1.cpuSeconds - self0.cpuSeconds,
			RSSBytes: self1.rssBytes, MaxRSSBytes: self1.rssBytes}
		st.Bench.Cores = st.Bench.CPUSeconds / elapsed.Seconds()
	}
	st.Sustained, st.Reason = r.judge(&st, r.errorCount()-errs0)
	return st, err
}

// judge decides whether a step kept up.
func (r *runner) judge(st *Step, newErrors int64) (bool, string) {
	if r.cfg.Overload {
		return r.judgeOverload(st, newErrors)
	}
	var why []string
	if limit := r.cfg.p99Limit(); st.Latency.P99 > limit {
		why = append(why, fmt.Sprintf("p99 %v over %v", st.Latency.P99.Round(time.Microsecond), limit))
	}
	if st.Rate > 0 {
		if got := float64(st.Produced) / st.Duration.Seconds(); got < minProduced*st.Rate {
			why = append(why, fmt.Sprintf("the producer reached only %.0f of %.0f updates/s", got, st.Rate))
		}
	}
	if r.cfg.MaxHz == 0 && st.Conflated > 0 {
		if share := float64(st.Conflated) / float64(st.Conflated+st.Deliveries); share > maxConflatedShare {
			why = append(why, fmt.Sprintf("%.1f%% of updates conflated: deliveries fell behind", 100*share))
		}
	}
	if newErrors > 0 {
		why = append(why, fmt.Sprintf("%d errors", newErrors))
	}
	if st.Deliveries == 0 {
		why = append(why, "nothing delivered")
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func (r *runner) errorCount() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.errors {
		n += v
	}
	return n
}

func (r *runner) errorSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errors) == 0 {
		return "no error recorded"
	}
	var parts []string
	for k, v := range r.errors {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	return strings.Join(parts, ", ")
}

// drain waits for deliveries to stop after the feed did, and reports
// whether they did within maxDrain.
func (r *runner) drain(ctx context.Context) bool {
	quiet := quietPeriod
	if r.cfg.MaxHz > 0 {
		quiet += time.Duration(2 * float64(time.Second) / r.cfg.MaxHz)
	}
	deadline := time.Now().Add(maxDrain)
	last, _, _ := r.totals()
	since := time.Now()
	for time.Now().Before(deadline) {
		if sleep(ctx, 50*time.Millisecond) != nil {
			return false
		}
		n, _, _ := r.totals()
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return true
		}
	}
	return false
}

// finalCheck compares every open connection's rebuilt state with the
// server's. A mismatch may be the tail of the feed still on its way, to the
// server or from it: a starved machine can pause the deliveries for longer
// than the drain's quiet period and then resume. So a comparison that finds
// one is made again, with the server's state read again, every quiet
// period until it finds none or maxDrain has passed: a state that stays
// wrong is the verdict, one that was late is not.
func (r *runner) finalCheck(ctx context.Context) FinalCheck {
	deadline := time.Now().Add(maxDrain)
	for {
		fc := r.compareStates(ctx)
		if fc.Mismatches == 0 || fc.Skipped != "" || !time.Now().Before(deadline) || sleep(ctx, quietPeriod) != nil {
			return fc
		}
	}
}

// compareStates compares every open connection's rebuilt state with the
// server's, as the server holds it now.
func (r *runner) compareStates(ctx context.Context) FinalCheck {
	var fc FinalCheck
	want, err := r.serverState(ctx)
	if err != nil {
		fc.Skipped = err.Error()
		return fc
	}
	fields := r.sub.Fields
	mismatch := func(format string, a ...any) {
		fc.Mismatches++
		if len(fc.Samples) < maxSamples {
			fc.Samples = append(fc.Samples, fmt.Sprintf(format, a...))
		}
	}
	for _, sl := range r.slots {
		s := sl.sess.Load()
		if s == nil || s.conn.CloseCode() != 0 {
			continue
		}
		book := s.conn.Book()
		for _, sym := range sl.syms {
			srv, ok := want[sym]
			if !ok {
				continue
			}
			fc.Checked++
			e, ok := book.Entry(sym)
			if !ok {
				if srv.Seq > 0 {
					mismatch("conn %d %s: no state, server at seq %d", sl.idx, sym, srv.Seq)
				}
				continue
			}
			if e.Seq != srv.Seq {
				mismatch("conn %d %s: seq %d, server at %d", sl.idx, sym, e.Seq, srv.Seq)
				continue
			}
			for f := range codec.NumFields {
				if !fields.Has(f) {
					continue
				}
				v, has := srv.State[codec.FieldNames[f]]
				if has != e.Mask.Has(f) || has && v != e.Values[f] {
					mismatch("conn %d %s seq %d: %s is %v, server has %v", sl.idx, sym, e.Seq, codec.FieldNames[f], e.Values[f], v)
				}
			}
		}
	}
	return fc
}

// snapshotBatch is the number of symbols asked for in one REST request.
const snapshotBatch = 500

// serverState reads the server's state of every subscribed symbol from its
// REST API.
func (r *runner) serverState(ctx context.Context) (map[string]client.SymbolSnapshot, error) {
	base, err := client.RESTBase(r.cfg.URL)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var syms []string
	for _, sl := range r.slots {
		for _, s := range sl.syms {
			if !seen[s] {
				seen[s] = true
				syms = append(syms, s)
			}
		}
	}
	out := make(map[string]client.SymbolSnapshot, len(syms))
	for len(syms) > 0 {
		n := min(len(syms), snapshotBatch)
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		body, err := client.FetchSnapshot(fctx, r.http, base, syms[:n])
		cancel()
		if err != nil {
			return nil, fmt.Errorf("bench: server state: %w", err)
		}
		syms = syms[n:]
		maps.Copy(out, body.Snapshots)
	}
	return out, nil
}

// finish fills the run-wide figures and the verdict.
func (r *runner) finish(res *Result) {
	res.Elapsed = time.Since(r.start)
	r.mu.Lock()
	res.Errors, res.Closes = r.errors, r.closes
	res.Violations, res.ViolationSamples = r.violations, r.violationSamples
	r.mu.Unlock()
	var fail []string
	if res.Violations > 0 {
		fail = append(fail, fmt.Sprintf("%d violations of the ordering contract", res.Violations))
	}
	if res.Final.Mismatches > 0 {
		fail = append(fail, fmt.Sprintf("%d of %d final states differ from the server's", res.Final.Mismatches, res.Final.Checked))
	}
	if res.Connect.Failed > 0 {
		fail = append(fail, fmt.Sprintf("%d of %d connections failed to open", res.Connect.Failed, res.Connect.Attempted))
	}
	if res.Storm != nil && res.Storm.Failed > 0 {
		fail = append(fail, fmt.Sprintf("%d of %d connections failed to reopen in the storm", res.Storm.Failed, res.Storm.Attempted))
	}
	var dropped int64
	for kind, n := range res.Errors {
		if strings.HasPrefix(kind, "closed by server") {
			dropped += n
		}
	}
	if dropped > 0 {
		fail = append(fail, fmt.Sprintf("%d connections closed by the server", dropped))
	}
	if !r.cfg.FindMax && len(res.Steps) > 0 && res.Steps[0].Deliveries == 0 {
		fail = append(fail, "no update was delivered in the measured window")
	}
	res.Passed, res.Failures = len(fail) == 0, fail
}

// sleep waits for d or until ctx is done, returning ctx.Err() then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
