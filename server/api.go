package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /api/v1/snapshot", s.authorize(s.serveSnapshot))
	mux.HandleFunc("GET /api/v1/symbols", s.authorize(s.serveSymbols))
	mux.HandleFunc("GET /api/v1/bars", s.authorize(s.serveBars))
	mux.HandleFunc("GET /api/v1/bars/intervals", s.authorize(s.serveBarIntervals))
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	reg := prometheus.NewRegistry()
	// The scheduler's metrics add go_sched_latencies_seconds, the time
	// goroutines wait runnable for a CPU: on a node short of CPU, the
	// share of a message's age that no queue of the engine shows.
	reg.MustRegister(newCollector(s), collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if s.cfg.DemoFeed != nil {
		mux.HandleFunc("POST /api/v1/demo/feed", s.serveDemoFeed)
	}
	if s.cfg.Web != nil {
		mux.Handle("/", s.cfg.Web)
	} else {
		mux.HandleFunc("GET /{$}", serveIndex)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	var names []string
	if raw := r.URL.Query().Get("symbols"); raw != "" {
		names = strings.Split(raw, ",")
		if denied := grantOf(r).denied(names); len(denied) > 0 {
			writeError(w, http.StatusForbidden, "not entitled to "+strings.Join(denied, ", "))
			return
		}
		if len(names) > codec.MaxSymbolsPerCommand {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("more than %d symbols", codec.MaxSymbolsPerCommand))
			return
		}
		for _, n := range names {
			if !codec.ValidSymbol([]byte(n)) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid symbol %q", n))
				return
			}
		}
	} else {
		names, _ = s.node.Store().Names("", 0)
		names = grantOf(r).filter(names)
	}
	resp := client.SnapshotResponse{Snapshots: make(map[string]client.SymbolSnapshot, len(names))}
	for _, n := range names {
		snap := client.SymbolSnapshot{State: map[string]float64{}}
		if sym := s.node.Store().Lookup([]byte(n)); sym != nil {
			st := sym.Load()
			snap.Seq = st.Seq
			for f := 0; f < codec.NumFields; f++ {
				if st.Mask.Has(f) {
					snap.State[codec.FieldNames[f]] = st.Values[f]
				}
			}
		}
		resp.Snapshots[n] = snap
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) serveSymbols(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit: want a number from 1 to 10000")
			return
		}
		limit = n
	}
	order := q.Get("order")
	if order != "" && order != "name" && order != "active" {
		writeError(w, http.StatusBadRequest, "order: want name or active")
		return
	}
	// The limit applies to what the client may see (every symbol when
	// authentication is off).
	all, _ := s.node.Store().Names(q.Get("prefix"), 0)
	all = grantOf(r).filter(all)
	if order == "active" {
		s.sortByActivity(all)
	}
	names, total := all[:min(limit, len(all))], len(all)
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, client.SymbolsResponse{Symbols: names, Total: total})
}

// sortByActivity orders names by the updates the node has applied to each
// (its seq), most first, ties by name: a dashboard's default watchlist is
// then the symbols that move.
func (s *Server) sortByActivity(names []string) {
	seq := make(map[string]uint64, len(names))
	for _, n := range names {
		if sym := s.node.Store().Lookup([]byte(n)); sym != nil {
			seq[n] = sym.Load().Seq
		}
	}
	sort.SliceStable(names, func(i, j int) bool { return seq[names[i]] > seq[names[j]] })
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	state, detail := s.node.Hub().Status()
	resp := client.ReadyResponse{
		CaughtUp:   s.node.Ingest().Ready(),
		Live:       s.node.Ingest().Live(),
		Status:     state,
		Detail:     detail,
		Partitions: []client.PartitionLag{},
	}
	resp.Ready = resp.CaughtUp && resp.Live
	for _, p := range s.node.Ingest().Stats().Partitions {
		resp.Partitions = append(resp.Partitions, client.PartitionLag{
			Partition: p.Partition, Offset: p.Next, End: p.End, Lag: p.Lag, LagSeconds: p.LagSeconds,
		})
	}
	code := http.StatusOK
	if !resp.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, resp)
}

func (s *Server) serveDemoFeed(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("state") {
	case "down":
		s.cfg.DemoFeed.SetDown(true)
	case "up":
		s.cfg.DemoFeed.SetDown(false)
	default:
		writeError(w, http.StatusBadRequest, "state: want down or up")
		return
	}
	s.log.Warn("demo: embedded broker outage switch", "down", s.cfg.DemoFeed.Down())
	writeJSON(w, http.StatusOK, map[string]bool{"down": s.cfg.DemoFeed.Down()})
}

func serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><title>tickstream</title>
<h1>tickstream</h1>
<p>The dashboard is not built into this binary: run <code>make web</code> (or <code>make run</code>).</p>
<ul>
<li><code>/ws</code> — WebSocket, protocol v1 (subprotocols tickstream.v1, tickstream.v1.json)</li>
<li><a href="/api/v1/symbols">/api/v1/symbols</a>?prefix=&amp;limit=&amp;order=name|active — known symbols</li>
<li><a href="/api/v1/snapshot?symbols=AAPL,MSFT">/api/v1/snapshot</a>?symbols=A,B — current state</li>
<li><a href="/api/v1/openapi.json">/api/v1/openapi.json</a> — this API, as an OpenAPI 3 document</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li>
</ul>
`)
}
