//go:build kafka

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
	"github.com/tickstream/tickstream/snapshot"
)

// served fetches every symbol's state from a node's REST API.
func served(t *testing.T, base string) map[string]snapshot.State {
	t.Helper()
	var resp client.SnapshotResponse
	getJSON(t, base+"/api/v1/snapshot", &resp)
	out := make(map[string]snapshot.State, len(resp.Snapshots))
	for name, s := range resp.Snapshots {
		st := snapshot.State{Seq: s.Seq}
		for field, v := range s.State {
			f, ok := codec.FieldIndex(field)
			if !ok {
				t.Fatalf("%s: unknown field %q", name, field)
			}
			st.Mask |= 1 << uint(f)
			st.Values[f] = v
		}
		out[name] = st
	}
	return out
}

// readiness returns a node's /readyz status code and body.
func readiness(base string) (int, client.ReadyResponse, error) {
	var r client.ReadyResponse
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0, r, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r, err
}

// consumed is the sum of a node's next offsets: the records it has read,
// on a topic whose partitions start at offset 0.
func consumed(base string) int64 {
	_, r, err := readiness(base)
	if err != nil {
		return -1
	}
	var n int64
	for _, p := range r.Partitions {
		n += p.Offset
	}
	return n
}

// TestKafkaSnapshotEqualsLog produces a known log of 120,000 updates over
// six partitions, MessagePack and JSON mixed with bad records, and checks
// that the snapshot the node serves equals the one computed from the log.
func TestKafkaSnapshotEqualsLog(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, 6)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 31, Records: 120_000, Symbols: 1000, JSONEvery: 5, BadEvery: 1009})
	n := startNode(t, setup{Node: node.Config{Brokers: brokers, Topic: topic}})
	kafkatest.Produce(t, brokers, topic, nil, log)
	base := "http://" + n.Addr()
	waitUntil(t, 2*time.Minute, "every record read", func() bool { return consumed(base) == int64(len(log)) })
	want, rejected := kafkatest.Replay(log)
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Fatal(d)
	}
	if got := n.node.Ingest().Stats().Rejected; len(got) != len(rejected) {
		t.Fatalf("rejected %v, want %v", got, rejected)
	}
}

// tickstream is the binary under test, built once.
var tickstream = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tickstream-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tickstream")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/tickstream").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, out)
	}
	return bin, nil
})

var servingLine = regexp.MustCompile(`dashboard http://([0-9.:]+)/`)

// startBinary runs `tickstream serve` with args and the environment

// producePaced writes msgs to topic in batches of 1000, 20 ms apart, so that
// a node reads them while they stream in; the channel gets the outcome.
func producePaced(brokers []string, topic string, msgs []kafka.Message) <-chan error {
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < len(msgs); i += 1000 {
			if err := kafkatest.ProduceErr(brokers, topic, nil, msgs[i:min(i+1000, len(msgs))]); err != nil {
				produced <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		produced <- nil
	}()
	return produced
}

// killMidStream SIGKILLs the node serving base once it has read at least
// n records, and returns how many it had read; the test fails if that was
// already all of the log's total (not a kill mid-stream).
func killMidStream(t *testing.T, node *exec.Cmd, base string, n int64, total int) int64 {
	t.Helper()
	waitUntil(t, time.Minute, "more of the log read", func() bool { return consumed(base) >= n })
	killedAt := consumed(base)
	if err := node.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = node.Wait()
	if killedAt >= int64(total) {
		t.Fatal("the node had read the whole log when killed: not a kill mid-stream")
	}
	return killedAt
}

// variables env, and returns its process and base URL once it serves.
func startBinary(t *testing.T, logs *os.File, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := tickstream()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--auth", "none"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				lines <- m[1]
			}
		}
	}()
	select {
	case addr := <-lines:
		return cmd, "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatalf("tickstream serve did not start within 30s; log %s", logs.Name())
		return nil, ""
	}
}

// TestKafkaKill9 kills `tickstream serve` with SIGKILL while the log
// streams in, restarts it from its checkpoint and checks that the state
// equals the one computed from the whole log: nothing lost, nothing
// applied twice (seq included).
func TestKafkaKill9(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, 4)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 32, Records: 100_000, Symbols: 500, JSONEvery: 7, BadEvery: 997})
	dir := t.TempDir()
	logs, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	args := []string{"--brokers", strings.Join(brokers, ","), "--topic", topic,
		"--checkpoint", filepath.Join(dir, "node.ckpt"), "--checkpoint-interval", "200ms"}

	first, base := startBinary(t, logs, nil, args...)
	const head = 40_000
	kafkatest.Produce(t, brokers, topic, nil, log[:head])
	waitUntil(t, time.Minute, "the head of the log read", func() bool { return consumed(base) == head })
	// The rest streams in paced, so that the kill lands while records
	// are being applied and checkpoints taken.
	produced := producePaced(brokers, topic, log[head:])
	killedAt := killMidStream(t, first, base, head+5000, len(log))

	_, base = startBinary(t, logs, nil, args...)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Minute, "every record read", func() bool { return consumed(base) == int64(len(log)) })
	want, _ := kafkatest.Replay(log)
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Fatal(d)
	}
	out, _ := os.ReadFile(logs.Name())
	if !strings.Contains(string(out), "checkpoint: warm start") {
		t.Fatalf("the restarted node did not start from its checkpoint:\n%s", out)
	}
	t.Logf("killed after reading about %d of %d records", killedAt, len(log))
}

// TestKafkaBrokerOutage stops the real broker while a client is connected:
// the node keeps serving the last snapshot, sends STATUS stale and reports
// not ready; once the broker is back it resumes from the next offset and
// sends STATUS live, and the client stayed connected throughout.
func TestKafkaBrokerOutage(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, 3)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 33, Records: 10_000, Symbols: 100})
	first, second := log[:5000], log[5000:]
	n := startNode(t, setup{Node: node.Config{Brokers: brokers, Topic: topic}})
	base := "http://" + n.Addr()
	kafkatest.Produce(t, brokers, topic, nil, first)
	waitUntil(t, time.Minute, "the first half read", func() bool { return consumed(base) == int64(len(first)) })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+n.Addr()+"/ws?symbols=SYM000,SYM001,SYM002", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	status := func(want string) func() bool {
		return func() bool { s, _ := c.Book().FeedStatus(); return s == want }
	}

	kafkatest.StopBroker(t)
	waitUntil(t, time.Minute, "STATUS stale", status(codec.StatusStale))
	code, ready, err := readiness(base)
	if err != nil || code != http.StatusServiceUnavailable || ready.Live {
		t.Fatalf("/readyz during the outage: %d %+v %v; want 503, not live", code, ready, err)
	}
	want, _ := kafkatest.Replay(first)
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Fatalf("snapshot during the outage: %s", d)
	}

	kafkatest.StartBroker(t)
	waitUntil(t, 2*time.Minute, "STATUS live", status(codec.StatusLive))
	kafkatest.Produce(t, brokers, topic, nil, second)
	waitUntil(t, time.Minute, "every record read", func() bool { return consumed(base) == int64(len(log)) })
	waitUntil(t, 30*time.Second, "ready", func() bool { code, _, _ := readiness(base); return code == http.StatusOK })
	want, _ = kafkatest.Replay(log)
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Fatal(d)
	}
	select {
	case <-c.Done():
		t.Fatalf("the client was disconnected: %d %s", c.CloseCode(), c.CloseReason())
	default:
	}
}

// TestKafkaServeSCRAM runs `tickstream serve` against the broker's SASL
// listener with the security flags, the password coming from the
// environment: the node reads the whole log.
func TestKafkaServeSCRAM(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	saslBrokers := kafkatest.SASLBrokers(t)
	user, pass := kafkatest.SCRAMUser()
	topic := kafkatest.CreateTopic(t, brokers, 2)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 34, Records: 5000, Symbols: 100})
	kafkatest.Produce(t, brokers, topic, nil, log)
	logs, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	_, base := startBinary(t, logs, []string{"TICKSTREAM_SASL_PASSWORD=" + pass},
		"--brokers", strings.Join(saslBrokers, ","), "--topic", topic,
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", user)
	waitUntil(t, time.Minute, "every record read", func() bool { return consumed(base) == int64(len(log)) })
	want, _ := kafkatest.Replay(log)
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Fatal(d)
	}
}
