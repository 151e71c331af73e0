//go:build kafka

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/kafkatest"
)

// TestOperatorPathKafka is the path of an operator with a SASL Kafka: produce
// creates the topic and feeds it, serve reads it with the same Kafka flags,
// and the API serves the produced symbols once /readyz says so.
func TestOperatorPathKafka(t *testing.T) {
	user, pass := kafkatest.SCRAMUser()
	topic := kafkaTopicName(t)
	kafkaArgs := []string{"--brokers", strings.Join(kafkatest.SASLBrokers(t), ","), "--topic", topic,
		"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", user, "--sasl-password", pass}
	var out, errOut bytes.Buffer
	if err := runProduce(t.Context(), append([]string{"--symbols", "7", "--rate", "50", "--duration", "3s"}, kafkaArgs...), &out, &errOut); err != nil {
		t.Fatalf("produce: %v; stderr:\n%s", err, &errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	stderr := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--auth", "none", "--start", "earliest"}, kafkaArgs...), stdout, stderr)
	}()
	defer func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("serve exited %d; stderr:\n%s", code, stderr.String())
		}
	}()
	addrRE := regexp.MustCompile(`dashboard (http://\S+)/ `)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start within 30s; stderr:\n%s", stderr.String())
		}
	}
	get := func(path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, _ := get("/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			_, body := get("/readyz")
			t.Fatalf("not ready within 30s: %s; stderr:\n%s", body, stderr.String())
		}
	}
	code, body := get("/api/v1/symbols?limit=100")
	var syms struct {
		Symbols []string `json:"symbols"`
	}
	if err := json.Unmarshal(body, &syms); code != http.StatusOK || err != nil || len(syms.Symbols) != 7 {
		t.Errorf("symbols: %d %s (%v), want the 7 produced", code, body, err)
	}
}
