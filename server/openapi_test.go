package server

import (
	"github.com/tickstream/tickstream/demo"

	"bytes"
	"cmp"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/node"
)

// TestOpenAPI validates the node's real responses against
// /api/v1/openapi.json: every documented operation is exercised, and a
// status, header or body the document does not describe fails the test.
func TestOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	// The document's server is relative ("/"): match the paths on any
	// host, since the test nodes listen on ports of their own.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	open := startServer(t, setup{Demo: demo.Config{Symbols: 30, Rate: 500}})
	auth, err := NewAuthenticator(AuthConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	closed := startServer(t, setup{Config: Config{Auth: auth}, Demo: demo.Config{Symbols: 30, Rate: 500}})
	grant := token(t, []string{"AAPL", "MSFT"}, time.Now().Add(time.Hour), nil)
	noBars := startServer(t, setup{Node: node.Config{BarsOff: true}, Demo: demo.Config{Symbols: 5, Rate: 50}})

	cases := []struct {
		name   string
		server *Server
		target string
		status int
	}{
		{"every snapshot", open, "/api/v1/snapshot", 200},
		{"named snapshots", open, "/api/v1/snapshot?symbols=AAPL,NEVERSEEN", 200},
		{"invalid symbol", open, "/api/v1/snapshot?symbols=" + url.QueryEscape("no spaces"), 400},
		{"symbols", open, "/api/v1/symbols?limit=5", 200},
		{"symbols by activity", open, "/api/v1/symbols?order=active&limit=5", 200},
		{"symbols by name", open, "/api/v1/symbols?order=name&prefix=A", 200},
		{"bad limit", open, "/api/v1/symbols?limit=0", 400},
		{"bad order", open, "/api/v1/symbols?order=loud", 400},
		{"no token", closed, "/api/v1/snapshot", 401},
		{"symbols without token", closed, "/api/v1/symbols", 401},
		{"granted", closed, "/api/v1/snapshot?symbols=AAPL&token=" + grant, 200},
		{"not granted", closed, "/api/v1/snapshot?symbols=TSLA&token=" + grant, 403},
		{"granted symbols", closed, "/api/v1/symbols?token=" + grant, 200},
		{"bars", open, "/api/v1/bars?symbol=AAPL&interval=1s", 200},
		{"bars as CSV", open, "/api/v1/bars?symbol=AAPL&interval=1m&format=csv", 200},
		{"bars of a range", open, "/api/v1/bars?symbol=AAPL&interval=1m&from=2020-01-01T00:00:00Z&to=4102444800000000&limit=5", 200},
		{"bars of an unknown interval", open, "/api/v1/bars?symbol=AAPL&interval=5m", 400},
		{"bars of an unknown symbol", open, "/api/v1/bars?symbol=NEVERSEEN&interval=1s", 404},
		{"bars without token", closed, "/api/v1/bars?symbol=AAPL&interval=1s", 401},
		{"bars not granted", closed, "/api/v1/bars?symbol=TSLA&interval=1s&token=" + grant, 403},
		{"bars granted", closed, "/api/v1/bars?symbol=AAPL&interval=1s&token=" + grant, 200},
		{"bars off", noBars, "/api/v1/bars?symbol=AAPL&interval=1s", 404},
		{"bar intervals", open, "/api/v1/bars/intervals", 200},
		{"bar intervals without token", closed, "/api/v1/bars/intervals", 401},
		{"bar intervals, bars off", noBars, "/api/v1/bars/intervals", 404},
		{"document", open, "/api/v1/openapi.json", 200},
		{"health", open, "/healthz", 200},
		{"ready", open, "/readyz", 200},
		{"metrics", open, "/metrics", 200},
	}
	covered := map[*openapi3.Operation]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+tc.server.Addr()+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("GET %s is not in openapi.json: %v", tc.target, err)
			}
			covered[route.Operation] = true
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: %s %s, want %d", tc.target, resp.Status, body, tc.status)
			}
			checkResponse(t, req, route, params, resp, body)
		})
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !covered[op] && path != "/ws" { // the socket is tested by the protocol tests
				t.Errorf("%s %s is documented but not checked here", method, path)
			}
		}
	}
}

func checkResponse(t *testing.T, req *http.Request, route *routers.Route, params map[string]string, resp *http.Response, body []byte) {
	t.Helper()
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		t.Errorf("GET %s: the response does not match openapi.json: %v\n%s", req.URL.RequestURI(), err, trim(body))
	}
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestSymbolsByActivity checks order=active against the seq of each
// symbol, once the feed has stopped: the most updated first, ties by name.
func TestSymbolsByActivity(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 40, Rate: 2000, Duration: time.Second}})
	base := "http://" + s.Addr()
	var seqs map[string]client.SymbolSnapshot
	waitUntil(t, 20*time.Second, "the feed to stop", func() bool {
		var a, b client.SnapshotResponse
		getJSON(t, base+"/api/v1/snapshot", &a)
		time.Sleep(300 * time.Millisecond)
		getJSON(t, base+"/api/v1/snapshot", &b)
		seqs = b.Snapshots
		return len(b.Snapshots) == 40 && reflect.DeepEqual(a, b)
	})
	var got client.SymbolsResponse
	getJSON(t, base+"/api/v1/symbols?order=active&limit=10", &got)
	if got.Total != 40 || len(got.Symbols) != 10 {
		t.Fatalf("order=active&limit=10: %d of %d symbols, want 10 of 40", len(got.Symbols), got.Total)
	}
	want := slices.Collect(maps.Keys(seqs))
	slices.SortFunc(want, func(a, b string) int {
		return cmp.Or(cmp.Compare(seqs[b].Seq, seqs[a].Seq), strings.Compare(a, b))
	})
	if !slices.Equal(got.Symbols, want[:10]) {
		t.Errorf("order=active: %v, want %v", got.Symbols, want[:10])
	}
}
