package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The bodies of the server's REST API (docs/PROTOCOL.md, and the OpenAPI
// document at /api/v1/openapi.json). They live here, beside the WebSocket
// client, so that the server encodes and its clients decode one definition,
// and a client needs no part of the server to read them.

// SymbolSnapshot is one symbol's state in GET /api/v1/snapshot.
type SymbolSnapshot struct {
	Seq   uint64             `json:"seq"`
	State map[string]float64 `json:"state"`
}

// SnapshotResponse is the body of GET /api/v1/snapshot.
type SnapshotResponse struct {
	Snapshots map[string]SymbolSnapshot `json:"snapshots"`
}

// RESTBar is one bar in GET /api/v1/bars.
type RESTBar struct {
	T      int64   `json:"t"` // start, unix µs
	Open   float64 `json:"o"`
	High   float64 `json:"h"`
	Low    float64 `json:"l"`
	Close  float64 `json:"c"`
	Volume float64 `json:"v"`
	Trades uint32  `json:"n"`
}

// BarsResponse is the body of GET /api/v1/bars.
type BarsResponse struct {
	Symbol   string `json:"symbol"`
	Interval string `json:"interval"`
	// Seq is the symbol's version the bars are complete up to: every
	// change up to it is in them (0 when the symbol has no bar yet).
	Seq  uint64    `json:"seq"`
	Bars []RESTBar `json:"bars"`
}

// BarInterval is one entry of GET /api/v1/bars/intervals.
type BarInterval struct {
	Name    string `json:"name"`
	Seconds int64  `json:"seconds"`
	Keep    int    `json:"keep"` // bars a symbol keeps
}

// SymbolsResponse is the body of GET /api/v1/symbols.
type SymbolsResponse struct {
	Symbols []string `json:"symbols"`
	Total   int      `json:"total"`
}

// ReadyResponse is the body of GET /readyz.
type ReadyResponse struct {
	Ready      bool           `json:"ready"`
	CaughtUp   bool           `json:"caughtUp"`
	Live       bool           `json:"live"`
	Status     string         `json:"status"`
	Detail     string         `json:"detail,omitempty"`
	Partitions []PartitionLag `json:"partitions"`
}

// PartitionLag is one partition's ingest progress in GET /readyz.
type PartitionLag struct {
	Partition  int     `json:"partition"`
	Offset     int64   `json:"offset"`
	End        int64   `json:"end"`
	Lag        int64   `json:"lag"`
	LagSeconds float64 `json:"lagSeconds"`
}

// RESTBase returns the base URL of the REST API of the server whose
// WebSocket endpoint is wsURL: ws becomes http, wss https, and the path and
// query are dropped.
func RESTBase(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("client: %s: scheme %q is not ws, wss, http or https", wsURL, u.Scheme)
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	return u.String(), nil
}

// FetchSnapshot reads the state of syms (every symbol the caller may see
// when syms is empty) with GET /api/v1/snapshot from the server at base, a
// URL such as RESTBase returns. A status other than 200 is an error that
// carries the server's reason.
func FetchSnapshot(ctx context.Context, hc *http.Client, base string, syms []string) (*SnapshotResponse, error) {
	u := base + "/api/v1/snapshot"
	if len(syms) > 0 {
		u += "?" + url.Values{"symbols": {strings.Join(syms, ",")}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("client: snapshot: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var reason struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&reason)
		return nil, fmt.Errorf("client: snapshot: GET %s: HTTP %d %s", req.URL.Path, resp.StatusCode, reason.Error)
	}
	var body SnapshotResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("client: snapshot: GET %s: %w", req.URL.Path, err)
	}
	return &body, nil
}
