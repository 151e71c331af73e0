package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestProduceFlags(t *testing.T) {
	// The environment must not fill in what a case leaves out.
	t.Setenv("TICKSTREAM_BROKERS", "")
	const b = "--brokers=127.0.0.1:9092"
	tests := []refusal{
		{"help", []string{"-h"}, "", flag.ErrHelp},
		{"unknown flag", []string{b, "--nope"}, "", errUsage},
		{"not a number", []string{b, "--rate", "fast"}, "", errUsage},
		{"no brokers", nil, "--brokers is required", nil},
		{"blank brokers", []string{"--brokers", " , "}, "--brokers is required", nil},
		{"broker without port", []string{"--brokers", "localhost"}, `--brokers: "localhost" is not host:port`, nil},
		{"broker with bad port", []string{"--brokers", "a:1,b:99999"}, `--brokers: "b:99999" has no valid port`, nil},
		{"empty topic", []string{b, "--topic", ""}, `--topic ""`, nil},
		{"bad topic", []string{b, "--topic", "ti cks"}, `--topic "ti cks": want only letters`, nil},
		{"bad format", []string{b, "--format", "avro"}, `--format "avro"`, nil},
		{"bad acks", []string{b, "--acks", "none"}, `--acks "none"`, nil},
		{"zero symbols", []string{b, "--symbols", "0"}, "--symbols 0", nil},
		{"too many symbols", []string{b, "--symbols", "2000000"}, "--symbols 2000000", nil},
		{"zero rate", []string{b, "--rate", "0"}, "--rate 0", nil},
		{"negative rate", []string{b, "--rate", "-10"}, "--rate -10", nil},
		{"NaN rate", []string{b, "--rate", "NaN"}, "--rate NaN", nil},
		{"huge rate", []string{b, "--rate", "1e9"}, "--rate 1e+09", nil},
		{"negative duration", []string{b, "--duration", "-1s"}, "--duration -1s", nil},
		{"speed without replay", []string{b, "--speed", "2"}, "--speed applies only with --replay", nil},
		{"skip-bad without replay", []string{b, "--skip-bad"}, "--skip-bad applies only with --replay", nil},
		{"rate with replay", []string{b, "--replay", "x.csv", "--rate", "5"}, "--rate applies only to the simulator", nil},
		{"seed with replay", []string{b, "--replay", "x.csv", "--seed", "5"}, "--seed applies only to the simulator", nil},
		{"negative speed", []string{b, "--replay", "x.csv", "--speed", "-1"}, "--speed -1", nil},
		{"infinite speed", []string{b, "--replay", "x.csv", "--speed", "+Inf"}, "--speed +Inf", nil},
		{"argument", []string{b, "extra"}, `unexpected argument "extra"`, nil},
		{"bad log level", []string{b, "--log-level", "loud"}, "--log-level", nil},
		{"missing replay file", []string{b, "--replay", filepath.Join(t.TempDir(), "none.jsonl")}, "no such file", nil},
		{"zero partitions", []string{b, "--partitions", "0"}, "--partitions 0: want 1 to 100000, or -1", nil},
		{"zero replicas", []string{b, "--replication-factor", "0"}, "--replication-factor 0: want 1 or more, or -1", nil},
		{"duration without unit", []string{b, "--duration", "5"}, `--duration "5": a duration needs a unit, e.g. 5s`, nil},
		{"missing CA", []string{b, "--tls-ca", filepath.Join(t.TempDir(), "ca.pem")}, "--tls-* or --sasl-*: TLS CA", nil},
		{"SASL user without mechanism", []string{b, "--sasl-user", "u"}, "SASL credentials given without a SASL mechanism", nil},
		{"bad SASL mechanism", []string{b, "--sasl-mechanism", "GSSAPI", "--sasl-user", "u"}, `SASL mechanism "GSSAPI"`, nil},
	}
	testRefusals(t, runProduce, tests, "usage: tickstream produce")
}

// produceCluster starts an in-process Kafka broker on loopback with a
// 4-partition topic "ticks" and returns its address.
func produceCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "ticks"), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// topicRecords returns the number of records of topic "ticks".
func topicRecords(t *testing.T, addr string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var n int64
	for p := range 4 {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, "ticks", p)
		if err != nil {
			t.Fatal(err)
		}
		end, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += end
	}
	return n
}

func TestProduceReplay(t *testing.T) {
	const input = `{"sym":"AAPL","ts":1750000000000000,"bid":187.23}
{"bid":2}
{"sym":"MSFT","ts":1750000000001000,"ask":480.5}
{"sym":"AAPL","ts":1750000000002000,"bid":"x"}
{"sym":"NVDA","ts":1750000000003000,"last":172.4}
`
	file := filepath.Join(t.TempDir(), "ticks.jsonl")
	if err := os.WriteFile(file, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		err     string // substring of the error, "" for none
		stdout  string // substring of the summary
		stderr  []string
		records int64 // records on the topic afterwards
	}{
		{
			name:    "skip bad lines",
			args:    []string{"--replay", file, "--speed", "0", "--skip-bad"},
			stdout:  "replayed 3 records",
			stderr:  []string{"skipped line 2: record has no symbol", `skipped line 4: field of the wrong type: bid is not a number`},
			records: 3,
		},
		{
			name:    "stop at the first bad line",
			args:    []string{"--replay", file, "--speed", "0", "--format", "json"},
			err:     "ticks.jsonl: line 2: record has no symbol",
			stdout:  "replayed 1 records",
			records: 1,
		},
		{
			name:    "real time",
			args:    []string{"--replay", file, "--skip-bad"},
			stdout:  ", 2 bad lines skipped",
			records: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := produceCluster(t)
			var stdout, stderr bytes.Buffer
			err := runProduce(t.Context(), append([]string{"--brokers", addr}, tt.args...), &stdout, &stderr)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			if !strings.Contains(stdout.String(), tt.stdout) || strings.Count(stdout.String(), "\n") != 1 {
				t.Errorf("stdout %q, want one line with %q", stdout.String(), tt.stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q lacks %q", stderr.String(), s)
				}
			}
			if n := topicRecords(t, addr); n != tt.records {
				t.Errorf("%d records on the topic, want %d", n, tt.records)
			}
		})
	}
}

func TestProduceSimulated(t *testing.T) {
	addr := produceCluster(t)
	var stdout, stderr bytes.Buffer
	args := []string{"--brokers", addr, "--symbols", "20", "--rate", "200", "--duration", "500ms", "--format", "json", "--acks", "all"}
	if err := runProduce(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, &stderr)
	}
	if !strings.HasPrefix(stdout.String(), "produced ") || !strings.Contains(stdout.String(), "0 write errors") {
		t.Errorf("summary %q", stdout.String())
	}
	// 20 initial records, then up to 100 paced ones.
	if n := topicRecords(t, addr); n < 20+50 || n > 20+100 {
		t.Errorf("%d records on the topic, want 70 to 120", n)
	}
}

// TestProduceCreatesTopic runs produce against a broker without the topic:
// it creates it as --partitions says, says so, and writes; a second run
// finds it.
func TestProduceCreatesTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	for i, want := range []string{"created the topic", "topic exists"} {
		var stdout, stderr bytes.Buffer
		args := []string{"--brokers", addr, "--topic", "fresh", "--partitions", "3", "--replication-factor", "1",
			"--symbols", "5", "--rate", "100", "--duration", "300ms"}
		if err := runProduce(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("run %d: %v; stderr:\n%s", i+1, err, &stderr)
		}
		if !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "partitions=3") {
			t.Errorf("run %d: stderr %q, want %q and partitions=3", i+1, stderr.String(), want)
		}
		if !strings.Contains(stdout.String(), ", 0 write errors") {
			t.Errorf("run %d: summary %q, want no write error", i+1, stdout.String())
		}
	}
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions("fresh")
	if err != nil || len(parts) != 3 {
		t.Errorf("topic fresh has %d partitions (%v), want 3", len(parts), err)
	}
}

// TestProduceNoBroker checks that produce with no broker to talk to retries
// for --duration, not for ever, then exits 1 saying nothing was written;
// and that an interrupt ends it the same way.
func TestProduceNoBroker(t *testing.T) {
	t.Setenv("TICKSTREAM_BROKERS", "")
	addr := freeAddr(t)
	tests := []struct {
		name      string
		args      []string
		interrupt time.Duration // cancel the context after this long; 0: never
	}{
		{"duration", []string{"--duration", "1s"}, 0},
		{"interrupted", nil, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if tt.interrupt > 0 {
				time.AfterFunc(tt.interrupt, cancel)
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(ctx, append([]string{"produce", "--brokers", addr}, tt.args...), &stdout, &stderr)
			elapsed := time.Since(start)
			t.Logf("produce gave up after %v", elapsed)
			if code != 1 || !strings.Contains(stderr.String(), "tickstream produce: nothing was written") {
				t.Errorf("exit %d, stderr %q; want 1 and nothing was written", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "connection refused") {
				t.Errorf("stderr %q does not say why", stderr.String())
			}
			if elapsed > 5*time.Second {
				t.Errorf("produce took %v for a 1s run", elapsed)
			}
		})
	}
}

// TestProduceNothingWritten checks the exit status of a run that writes no
// record although the broker is up: an empty replay file.
func TestProduceNothingWritten(t *testing.T) {
	addr := produceCluster(t)
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"produce", "--brokers", addr, "--replay", empty}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "nothing was written: the input has no records") {
		t.Errorf("exit %d, stderr %q; want 1 and nothing was written", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "replayed 0 records") {
		t.Errorf("summary %q", stdout.String())
	}
}
