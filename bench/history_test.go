package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/node"
	"github.com/tickstream/tickstream/server"
)

// historyServer starts a broker, writes two hours of the market's past to
// it and starts a server on it (ncfg). It returns the run's Config against it.
func historyServer(t *testing.T, ncfg node.Config) Config {
	t.Helper()
	b, err := embedded.Start("ticks", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := DefaultConfig()
	cfg.Brokers = b.Addrs()
	cfg.Conns, cfg.Symbols, cfg.SymbolsPerConn = 3, 8, 8
	cfg.BarCount, cfg.HistoryRounds = 60, 1
	cfg.ServerPID, cfg.Rate, cfg.DialTimeout = -1, 0, 5*time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n, err := WriteHistory(ctx, cfg, 2*time.Hour, 4000)
	if err != nil || n != 4000 {
		t.Fatalf("WriteHistory: %d, %v", n, err)
	}
	cfg.URL = testServerOn(t, b, server.Config{}, ncfg)
	cfg.Brokers = nil // nothing to feed: RunHistory waits until the server has read the past
	return cfg
}

// TestRunHistory runs a quotes storm and a history storm against a server
// with two hours of bars: every connection gets its first chart, the
// history's BARS carry bars, and they cost bytes the quotes storm does not.
func TestRunHistory(t *testing.T) {
	cfg := historyServer(t, node.Config{})
	res, err := RunHistory(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteHistorySummary(&sb, res); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
	if !res.Passed || len(res.Rounds) != 3 {
		t.Fatalf("passed %v, %d rounds: %v", res.Passed, len(res.Rounds), res.Failures)
	}
	quotes, hist, resume := res.Rounds[0], res.Rounds[1], res.Rounds[2]
	if quotes.Kind != RoundQuotes || hist.Kind != RoundHistory || resume.Kind != RoundResume {
		t.Fatalf("rounds %s, %s, %s: want %s, %s, %s", quotes.Kind, hist.Kind, resume.Kind, RoundQuotes, RoundHistory, RoundResume)
	}
	for _, rd := range res.Rounds {
		if rd.Ready != cfg.Conns || rd.FirstChart.Count != int64(cfg.Conns) || rd.Total <= 0 {
			t.Errorf("%s round: %d of %d ready, %d timed, total %v", rd.Kind, rd.Ready, cfg.Conns, rd.FirstChart.Count, rd.Total)
		}
	}
	// Two hours of 4000 updates over 8 symbols: the popular ones have a bar
	// nearly every minute, so the last 60 hold tens of bars on average.
	if hist.BarsPerHistory < 10 || hist.BarsPerHistory > float64(cfg.BarCount) {
		t.Errorf("%.1f bars per BARS, want 10 to %d", hist.BarsPerHistory, cfg.BarCount)
	}
	if quotes.BarsPerHistory != 0 {
		t.Errorf("the quotes round counted %.1f bars per BARS", quotes.BarsPerHistory)
	}
	// A bar is about 50 bytes: 8 histories of tens of bars weigh kilobytes.
	if hist.Bytes.P50 < quotes.Bytes.P50+int64(8*10*30) {
		t.Errorf("bytes to the first chart: history p50 %d, quotes p50 %d: want the bars' kilobytes more", hist.Bytes.P50, quotes.Bytes.P50)
	}
	// The history was written up to the server's start: a resume finds at
	// most the last two bars of a symbol, often none.
	if resume.BarsPerHistory > 2 || resume.Bytes.P50 >= hist.Bytes.P50 {
		t.Errorf("resume: %.1f bars per BARS, p50 %d bytes (history %d): want at most 2 bars, fewer bytes",
			resume.BarsPerHistory, resume.Bytes.P50, hist.Bytes.P50)
	}
}

// TestRunHistoryBarsOff fails a history storm against a server without
// bars, saying why: the server's refusal of the SUB.
func TestRunHistoryBarsOff(t *testing.T) {
	cfg := historyServer(t, node.Config{BarsOff: true})
	cfg.DialTimeout = 2 * time.Second
	res, err := RunHistory(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || len(res.Rounds) != 3 || res.Rounds[0].Ready != cfg.Conns || res.Rounds[1].Failed != cfg.Conns || res.Rounds[2].Failed != cfg.Conns {
		t.Fatalf("passed %v, rounds %+v: want the quotes round ready and the history round failed", res.Passed, res.Rounds)
	}
	var why string
	for k := range res.Errors {
		why += k
	}
	if !strings.Contains(why, "bars are off") {
		t.Errorf("errors %v: want the server's refusal", res.Errors)
	}
}

func TestRunHistoryRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"no bars", func(c *Config) { c.Bars = "" }, "needs Bars"},
		{"bar count 0", func(c *Config) { c.BarCount = 0 }, "BarCount 1 to 10000"},
		{"bar count past the server's limit", func(c *Config) { c.BarCount = 10001 }, "BarCount 1 to 10000"},
		{"no rounds", func(c *Config) { c.HistoryRounds = 0 }, "HistoryRounds 0"},
		{"not an interval", func(c *Config) { c.Bars = "minute" }, `Bars "minute"`},
		{"a feed", func(c *Config) { c.Rate, c.Brokers = 100, []string{"127.0.0.1:9"} }, "feeds nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Rate = 0
			tt.set(&cfg)
			if _, err := RunHistory(t.Context(), cfg, quiet); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}
