package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRESTBase(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "ws://127.0.0.1:8080/ws", want: "http://127.0.0.1:8080"},
		{in: "wss://feed.example.com/ws?symbols=AAPL", want: "https://feed.example.com"},
		{in: "http://localhost:8080/", want: "http://localhost:8080"},
		{in: "ftp://example.com/ws", err: `scheme "ftp"`},
		{in: "ws://[::1", err: "missing ']'"},
	} {
		got, err := RESTBase(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("RESTBase(%q): error %v, want one with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("RESTBase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFetchSnapshot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("symbols") {
		case "AAPL,MSFT":
			_, _ = w.Write([]byte(`{"snapshots":{"AAPL":{"seq":7,"state":{"bid":1.5}},"MSFT":{"seq":0,"state":{}}}}`))
		case "SECRET":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"not entitled to SECRET"}`))
		default:
			_, _ = w.Write([]byte(`{"snapshots":`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	got, err := FetchSnapshot(ctx, srv.Client(), srv.URL, []string{"AAPL", "MSFT"})
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Snapshots["AAPL"]; a.Seq != 7 || a.State["bid"] != 1.5 || len(got.Snapshots) != 2 {
		t.Errorf("got %+v", got)
	}
	if _, err := FetchSnapshot(ctx, srv.Client(), srv.URL, []string{"SECRET"}); err == nil || !strings.Contains(err.Error(), "HTTP 403 not entitled to SECRET") {
		t.Errorf("refused request: error %v, want the status and the server's reason", err)
	}
	if _, err := FetchSnapshot(ctx, srv.Client(), srv.URL, nil); err == nil {
		t.Error("truncated body: no error")
	}
}
