// Package web serves the tickstream browser dashboard.
//
// The dashboard is a TypeScript app (sources in this directory, built with Vite by
// `make web` into dist/app) that is embedded into the Go binary. dist/.keep is committed so
// that the embed pattern always matches and the package compiles before the first build;
// in that case Handler serves a plain page that says how to build the dashboard.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the built dashboard: index.html at "/" (revalidated on every load) and
// the content-hashed files under /assets/ with a one-year immutable cache lifetime.
// Mount it as the catch-all route; unknown paths get 404.
func Handler() http.Handler {
	app, err := fs.Sub(dist, "dist/app")
	if err != nil { // only on an invalid path, which "dist/app" is not
		panic(err)
	}
	return handler(app)
}

// asset is one file of the app, read once at start-up.
type asset struct {
	name  string // base name, for content-type detection by ServeContent
	data  []byte
	gz    []byte // gzip-compressed data, when that saves space
	etag  string
	ctype string
	cache string
}

// handler serves the app rooted at fsys (the directory that holds index.html).
func handler(fsys fs.FS) http.Handler {
	assets := map[string]*asset{}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		assets["/"+p] = newAsset(p, data)
		return nil
	})
	index, ok := assets["/index.html"]
	if !ok {
		return notBuilt()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a := assets[r.URL.Path]
		switch {
		case r.URL.Path == "/":
			a = index
		case r.URL.Path == "/index.html":
			// One canonical URL for the page, like http.FileServer.
			http.Redirect(w, r, "/"+querySuffix(r), http.StatusMovedPermanently)
			return
		}
		if a == nil {
			http.NotFound(w, r)
			return
		}
		a.serve(w, r)
	})
}

func newAsset(p string, data []byte) *asset {
	sum := sha256.Sum256(data)
	a := &asset{
		name:  path.Base(p),
		data:  data,
		etag:  `"` + hex.EncodeToString(sum[:12]) + `"`,
		ctype: mime.TypeByExtension(path.Ext(p)),
	}
	switch {
	case p == "index.html":
		a.cache = "no-cache"
	case strings.HasPrefix(p, "assets/"):
		// Vite puts a content hash in every file name under assets/.
		a.cache = "public, max-age=31536000, immutable"
	default:
		a.cache = "public, max-age=3600"
	}
	if compressible(a.ctype) && len(data) >= 1024 {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(data)
		_ = zw.Close()
		if b.Len() < len(data)*9/10 {
			a.gz = b.Bytes()
		}
	}
	return a
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") ||
		strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") ||
		strings.Contains(ctype, "svg")
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", a.cache)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.ctype != "" {
		h.Set("Content-Type", a.ctype)
	}
	data, etag := a.data, a.etag
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			data, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(data))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}

func querySuffix(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

const notBuiltPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>tickstream</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1d2330}code{background:#eef0f4;padding:.1rem .3rem;border-radius:3px}</style>
</head>
<body>
<h1>tickstream</h1>
<p>The dashboard is not built into this binary. Run <code>make web</code> (Node.js 20+ and npm), then rebuild the server.</p>
<p>The server's endpoints work without it:</p>
<ul>
<li><code>/ws</code> — WebSocket stream, protocol v1 (subprotocol <code>tickstream.v1</code>)</li>
<li><code>/api/v1/snapshot?symbols=AAPL,MSFT</code> — current state as JSON</li>
<li><code>/api/v1/symbols?prefix=AA&amp;limit=20</code> — symbol search</li>
<li><code>/metrics</code> — Prometheus metrics</li>
<li><code>/healthz</code> — liveness</li>
</ul>
</body>
</html>
`

// notBuilt serves the explanatory page at "/" and 404 elsewhere.
func notBuilt() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(notBuiltPage))
		}
	})
}
