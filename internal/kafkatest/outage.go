package kafkatest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StopBroker stops the test broker without losing its data (kafka.sh stop),
// for outage tests, and makes sure it runs again when the test ends even
// if the test fails first. StartBroker brings it back.
//
// The broker is shared by every kafka-tagged test: make test-kafka runs
// the packages one at a time (-p 1) so that an outage hits only its test.
func StopBroker(t testing.TB) {
	t.Helper()
	kafkaSh(t, "stop")
	t.Cleanup(func() { kafkaSh(t, "start") })
}

// KillBroker kills the test broker's JVM with SIGKILL (kafka.sh kill), as a
// crash would: no controlled shutdown. Its data stays, StartBroker brings it
// back, and it runs again when the test ends even if the test fails first.
func KillBroker(t testing.TB) {
	t.Helper()
	kafkaSh(t, "kill")
	t.Cleanup(func() { kafkaSh(t, "start") })
}

// StartBroker starts the broker StopBroker stopped or KillBroker killed, on
// the same data, and waits until it answers.
func StartBroker(t testing.TB) {
	t.Helper()
	kafkaSh(t, "start")
}

// RestartClusterBroker stops broker n (1 to 3) of the test cluster
// gracefully and starts it again (kafka.sh cluster-restart), as a rolling
// restart does, and waits until it answers.
func RestartClusterBroker(t testing.TB, n int) {
	t.Helper()
	kafkaSh(t, "cluster-restart", strconv.Itoa(n))
}

// kafkaSh runs kafka.sh with the ports of the broker, or of the cluster,
// under test.
func kafkaSh(t testing.TB, args ...string) {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("kafkatest: cannot locate testenv/kafka/kafka.sh")
	}
	script := filepath.Join(filepath.Dir(self), "..", "..", "testenv", "kafka", "kafka.sh")
	env := os.Environ()
	// The cluster's three brokers take the single broker's three ports.
	ports := []string{"", "", ""}
	if c := fromEnvQuiet(EnvClusterBrokers); len(c) == 3 {
		ports = []string{port(c[:1]), port(c[1:2]), port(c[2:])}
	} else {
		// kafka.sh start waits for every listener: it must know them all.
		ports = []string{port(Brokers(t)), port(fromEnvQuiet(EnvSASLBrokers)), port(fromEnvQuiet(EnvSSLBrokers))}
	}
	for i, name := range []string{"KAFKA_PORT", "KAFKA_SASL_PORT", "KAFKA_SSL_PORT"} {
		if ports[i] != "" {
			env = append(env, name+"="+ports[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, script, args...)
	c.Env = env
	out, err := c.CombinedOutput()
	cmd := strings.Join(args, " ")
	if err != nil {
		t.Fatalf("kafkatest: kafka.sh %s (Kafka %s): %v\n%s", cmd, versionOrUnknown(), err, out)
	}
	t.Logf("kafka.sh %s: %s", cmd, strings.TrimSpace(string(out)))
}

func port(addrs []string) string {
	if len(addrs) == 0 {
		return ""
	}
	_, p, err := net.SplitHostPort(addrs[0])
	if err != nil {
		return ""
	}
	return p
}

// fromEnvQuiet returns the addresses in the environment variable name.
func fromEnvQuiet(name string) []string {
	var addrs []string
	for _, a := range strings.Split(os.Getenv(name), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}
