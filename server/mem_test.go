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

func TestConnSession(t *testing.T) {
	var s connSession
	if _, ok := s.Load("c"); ok || s.Len() != 0 {
		t.Fatal("a new session is not empty")
	}
	steps := []struct {
		op, key string
		value   int
		want    map[string]int
	}{
		{"store", "c", 1, map[string]int{"c": 1}},
		{"store", "d", 2, map[string]int{"c": 1, "d": 2}},
		{"store", "c", 3, map[string]int{"c": 3, "d": 2}},
		{"delete", "x", 0, map[string]int{"c": 3, "d": 2}},
		{"delete", "c", 0, map[string]int{"d": 2}},
		{"delete", "d", 0, map[string]int{}},
	}
	for _, st := range steps {
		if st.op == "store" {
			s.Store(st.key, st.value)
		} else {
			s.Delete(st.key)
		}
		if s.Len() != len(st.want) {
			t.Fatalf("after %s %s: Len %d, want %d", st.op, st.key, s.Len(), len(st.want))
		}
		got := map[string]int{}
		s.Range(func(k string, v any) bool {
			// Range must let f use the storage.
			if w, ok := s.Load(k); !ok || w != v {
				t.Errorf("Load(%q) in Range = %v, %t", k, w, ok)
			}
			got[k] = v.(int)
			return true
		})
		for k, v := range st.want {
			if got[k] != v {
				t.Fatalf("after %s %s: %q is %d, want %d (all: %v)", st.op, st.key, k, got[k], v, got)
			}
			if w, ok := s.Load(k); !ok || w != v {
				t.Fatalf("after %s %s: Load(%q) = %v, %t, want %d", st.op, st.key, k, w, ok, v)
			}
		}
	}
	s.Store("a", 1)
	s.Store("b", 2)
	n := 0
	s.Range(func(string, any) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Range went on after f returned false: %d calls", n)
	}
}
