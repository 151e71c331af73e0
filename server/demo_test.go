package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/node"
)

// TestDemoFeedSwitch drives the outage switch of POST /api/v1/demo/feed:
// served only when the edge has a DemoFeed, it takes the demo's broker
// down and up, and the node sees the feed go stale and live again.
func TestDemoFeedSwitch(t *testing.T) {
	without := startServer(t, setup{Demo: demo.Config{Symbols: 5, Rate: 50}})
	if code := post(t, "http://"+without.Addr()+"/api/v1/demo/feed?state=down"); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Errorf("without a DemoFeed: HTTP %d, want no such route", code)
	}

	f := startFeed(t, demo.Config{Symbols: 5, Rate: 50})
	s := startServer(t, setup{Config: Config{DemoFeed: f}, Node: node.Config{Brokers: f.Brokers()}})
	base := "http://" + s.Addr() + "/api/v1/demo/feed?state="
	if code := post(t, base+"sideways"); code != http.StatusBadRequest {
		t.Errorf("state=sideways: HTTP %d, want 400", code)
	}
	if code := post(t, base+"down"); code != http.StatusOK || !f.Down() {
		t.Fatalf("state=down: HTTP %d, broker down %v", code, f.Down())
	}
	hub := s.Node().Hub()
	waitUntil(t, 20*time.Second, "the feed stale", func() bool { state, _ := hub.Status(); return state == codec.StatusStale })
	if code := post(t, base+"up"); code != http.StatusOK || f.Down() {
		t.Fatalf("state=up: HTTP %d, broker down %v", code, f.Down())
	}
	waitUntil(t, 30*time.Second, "the feed live", func() bool { state, _ := hub.Status(); return state == codec.StatusLive })
}

func post(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
