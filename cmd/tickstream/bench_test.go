package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/bench"
)

// benchChildEnv makes the test binary act as tickstream itself, so that
// `bench --embedded` can start its server as a child process in tests.
const benchChildEnv = "TICKSTREAM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestBenchFlags(t *testing.T) {
	// The environment must not fill in what a case leaves out.
	for _, env := range []string{"TICKSTREAM_BROKERS", "TICKSTREAM_URL", "TICKSTREAM_RATE"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	tests := []refusal{
		{"help", []string{"-h"}, "", flag.ErrHelp},
		{"unknown flag", []string{"--nope"}, "", errUsage},
		{"bad scenario", []string{"--scenario", "rush"}, `unknown scenario "rush"`, nil},
		{"argument", []string{"extra"}, `unexpected argument "extra"`, nil},
		{"bad format", []string{"--format", "xml"}, `--format "xml"`, nil},
		{"bad brokers", []string{"--brokers", "nohost"}, `"nohost" is not host:port`, nil},
		{"embedded and brokers", []string{"--embedded", "--brokers", "127.0.0.1:9092"}, "exclude each other", nil},
		{"embedded and url", []string{"--embedded", "--url", "ws://127.0.0.1:1/ws"}, "exclude each other", nil},
		{"embedded and SASL", []string{"--embedded", "--sasl-mechanism", "PLAIN"}, "exclude each other", nil},
		{"TLS without brokers", []string{"--tls"}, "--brokers is required", nil},
		{"SASL without mechanism", []string{"--brokers", "127.0.0.1:9092", "--sasl-user", "u"}, "SASL credentials given without a SASL mechanism", nil},
		{"missing client certificate", []string{"--brokers", "127.0.0.1:9092", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "TLS client certificate", nil},
		{"bad plot", []string{"--plot", filepath.Join(t.TempDir(), "p.pdf")}, "want a .html or .png", nil},
		{"rate without brokers", []string{"--rate", "100"}, "needs Brokers", nil},
		{"bad url", []string{"--url", "http://127.0.0.1/ws"}, "want ws://", nil},
		{"bad field", []string{"--fields", "bid,colour"}, `unknown field "colour"`, nil},
		{"zero conns", []string{"--scenario", "firehose", "--conns", "0"}, "Conns 0", nil},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level", nil},
		{"serve flags without embedded", []string{"--serve-flags", "--max-staleness 50ms"}, "--serve-flags needs --embedded", nil},
		{"server CA without wss", []string{"--server-ca", "ca.pem"}, "--server-ca needs a wss:// --url", nil},
		{"server CA not a file", []string{"--url", "wss://127.0.0.1:1/ws", "--server-ca", filepath.Join(t.TempDir(), "none.pem")}, "--server-ca: open", nil},
		{"history with a rate", []string{"--history", "--embedded", "--rate", "100"}, "--history feeds nothing", nil},
		{"history with a plot", []string{"--history", "--plot", filepath.Join(t.TempDir(), "p.html")}, "no latency plot", nil},
		{"history with brokers", []string{"--history", "--brokers", "127.0.0.1:9092"}, "drop --brokers", nil},
	}
	testRefusals(t, runBench, tests, "usage: tickstream bench")
}

// TestBenchServeFlags checks that --serve-flags reach the embedded server:
// one it refuses stops the run before it starts.
func TestBenchServeFlags(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Setenv(benchChildEnv, "1")
	var stdout, stderr bytes.Buffer
	err := runBench(t.Context(), []string{"--embedded", "--serve-flags", "--max-frame 4096 --no-such-flag", "--conns", "1"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "embedded server: exited before serving") || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Fatalf("err %v, stderr %q: want the server to refuse --no-such-flag", err, stderr.String())
	}
}

// TestBenchEmbedded runs the whole command: a child server, a short run,
// the summary, the JSON and the plot.
func TestBenchEmbedded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Setenv(benchChildEnv, "1")
	dir := t.TempDir()
	jsonFile, plotFile := filepath.Join(dir, "out", "r.json"), filepath.Join(dir, "out", "r.html")
	profFile := filepath.Join(dir, "cpu.prof")
	var stdout, stderr bytes.Buffer
	err := runBench(t.Context(), []string{"--embedded", "--scenario", "firehose", "--symbols", "20",
		"--symbols-per-conn", "20", "--conns", "2", "--rate", "100", "--warmup", "300ms", "--duration", "1s",
		"--interval", "200ms", "--json", jsonFile, "--plot", plotFile, "--cpuprofile", profFile}, &stdout, &stderr)
	t.Log(stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 connections × 20 of 20 symbols", "delivered/s", "PASS"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary has no %q", want)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Passed || len(res.Steps) != 1 || res.Steps[0].Deliveries == 0 {
		t.Errorf("JSON result %+v: want a passed run with deliveries", res)
	}
	if s := res.Steps[0].Server; s == nil || s.Shared || s.CPUSeconds < 0 || s.RSSBytes == 0 {
		t.Errorf("server figures %+v: want the child process's own", s)
	}
	if p, err := os.ReadFile(plotFile); err != nil || !bytes.Contains(p, []byte("<svg")) {
		t.Errorf("plot: %v, want an HTML page with SVG", err)
	}
	if st, err := os.Stat(profFile); err != nil || st.Size() == 0 {
		t.Errorf("CPU profile: %v, want a non-empty file", err)
	}
}

// TestBenchHistoryEmbedded runs bench --history --embedded: the topic gets a
// past before the child server starts, and the storms with history get
// their bars.
func TestBenchHistoryEmbedded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Setenv(benchChildEnv, "1")
	jsonFile := filepath.Join(t.TempDir(), "h.json")
	var stdout, stderr bytes.Buffer
	err := runBench(t.Context(), []string{"--embedded", "--history", "--history-span", "1h", "--symbols", "10",
		"--symbols-per-conn", "5", "--conns", "4", "--bar-count", "30", "--history-rounds", "1", "--json", jsonFile}, &stdout, &stderr)
	t.Log(stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reconnect storms of 4 connections × 5 of 10 symbols", "median history", "PASSED"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary has no %q", want)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.HistoryResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Rounds) != 3 || res.Rounds[1].BarsPerHistory == 0 || res.Rounds[1].Server == nil || res.Rounds[1].Server.CPUSeconds < 0 {
		t.Errorf("JSON result %+v: want three rounds, bars in the history round, the child server's CPU", res)
	}
}
