package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// TestConfigSources checks the order of the sources of a setting: command
// line, then environment, then --config file, then the default.
func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", "# comment\n\nlisten = 0.0.0.0:9000\nmax-connections: 7\n--rate = \"12.5\"\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "defaults", want: map[string]string{"listen": "127.0.0.1:8080", "max-connections": "100"}},
		{name: "file", args: []string{"--config", good}, want: map[string]string{"listen": "0.0.0.0:9000", "max-connections": "7", "rate": "12.5"}},
		{name: "file from env", env: map[string]string{"TICKSTREAM_CONFIG": good}, want: map[string]string{"listen": "0.0.0.0:9000"}},
		{name: "env over file", args: []string{"--config", good}, env: map[string]string{"TICKSTREAM_MAX_CONNECTIONS": "9"}, want: map[string]string{"max-connections": "9", "listen": "0.0.0.0:9000"}},
		{name: "flag over env and file", args: []string{"--config", good, "--max-connections", "3"}, env: map[string]string{"TICKSTREAM_MAX_CONNECTIONS": "9"}, want: map[string]string{"max-connections": "3"}},
		{name: "unknown setting", args: []string{"--config", write("unknown.conf", "listen = x\nlisen = y\n")}, wantErr: `unknown.conf:2: unknown setting "lisen"`},
		{name: "bad value", args: []string{"--config", write("bad.conf", "max-connections = many\n")}, wantErr: `bad.conf:1: max-connections = "many"`},
		{name: "no separator", args: []string{"--config", write("sep.conf", "listen\n")}, wantErr: "sep.conf:1: want name = value"},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "missing.conf")}, wantErr: "--config: open"},
		{name: "bad env", env: map[string]string{"TICKSTREAM_MAX_CONNECTIONS": "x"}, wantErr: "TICKSTREAM_MAX_CONNECTIONS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.String("config", "", "")
			fs.String("listen", "127.0.0.1:8080", "")
			fs.Int("max-connections", 100, "")
			fs.Float64("rate", 1, "")
			err := parseServeFlags(fs, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				if got := fs.Lookup(name).Value.String(); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestServeInvalidSettings checks that a bad setting exits non-zero with a
// message naming it, before anything starts.
func TestServeInvalidSettings(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	badKey := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(badKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--max-connections", "0"}, "--max-connections"},
		{[]string{"--max-connections-per-ip", "-1"}, "--max-connections-per-ip"},
		{[]string{"--request-rate", "0"}, "--request-rate"},
		{[]string{"--request-burst", "0"}, "--request-burst"},
		{[]string{"--socket-send-buffer", "0"}, "--socket-send-buffer"},
		{[]string{"--shutdown-timeout", "0s"}, "--shutdown-timeout"},
		{[]string{"--auth", "maybe"}, "--auth"},
		{[]string{"--auth", "jwt"}, "--auth=jwt"},
		{[]string{"--auth", "none", "--jwt-secret", strings.Repeat("s", 32)}, "--auth=none"},
		{[]string{"--brokers", "127.0.0.1:1"}, "--auth"},
		{[]string{"--jwt-secret", "short"}, "--jwt-secret"},
		{[]string{"--jwt-public-key", badKey}, "--jwt-public-key"},
		{[]string{"--jwt-public-key", filepath.Join(dir, "missing.pem")}, "--jwt-public-key"},
		{[]string{"--listen-cert", badKey}, "--listen-cert and --listen-key"},
		{[]string{"--allowed-origins", "example.com"}, "--allowed-origins: want"},
		{[]string{"--max-connections", "lots"}, "-max-connections"},
		{[]string{"--bars", "7s:1m"}, `--bars "7s:1m": interval 7s: want a length that divides 24h`},
		{[]string{"--bars", "1m:30s"}, "want a whole number of 1m bars"},
		{[]string{"--bars", ""}, "--bars"},
		{[]string{"--bars-max-memory", "1B"}, "--bars-max-memory: want at least 48"},
		{[]string{"--bars-max-memory", "lots"}, "--bars-max-memory \"lots\": want a size in bytes"},
		{[]string{"--bars-max-memory", "-1MiB"}, "--bars-max-memory"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr strings.Builder
			code := run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0"}, tc.args...), io.Discard, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want non-zero naming %s", code, stderr.String(), tc.want)
			}
		})
	}
}

// TestServeHelp checks that --help documents the settings of this issue
// and where settings come from.
func TestServeHelp(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"serve", "--help"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q; want 0 and help on stdout", code, stderr.String())
	}
	for _, want := range []string{"TICKSTREAM_", "--config", "-auth", "-jwt-secret", "-jwt-public-key", "-allowed-origins", "-listen-cert",
		"-max-connections", "-max-connections-per-ip", "-request-rate", "-max-subscriptions", "-max-message", "-handshake-timeout",
		"-idle-timeout", "-socket-send-buffer", "-http-idle-timeout", "-max-http-connections", "-write-timeout", "-pprof", "-shutdown-timeout", "-log-format", "-tls-ca", "-sasl-mechanism", "tickstream token",
		"-bars intervals", "(default 1s:15m,1m:24h)", "or off", "-bars-max-memory bytes", "(default 256MiB)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeShutdown runs the demo with pprof, then cancels it as SIGTERM
// does: clients get 1001 and serve returns 0 within the shutdown timeout.
func TestServeShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, kafkatest.LeakIgnores...)
	pprofAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--symbols", "5", "--rate", "50", "--pprof", pprofAddr, "--shutdown-timeout", "20s"}, stdout, io.Discard)
	}()
	addrRE := regexp.MustCompile(`websocket ws://(\S+)/ws`)
	var addr string
	deadline := time.Now().Add(20 * time.Second)
	for addr == "" {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatal("serve did not start within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("pprof: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pprof: %s", resp.Status)
	}
	if resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("pprof is served on the public listener")
		}
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	conn, err := client.Dial(dctx, "ws://"+addr+"/ws", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30s of the signal")
	}
	<-conn.Done()
	if conn.CloseCode() != 1001 {
		t.Errorf("client closed with %d, want 1001", conn.CloseCode())
	}
}

// TestBarsFlags checks what --bars and --bars-max-memory set in the node's
// Config, and that they read back as given.
func TestBarsFlags(t *testing.T) {
	tests := []struct {
		bars, mem string
		want      string // --bars as read back
		off       bool
		maxBytes  int64
	}{
		{"1s:15m,1m:24h", "256MiB", "1s:15m,1m:24h", false, 256 << 20},
		{"60s:2h, 5s:10m", "2GiB", "5s:10m,1m:2h", false, 2 << 30},
		{"off", "1000", "off", true, 1000},
		{"1h:168h", "3KiB", "1h:168h", false, 3 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.bars, func(t *testing.T) {
			cfg := node.DefaultConfig()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.Var(barsFlag{&cfg}, "bars", "")
			fs.Var(bytesFlag{&cfg.Bars.MaxBytes}, "bars-max-memory", "")
			if err := fs.Parse([]string{"--bars", tt.bars, "--bars-max-memory", tt.mem}); err != nil {
				t.Fatal(err)
			}
			if got := fs.Lookup("bars").Value.String(); got != tt.want || cfg.BarsOff != tt.off {
				t.Errorf("--bars %q reads back %q (off %v), want %q (off %v)", tt.bars, got, cfg.BarsOff, tt.want, tt.off)
			}
			if cfg.Bars.MaxBytes != tt.maxBytes || fs.Lookup("bars-max-memory").Value.String() != tt.mem {
				t.Errorf("--bars-max-memory %s: %d bytes, reads back %s", tt.mem, cfg.Bars.MaxBytes, fs.Lookup("bars-max-memory").Value)
			}
		})
	}
}
