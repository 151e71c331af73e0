package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandLine checks the conventions every command follows: help on
// stdout with status 0; a bad command line refused with status 2, in one
// line naming the problem and one pointing to --help, on stderr; no flag
// after a stray argument silently ignored.
func TestCommandLine(t *testing.T) {
	for _, env := range []string{"TICKSTREAM_BROKERS", "TICKSTREAM_HEARTBEAT", "TICKSTREAM_JWT_SECRET", "TICKSTREAM_CONFIG"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	conf := filepath.Join(t.TempDir(), "t.conf")
	if err := os.WriteFile(conf, []byte("heartbeat = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string   // in stdout; "" for none at all
		stderr []string // in stderr, in this order, each line
	}{
		{name: "no command", code: 2, stderr: []string{"usage: tickstream COMMAND"}},
		{name: "help", args: []string{"--help"}, stdout: "usage: tickstream COMMAND"},
		{name: "-h", args: []string{"-h"}, stdout: "  token "},
		{name: "help of a command", args: []string{"help", "produce"}, stdout: "usage: tickstream produce"},
		{name: "command help", args: []string{"serve", "-h"}, stdout: "usage: tickstream serve"},
		{name: "command --help", args: []string{"watch", "--help"}, stdout: "usage: tickstream watch"},
		{name: "token help", args: []string{"token", "--help"}, stdout: "--new-secret"},
		{name: "version", args: []string{"--version"}, stdout: "tickstream "},
		{name: "unknown command", args: []string{"serv"}, code: 2,
			stderr: []string{`tickstream: unknown command "serv"`, "see 'tickstream --help'"}},
		{name: "stray argument", args: []string{"serve", "extra-arg", "--listen", "127.0.0.1:0"}, code: 2,
			stderr: []string{`tickstream serve: unexpected argument "extra-arg"`, "see 'tickstream serve --help'"}},
		{name: "unknown flag", args: []string{"serve", "--nope"}, code: 2,
			stderr: []string{"tickstream serve: unknown flag --nope", "see 'tickstream serve --help'"}},
		{name: "missing value", args: []string{"watch", "AAPL", "--url"}, code: 2,
			stderr: []string{"tickstream watch: flag --url needs a value", "see 'tickstream watch --help'"}},
		{name: "duration without unit", args: []string{"serve", "--heartbeat", "5"}, code: 2,
			stderr: []string{`tickstream serve: --heartbeat "5": a duration needs a unit, e.g. 5s or 5ms`, "see 'tickstream serve --help'"}},
		{name: "bad duration", args: []string{"produce", "--brokers", "127.0.0.1:1", "--duration", "soon"}, code: 2,
			stderr: []string{`tickstream produce: --duration "soon": want a duration, e.g. 5s, 250ms or 1m30s`, "see 'tickstream produce --help'"}},
		{name: "duration in the environment", args: []string{"serve"}, env: map[string]string{"TICKSTREAM_HEARTBEAT": "5"}, code: 2,
			stderr: []string{`tickstream serve: TICKSTREAM_HEARTBEAT="5" (--heartbeat): a duration needs a unit, e.g. 5s`, "see 'tickstream serve --help'"}},
		{name: "duration in the config file", args: []string{"serve", "--config", conf}, code: 2,
			stderr: []string{`t.conf:1: heartbeat = "5": a duration needs a unit, e.g. 5s`, "see 'tickstream serve --help'"}},
		{name: "bad number", args: []string{"serve", "--max-connections", "lots"}, code: 2,
			stderr: []string{`tickstream serve: --max-connections "lots": want a whole number`, "see 'tickstream serve --help'"}},
		{name: "bad float", args: []string{"produce", "--rate", "fast"}, code: 2,
			stderr: []string{`tickstream produce: --rate "fast": want a number`, "see 'tickstream produce --help'"}},
		{name: "bad bool", args: []string{"serve", "--compression=maybe"}, code: 2,
			stderr: []string{`tickstream serve: --compression "maybe": want true or false`, "see 'tickstream serve --help'"}},
		{name: "listen on a bare port", args: []string{"serve", "--listen", "8080"}, code: 2,
			stderr: []string{`tickstream serve: --listen "8080": want host:port: ":8080" for every interface, "127.0.0.1:8080" for this machine only`, "see 'tickstream serve --help'"}},
		{name: "listen on nonsense", args: []string{"serve", "--listen", "localhost"}, code: 2,
			stderr: []string{`tickstream serve: --listen "localhost": want host:port`}},
		{name: "a bad setting", args: []string{"serve", "--max-connections", "0"}, code: 2,
			stderr: []string{"tickstream serve: --max-connections: want at least 1", "see 'tickstream serve --help'"}},
		{name: "a history too long", args: []string{"serve", "--sim-history", "200h"}, code: 2,
			stderr: []string{"tickstream serve: --sim-history: want 0 to 168h", "see 'tickstream serve --help'"}},
		{name: "TLS without brokers", args: []string{"serve", "--tls"}, code: 2,
			stderr: []string{"tickstream serve: --tls and --sasl-* apply to --brokers"}},
		{name: "produce stray argument", args: []string{"produce", "ticks", "--brokers", "127.0.0.1:1"}, code: 2,
			stderr: []string{`tickstream produce: unexpected argument "ticks"`}},
		{name: "token without syms", args: []string{"token", "--jwt-secret", strings.Repeat("s", 32)}, code: 2,
			stderr: []string{"tickstream token: --syms is required", "see 'tickstream token --help'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr strings.Builder
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr.String())
			}
			switch {
			case tt.stdout == "" && stdout.Len() != 0:
				t.Errorf("stdout %q, want nothing", stdout.String())
			case !strings.Contains(stdout.String(), tt.stdout):
				t.Errorf("stdout %q, want %q in it", stdout.String(), tt.stdout)
			}
			if tt.stdout != "" && stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			if tt.code == 0 {
				return
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(tt.stderr) > 1 && len(lines) != len(tt.stderr) {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), len(tt.stderr), stderr.String())
			}
			for i, want := range tt.stderr {
				if i >= len(lines) || !strings.Contains(lines[i], want) {
					t.Errorf("stderr line %d: want %q in it; stderr:\n%s", i+1, want, stderr.String())
				}
			}
		})
	}
}

// TestVersion checks that --version reports the version the Makefile sets,
// and without one still a line naming the toolchain.
func TestVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	for _, tc := range []struct{ set, want string }{{"v1.4.0-3-gabc1234-dirty", "tickstream v1.4.0-3-gabc1234-dirty (go"}, {"", "tickstream "}} {
		version = tc.set
		var stdout strings.Builder
		if code := run(context.Background(), []string{"--version"}, &stdout, &strings.Builder{}); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if !strings.HasPrefix(stdout.String(), tc.want) || strings.Count(stdout.String(), "\n") != 1 {
			t.Errorf("--version with version=%q: %q, want one line starting %q", tc.set, stdout.String(), tc.want)
		}
	}
}
