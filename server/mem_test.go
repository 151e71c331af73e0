package server

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// TestUpgradeReleasesRequest checks that an open WebSocket connection does
// not keep its upgrade request alive: its headers, URL and context would
// cost every connection about 1.3 KB for as long as it stays open.
func TestUpgradeReleasesRequest(t *testing.T) {
	s := startServer(t, setup{})
	var released atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			runtime.AddCleanup(r, func(*atomic.Bool) { released.Store(true) }, &released)
		}
		s.Handler().ServeHTTP(w, r)
	}))
	defer hs.Close()
	rc := dialWire(t, strings.TrimPrefix(hs.URL, "http://"), "", codec.Binary)
	rc.waitMsg("HELLO", 0, func(m *codec.Message) bool { return m.Op == codec.OpHello })
	deadline := time.Now().Add(5 * time.Second)
	for !released.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the upgrade request of an open connection was not collected within 5s")
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}
