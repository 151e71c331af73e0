package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/demo"
)

// TestShutdownSendsGoingAway shuts a server down under 100 connections:
// every client gets the close frame 1001, none sees its connection drop
// (the shutdown once closed the sockets while their close frames were
// still being written).
func TestShutdownSendsGoingAway(t *testing.T) {
	n := startNode(t, setup{Demo: demo.Config{Symbols: 20, Rate: 200}})
	waitReady(t, n.Server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conns := make([]*client.Conn, 100)
	for i := range conns {
		c, err := client.Dial(ctx, "ws://"+n.Addr()+"/ws", client.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns[i] = c
	}
	n.stop()
	codes := map[int]int{}
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("a connection outlived the shutdown")
		}
		codes[c.CloseCode()]++
	}
	if codes[1001] != len(conns) {
		t.Errorf("close codes %v: want all %d 1001", codes, len(conns))
	}
}
