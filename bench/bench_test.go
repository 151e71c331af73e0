package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer starts an embedded broker and a server consuming it on
// 127.0.0.1, and returns the server's WebSocket URL and the broker.
func testServer(t *testing.T) (string, []string) {
	t.Helper()
	b, err := embedded.Start("ticks", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	srv, err := server.New(server.Config{
		Listen:  "127.0.0.1:0",
		Brokers: b.Addrs(),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "ws://" + srv.Addr() + "/ws", b.Addrs()
}

func TestRunEmbedded(t *testing.T) {
	url, brokers := testServer(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.Brokers = url, brokers
	cfg.Conns, cfg.Symbols, cfg.SymbolsPerConn = 3, 8, 8
	cfg.Rate, cfg.Warmup, cfg.Duration = 200, 500*time.Millisecond, 2*time.Second
	cfg.Interval = 250 * time.Millisecond
	var progress int
	cfg.Progress = func(Progress) { progress++ }
	res, err := Run(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteSummary(&b, res)
	t.Log("\n" + b.String())
	if !res.Passed {
		t.Fatalf("run failed: %v", res.Failures)
	}
	_ = http.StatusOK
	_ = fmt.Sprint
}
