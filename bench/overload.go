package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OverloadRate is the feed of the overload scenario, in updates per
// second: about twice the knee (the highest rate a find-max run sustains
// with p99 under 50 ms: just under 1000/s) of the scenario's shape, 4000
// connections × 10 of 400 symbols, on the quiet 2-core machine of
// docs/BENCHMARKS.md, so that the server is offered about twice the
// deliveries it can write in time. (500/s, the knee measured while the
// machine was shared, is kept up with at p99 22 ms on a quiet one.)
const OverloadRate = 2000

// Server metrics of conflation that an overload step reads: every update
// merged into a later DELTA, the messages queued to clients, the switches
// of a connection to conflated delivery by trigger, and the connections in
// conflated delivery now.
const (
	conflatedMetric  = "tickstream_conflated_total"
	messagesMetric   = "tickstream_messages_out_total"
	startsMetric     = "tickstream_conflation_starts_total"
	conflatingMetric = "tickstream_conflating_connections"
)

// conflationTriggers are the reasons of startsMetric: the freshness budget
// (--max-staleness), the outbound backlog (--soft-limit) and a socket that
// takes nothing (--soft-lag).
var conflationTriggers = []string{"staleness", "backlog", "lag"}

func startsSeries(reason string) string { return startsMetric + `{reason="` + reason + `"}` }

// OverloadStats are the conflation figures of a step of an overload run
// (Config.Overload): how much of what the feed offered the server merged
// per connection rather than queued.
type OverloadStats struct {
	// OfferedPerSec is the deliveries the feed asked of the server per
	// second: the messages it queued to clients plus the updates it
	// merged into later DELTAs. 0 when its /metrics could not be read.
	OfferedPerSec float64 `json:"offeredPerSec"`
	// ClientShare is the share of updates the connections saw merged
	// (seq gaps): Conflated / (Conflated + Deliveries) of the step.
	ClientShare float64 `json:"clientShare"`
	// ServerConflated and ServerMessages are the server's counters over
	// the window (tickstream_conflated_total, messages_out_total);
	// ServerShare is ServerConflated / (ServerConflated + ServerMessages),
	// -1 when /metrics could not be read.
	ServerConflated int64   `json:"serverConflated"`
	ServerMessages  int64   `json:"serverMessages"`
	ServerShare     float64 `json:"serverShare"`
	// Starts counts the connections' switches to conflated delivery in
	// the window, by trigger (tickstream_conflation_starts_total); nil
	// when the server does not export it.
	Starts map[string]int64 `json:"starts,omitempty"`
	// Conflating is the connections in conflated delivery at the end of
	// the window (tickstream_conflating_connections), -1 when the server
	// does not export it.
	Conflating int64 `json:"conflating"`
}

// conflationMetrics reads the server's conflation counters, nil when its
// /metrics cannot be read.
func (r *runner) conflationMetrics(ctx context.Context) map[string]float64 {
	names := []string{conflatedMetric, messagesMetric, conflatingMetric}
	for _, t := range conflationTriggers {
		names = append(names, startsSeries(t))
	}
	return r.scrapeMetrics(ctx, names...)
}

// overloadStats computes the overload figures of st from the server's
// counters at the start (m0) and the end (m1) of its window.
func overloadStats(st *Step, m0, m1 map[string]float64) *OverloadStats {
	o := &OverloadStats{ServerShare: -1, Conflating: -1}
	if n := st.Conflated + st.Deliveries; n > 0 {
		o.ClientShare = float64(st.Conflated) / float64(n)
	}
	if m0 == nil || m1 == nil {
		return o
	}
	delta := func(name string) int64 { return int64(m1[name] - m0[name]) }
	o.ServerConflated, o.ServerMessages = delta(conflatedMetric), delta(messagesMetric)
	if n := o.ServerConflated + o.ServerMessages; n > 0 {
		o.ServerShare = float64(o.ServerConflated) / float64(n)
		o.OfferedPerSec = float64(n) / st.Duration.Seconds()
	}
	for _, t := range conflationTriggers {
		if _, ok := m1[startsSeries(t)]; ok {
			if o.Starts == nil {
				o.Starts = map[string]int64{}
			}
			o.Starts[t] = delta(startsSeries(t))
		}
	}
	if v, ok := m1[conflatingMetric]; ok {
		o.Conflating = int64(v)
	}
	return o
}

// judgeOverload decides whether an overload step kept what arrives fresh:
// its p99 age under the limit, at the offered rate, without errors.
// Conflation is the expected answer to overload and does not fail it.
func (r *runner) judgeOverload(st *Step, newErrors int64) (bool, string) {
	var why []string
	if limit := r.cfg.p99Limit(); st.Latency.P99 > limit {
		why = append(why, fmt.Sprintf("p99 age %v over %v", st.Latency.P99.Round(time.Millisecond), limit))
	}
	if st.Rate > 0 {
		if got := float64(st.Produced) / st.Duration.Seconds(); got < minProduced*st.Rate {
			why = append(why, fmt.Sprintf("the producer reached only %.0f of %.0f updates/s: the load offered was lower than asked", got, st.Rate))
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

// overloadLine describes an overload step, whose p99 age limit is limit,
// for WriteSummary.
func overloadLine(st *Step, limit time.Duration) string {
	o := st.Overload
	var b strings.Builder
	within := "within"
	if st.Latency.P99 > limit {
		within = "OVER"
	}
	fmt.Fprintf(&b, "overload: p99 age %.1f ms, %s the %v limit", ms(st.Latency.P99), within, limit)
	if o.OfferedPerSec > 0 {
		fmt.Fprintf(&b, "; offered %s deliveries/s, delivered %s/s", si(o.OfferedPerSec), si(st.DeliveriesPerSec))
	}
	fmt.Fprintf(&b, "; conflated %.1f%% at the clients (seq gaps)", 100*o.ClientShare)
	if o.ServerShare >= 0 {
		fmt.Fprintf(&b, ", %.1f%% at the server (%s)", 100*o.ServerShare, conflatedMetric)
	}
	if o.Starts != nil {
		var parts []string
		for _, t := range conflationTriggers {
			if n, ok := o.Starts[t]; ok {
				parts = append(parts, fmt.Sprintf("%s %d", t, n))
			}
		}
		fmt.Fprintf(&b, "; switches to conflated delivery: %s", strings.Join(parts, ", "))
	}
	if o.Conflating >= 0 {
		fmt.Fprintf(&b, "; %d connections conflating at the end", o.Conflating)
	}
	return b.String()
}
