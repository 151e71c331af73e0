package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes res as indented JSON.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("bench: write JSON: %w", err)
	}
	return nil
}

// WriteSummary writes res as a table for people: the setup, connection
// times, one row per step, errors and the verdict.
func WriteSummary(w io.Writer, res *Result) error {
	c := &res.Config
	var b strings.Builder
	subs := fmt.Sprintf("%d of %d symbols", c.SymbolsPerConn, c.Symbols)
	if c.Zipf > 0 {
		subs += fmt.Sprintf(" (Zipf %.2g)", c.Zipf)
	}
	if c.MaxHz > 0 {
		subs += fmt.Sprintf(", maxHz %g", c.MaxHz)
	}
	if len(c.Fields) > 0 {
		subs += ", fields " + strings.Join(c.Fields, ",")
	}
	format := c.wireFormat()
	fmt.Fprintf(&b, "tickstream bench  %s  %s\n", c.URL, res.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "  %d connections × %s, %s, %d source address(es), read by %s; %d CPUs\n", c.Conns, subs, format, c.SourceIPs, readerName(c.ClientReader), c.NumCPU)
	fmt.Fprintf(&b, "  connect + first snapshots: %s\n", connectLine(&res.Connect))
	if res.Storm != nil {
		fmt.Fprintf(&b, "  reconnect storm:           %s\n", connectLine(res.Storm))
	}
	if res.Memory != nil {
		fmt.Fprintf(&b, "  server memory:             %s\n", memoryLine(res.Memory))
	}
	if s := res.Slow; s != nil {
		fmt.Fprintf(&b, "  slow connections:          %s\n", slowLine(s))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate/s\tproduced/s\tdelivered/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tB/update\tconflated\tserver CPU\tRSS MB\tbench CPU\tverdict\t")
	for _, st := range res.Steps {
		cpu, rss := "-", "-"
		if s := st.Server; s != nil {
			cpu = fmt.Sprintf("%.2f cores", s.Cores)
			if s.Shared {
				cpu += "*"
			}
			rss = fmt.Sprintf("%.0f", float64(s.MaxRSSBytes)/(1<<20))
		}
		self := "-"
		if s := st.Bench; s != nil {
			self = fmt.Sprintf("%.2f cores", s.Cores)
		}
		verdict := "ok"
		switch {
		case c.Overload && st.Sustained:
			verdict = "fresh"
		case c.Overload:
			verdict = "STALE"
		case !st.Sustained:
			verdict = "NOT SUSTAINED"
		}
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%s\t%s\t%s\t%s\t\n",
			st.Rate, float64(st.Produced)/st.Duration.Seconds(), st.DeliveriesPerSec,
			ms(st.Latency.P50), ms(st.Latency.P90), ms(st.Latency.P99), ms(st.Latency.P999), ms(st.Latency.Max),
			st.BytesPerDelivery, st.Conflated, cpu, rss, self, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, st := range res.Steps {
		if st.PublishMean > 0 {
			fmt.Fprintf(&b, "  step %d (%.0f/s): server publish time %.1f µs per change (tickstream_publish_seconds)\n",
				i+1, st.Rate, float64(st.PublishMean)/1e3)
		}
		if st.SchedWait != nil && st.SchedWait.Waits > 0 || st.BenchSchedWait != nil && st.BenchSchedWait.Waits > 0 {
			fmt.Fprintf(&b, "  step %d (%.0f/s): %s\n", i+1, st.Rate, schedLine(st.SchedWait, st.BenchSchedWait))
		}
		if st.Age != nil && st.Age.AtPublish.Count > 0 && st.Age.InEngine.Count > 0 {
			fmt.Fprintf(&b, "  step %d (%.0f/s): %s\n", i+1, st.Rate, ageLine(st.Age, st.Latency))
		}
		if st.Overload != nil {
			fmt.Fprintf(&b, "  step %d (%.0f/s): %s\n", i+1, st.Rate, overloadLine(&st, c.P99Limit))
		}
		if st.Reason != "" {
			fmt.Fprintf(&b, "  step %d (%.0f/s): %s\n", i+1, st.Rate, st.Reason)
		}
	}
	if len(res.Steps) > 0 && res.Steps[0].Server != nil && res.Steps[0].Server.Shared {
		b.WriteString("  * the server runs in the benchmark's process: its CPU and RSS include the benchmark's clients\n")
	}
	if c.FindMax {
		if res.MaxSustained > 0 {
			fmt.Fprintf(&b, "\nhighest sustained: %.0f deliveries/s (fed %.0f updates/s), p99 limit %v\n", res.MaxSustained, res.MaxSustainedRate, c.P99Limit)
		} else {
			// PASS below speaks of correctness; this run found no rate.
			fmt.Fprintf(&b, "\nno step was sustained (p99 limit %v): the first, %.0f updates/s, is already past this server's limit; start lower with --rate\n",
				c.P99Limit, c.Rate)
		}
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "closes: %s\n", countsLine(res.Closes))
	fmt.Fprintf(&b, "errors: %s\n", countsLine(res.Errors))
	fmt.Fprintf(&b, "ordering violations: %d\n", res.Violations)
	for _, s := range res.ViolationSamples {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if res.Final.Skipped != "" {
		fmt.Fprintf(&b, "final state check: skipped (%s)\n", res.Final.Skipped)
	} else {
		fmt.Fprintf(&b, "final state check: %d of %d symbol states match the server\n", res.Final.Checked-res.Final.Mismatches, res.Final.Checked)
		for _, s := range res.Final.Samples {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	if res.Passed {
		fmt.Fprintf(&b, "PASS in %v\n", res.Elapsed.Round(time.Second))
	} else {
		fmt.Fprintf(&b, "FAIL: %s\n", strings.Join(res.Failures, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func slowLine(s *SlowStats) string {
	line := fmt.Sprintf("%d × %d symbols that never read: %d dials", s.Conns, s.SymbolsPerConn, s.Dials)
	if s.Failed > 0 {
		line += fmt.Sprintf(" (%d FAILED)", s.Failed)
	}
	if s.Watched {
		line += fmt.Sprintf("; %d closed by the server after p50 %.1f s, max %.1f s; server send queue max %s per connection, peak %s in all",
			s.ClosedByServer, s.Lifetime.P50.Seconds(), s.Lifetime.Max.Seconds(), bytesText(s.MaxSendQueue), bytesText(s.PeakSendQueue))
	}
	if s.SlowCloses >= 0 {
		line += fmt.Sprintf("; server's 4008 closes: %d", s.SlowCloses)
	}
	return line
}

// bytesText formats n bytes in KB or MB.
func bytesText(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

func connectLine(s *ConnectStats) string {
	line := fmt.Sprintf("%d/%d ready in %v (per connection p50 %.1f ms, p99 %.1f ms, max %.1f ms)",
		s.Ready, s.Attempted, s.Total.Round(time.Millisecond), ms(s.PerConn.P50), ms(s.PerConn.P99), ms(s.PerConn.Max))
	if s.Failed > 0 {
		line += fmt.Sprintf(", %d FAILED", s.Failed)
	}
	return line
}

// countsLine writes a count map as "k ×n, ..." in key order.
func countsLine[K int | string](m map[K]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// ProgressLine formats p as the one-line live status of a run.
func ProgressLine(p Progress) string {
	s := fmt.Sprintf("%6.1fs  %-10s", p.Elapsed.Seconds(), p.Phase)
	if p.Rate > 0 {
		s += fmt.Sprintf("  step %d @ %.0f/s", p.Step, p.Rate)
	}
	s += fmt.Sprintf("  conns %d/%d  deliveries %s/s", p.Open, p.Conns, si(p.DeliveriesPerSec))
	if p.Phase == "measuring" {
		s += fmt.Sprintf("  p99 %.2f ms", ms(p.P99))
	}
	return s
}

// si formats v with a k or M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// wireFormat names the encoding the run's clients ask for: msgpack or json,
// and +deflate with compression.
func (c *ResultConfig) wireFormat() string {
	format := "msgpack"
	if c.JSON {
		format = "json"
	}
	if c.Compression {
		format += "+deflate"
	}
	return format
}
