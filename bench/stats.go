package bench

import (
	"runtime"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of the latency histograms, in microseconds. Three significant
// digits keep each histogram near 140 KB and every percentile within 0.1%.
const (
	latencyMin     = 1
	latencyMax     = int64(5 * time.Minute / time.Microsecond)
	latencySigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyMin, latencyMax, latencySigFigs)
}

// recorder takes latencies from every connection's read goroutine. A
// single histogram would serialize them on one lock; a histogram per
// connection would cost 140 KB each. Shards sit between: connection i
// records into shard i mod len(shards).
type recorder struct {
	shards []recShard
}

type recShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [64]byte // keeps two shards' locks off one cache line
}

func newRecorder() *recorder {
	r := &recorder{shards: make([]recShard, 4*runtime.GOMAXPROCS(0))}
	for i := range r.shards {
		r.shards[i].h = newHistogram()
	}
	return r
}

// record adds one latency of us microseconds, clamped to the histogram's
// range: a negative value is clock skew between the producer and us.
func (r *recorder) record(shard int, us int64) {
	us = min(max(us, latencyMin), latencyMax)
	s := &r.shards[shard%len(r.shards)]
	s.mu.Lock()
	_ = s.h.RecordValue(us)
	s.mu.Unlock()
}

// drain moves everything recorded so far into h.
func (r *recorder) drain(h *hdrhistogram.Histogram) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		h.Merge(s.h)
		s.h.Reset()
		s.mu.Unlock()
	}
}

// Latency summarizes a latency histogram. Durations are in the JSON as
// nanoseconds (time.Duration); the *Ms fields repeat them in milliseconds
// for readers of the JSON.
type Latency struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean"`
	P50   time.Duration `json:"p50"`
	P90   time.Duration `json:"p90"`
	P99   time.Duration `json:"p99"`
	P999  time.Duration `json:"p999"`
	Max   time.Duration `json:"max"`
	P50Ms float64       `json:"p50Ms"`
	P99Ms float64       `json:"p99Ms"`
	MaxMs float64       `json:"maxMs"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	l := Latency{
		Count: h.TotalCount(),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
	l.P50Ms, l.P99Ms, l.MaxMs = ms(l.P50), ms(l.P99), ms(l.Max)
	return l
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Bucket is one bar of a latency distribution: Count latencies up to UpTo
// (and above the previous bucket's UpTo).
type Bucket struct {
	UpTo  time.Duration `json:"upTo"`
	Count int64         `json:"count"`
}

// distribution returns h's counts in buckets growing by a factor of about
// 1.25, which gives a readable bar chart on a log axis from 1µs to minutes.
func distribution(h *hdrhistogram.Histogram) []Bucket {
	if h.TotalCount() == 0 {
		return nil
	}
	var out []Bucket
	bound := int64(1)
	var cur int64
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		for bar.To > bound {
			if cur > 0 {
				out = append(out, Bucket{UpTo: time.Duration(bound) * time.Microsecond, Count: cur})
				cur = 0
			}
			bound = max(bound+1, bound*5/4)
		}
		cur += bar.Count
	}
	if cur > 0 {
		out = append(out, Bucket{UpTo: time.Duration(bound) * time.Microsecond, Count: cur})
	}
	return out
}

// Point is one Interval of a step: the deliveries and latency percentiles
// of what arrived during it.
type Point struct {
	// At is the end of the interval, from the start of the step's
	// measured window.
	At               time.Duration `json:"at"`
	DeliveriesPerSec float64       `json:"deliveriesPerSec"`
	P50              time.Duration `json:"p50"`
	P99              time.Duration `json:"p99"`
	P999             time.Duration `json:"p999"`
	Max              time.Duration `json:"max"`
}

// ConnectStats measures opening connections: from the start of each dial
// to the last SNAPSHOT of its subscription.
type ConnectStats struct {
	Attempted int `json:"attempted"`
	Ready     int `json:"ready"`
	Failed    int `json:"failed"`
	// Total is the time from the first dial to the last connection ready.
	Total time.Duration `json:"total"`
	// PerConn is the distribution of each connection's time.
	PerConn Latency `json:"perConn"`
}

// ProcStats is the server process's use of the machine during a measured
// window, read from /proc.
type ProcStats struct {
	PID int `json:"pid"`
	// Shared is true when the server runs in the benchmark's own process:
	// the figures then include the benchmark's clients.
	Shared     bool    `json:"shared"`
	CPUSeconds float64 `json:"cpuSeconds"`
	// Cores is CPUSeconds over the window's wall time.
	Cores       float64 `json:"cores"`
	RSSBytes    int64   `json:"rssBytes"`    // at the end of the window
	MaxRSSBytes int64   `json:"maxRssBytes"` // the largest sample in the window
}

// Step is one measured rate: the whole run, or one step of a find-max run.
type Step struct {
	// Rate is the target of updates per second fed to the topic;
	// Produced the updates the producer wrote in the measured window.
	Rate     float64       `json:"rate"`
	Produced int64         `json:"produced"`
	Duration time.Duration `json:"duration"`
	// Deliveries counts DELTAs received in the window, on every
	// connection; DeliveriesPerSec is their rate.
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	// Conflated counts the updates that reached the connections merged
	// into a later DELTA (seq gaps): by design under MaxHz, a sign of
	// slow delivery without it.
	Conflated int64 `json:"conflated"`
	// WireBytes counts the TCP payload received in the window (compressed,
	// with WebSocket framing); BytesPerDelivery divides it by Deliveries.
	WireBytes        int64   `json:"wireBytes"`
	BytesPerDelivery float64 `json:"bytesPerDelivery"`
	// Latency is event time (the update's ts) to receipt, of every DELTA
	// received in the window.
	Latency      Latency    `json:"latency"`
	Distribution []Bucket   `json:"distribution"`
	Series       []Point    `json:"series"`
	Server       *ProcStats `json:"server,omitempty"`
	// PublishMean is the server's mean time to fan out one change in the
	// window (tickstream_publish_seconds), 0 when its metrics could not
	// be read.
	PublishMean time.Duration `json:"publishMean,omitempty"`
	// SchedWait is how long the server's goroutines waited for a CPU in
	// the window, nil when the server does not export it.
	SchedWait *SchedWait `json:"schedWait,omitempty"`
	// BenchSchedWait is the same for the benchmark's own process (the
	// runtime's buckets, the mean estimated from their midpoints): a
	// client that waits for a CPU reads late, which adds to every
	// latency and which the server cannot see.
	BenchSchedWait *SchedWait `json:"benchSchedWait,omitempty"`
	// Age is where the age of what the clients received was spent, as
	// the server measures it; nil when it does not export its histograms.
	Age *AgeSplit `json:"age,omitempty"`
	// Overload is the step's conflation under overload, with
	// Config.Overload (nil otherwise).
	Overload *OverloadStats `json:"overload,omitempty"`
	// Bench is the benchmark's own process over the window: when it
	// shares the machine with the server, a benchmark near its cores'
	// limit inflates the latencies it measures.
	Bench *ProcStats `json:"bench,omitempty"`
	// Sustained reports whether the step kept p99 under the limit and
	// delivered without falling behind; Reason says why not.
	Sustained bool   `json:"sustained"`
	Reason    string `json:"reason,omitempty"`
}

// FinalCheck compares, once the feed went quiet, every connection's rebuilt
// state with the server's (GET /api/v1/snapshot): guarantee 3 of the
// protocol, no update lost beyond what conflation merged.
type FinalCheck struct {
	Skipped    string   `json:"skipped,omitempty"`
	Checked    int      `json:"checked"`
	Mismatches int      `json:"mismatches"`
	Samples    []string `json:"samples,omitempty"`
}

// Result is every figure of a run.
type Result struct {
	Config  ResultConfig  `json:"config"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed"`

	Connect ConnectStats  `json:"connect"`
	Storm   *ConnectStats `json:"storm,omitempty"`
	Steps   []Step        `json:"steps"`
	// MaxSustained is, in a find-max run, the delivered updates per second
	// of the highest sustained step (0 when none was).
	MaxSustained     float64 `json:"maxSustained,omitempty"`
	MaxSustainedRate float64 `json:"maxSustainedRate,omitempty"`

	// Memory is the server's memory per connection, measured at the end
	// of the first step.
	Memory *MemoryStats `json:"memory,omitempty"`

	Totals Totals `json:"totals"`
	// Slow is the figures of the connections that never read
	// (Config.SlowConns), nil without them.
	Slow *SlowStats `json:"slow,omitempty"`

	// Errors counts failures by kind: dials, refused upgrades, ERROR
	// messages, connections that ended unasked.
	Errors map[string]int64 `json:"errors"`
	// Closes counts how the connections ended, by close code (1000 for
	// the benchmark's own closes).
	Closes map[int]int64 `json:"closes"`
	// Violations counts breaches of the protocol's ordering contract;
	// ViolationSamples shows the first few.
	Violations       int64      `json:"violations"`
	ViolationSamples []string   `json:"violationSamples,omitempty"`
	Final            FinalCheck `json:"final"`

	// Passed is false when a violation, a final-state mismatch or a
	// connection that never got ready fails the run; Failures says why.
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
}

// ResultConfig is the part of Config a Result records.
type ResultConfig struct {
	URL            string   `json:"url"`
	Topic          string   `json:"topic"`
	Fed            bool     `json:"fed"`
	Conns          int      `json:"conns"`
	SymbolsPerConn int      `json:"symbolsPerConn"`
	SlowConns      int      `json:"slowConns,omitempty"`
	Symbols        int      `json:"symbols"`
	Zipf           float64  `json:"zipf,omitempty"`
	MaxHz          float64  `json:"maxHz,omitempty"`
	Fields         []string `json:"fields,omitempty"`
	JSON           bool     `json:"json"`
	Compression    bool     `json:"compression"`
	// ClientReader is what read the connections: "poll", the benchmark's
	// epoll poller, or "sdk", a client.Conn each (Config.SDKReader).
	ClientReader string        `json:"clientReader"`
	RampRate     float64       `json:"rampRate,omitempty"`
	SourceIPs    int           `json:"sourceIPs"`
	Rate         float64       `json:"rate"`
	Warmup       time.Duration `json:"warmup"`
	Duration     time.Duration `json:"duration"`
	Seed         int64         `json:"seed"`
	Storm        bool          `json:"storm,omitempty"`
	FindMax      bool          `json:"findMax,omitempty"`
	Overload     bool          `json:"overload,omitempty"`
	P99Limit     time.Duration `json:"p99Limit"`
	GOMAXPROCS   int           `json:"gomaxprocs"`
	NumCPU       int           `json:"numCPU"`
}

// Progress is the state of a run, reported every Config.Interval.
type Progress struct {
	Elapsed time.Duration
	// Phase is "connecting", "warm-up", "storm", "measuring" or "draining".
	Phase string
	Step  int     // from 1
	Rate  float64 // the step's target updates per second
	// Open counts the connections open, of Conns.
	Open, Conns      int
	DeliveriesPerSec float64
	// P99 is the p99 latency of the step's measured window so far.
	P99 time.Duration
}

// Totals counts what every connection received over the whole run, warm-up
// and drain included.
type Totals struct {
	Deliveries int64 `json:"deliveries"`
	Conflated  int64 `json:"conflated"`
	WireBytes  int64 `json:"wireBytes"`
}
