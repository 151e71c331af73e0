package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

var builtFS = fstest.MapFS{
	"index.html":              {Data: []byte(`<!doctype html><title>tickstream</title><script type="module" src="/assets/index-AbC123.js"></script>`)},
	"assets/index-AbC123.js":  {Data: []byte("console.log(1);" + strings.Repeat("/* padding to pass the gzip threshold */", 60))},
	"assets/index-Def456.css": {Data: []byte("body{color:red}")},
	"favicon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	".keep":                   {Data: nil},
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name         string
		fsys         fstest.MapFS
		method       string
		path         string
		header       map[string]string
		wantStatus   int
		wantBody     string // substring
		wantNoBody   bool
		wantHeader   map[string]string
		wantGzipBody string // substring of the gunzipped body
	}{
		{
			name: "index at root, revalidated", fsys: builtFS, path: "/",
			wantStatus: 200, wantBody: "/assets/index-AbC123.js",
			wantHeader: map[string]string{"Cache-Control": "no-cache", "Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff"},
		},
		{
			name: "root with a query string", fsys: builtFS, path: "/?symbols=AAPL,MSFT",
			wantStatus: 200, wantBody: "<title>tickstream</title>",
		},
		{
			name: "index.html redirects to root keeping the query", fsys: builtFS, path: "/index.html?symbols=A",
			wantStatus: 301, wantHeader: map[string]string{"Location": "/?symbols=A"},
		},
		{
			name: "hashed asset is immutable", fsys: builtFS, path: "/assets/index-Def456.css",
			wantStatus: 200, wantBody: "body{color:red}",
			wantHeader: map[string]string{"Cache-Control": "public, max-age=31536000, immutable", "Content-Type": "text/css; charset=utf-8"},
		},
		{
			name: "large script is gzipped when accepted", fsys: builtFS, path: "/assets/index-AbC123.js",
			header:     map[string]string{"Accept-Encoding": "br, gzip;q=0.8"},
			wantStatus: 200, wantGzipBody: "console.log(1);",
			wantHeader: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding", "Content-Type": "text/javascript; charset=utf-8"},
		},
		{
			name: "gzip refused with q=0", fsys: builtFS, path: "/assets/index-AbC123.js",
			header:     map[string]string{"Accept-Encoding": "gzip;q=0"},
			wantStatus: 200, wantBody: "console.log(1);",
			wantHeader: map[string]string{"Content-Encoding": ""},
		},
		{
			name: "other public file gets a short cache", fsys: builtFS, path: "/favicon.svg",
			wantStatus: 200, wantHeader: map[string]string{"Cache-Control": "public, max-age=3600", "Content-Type": "image/svg+xml"},
		},
		{
			name: "HEAD has headers and no body", fsys: builtFS, method: http.MethodHead, path: "/",
			wantStatus: 200, wantNoBody: true, wantHeader: map[string]string{"Cache-Control": "no-cache"},
		},
		{
			name: "unknown path is 404", fsys: builtFS, path: "/nope.js", wantStatus: 404,
		},
		{
			name: "hidden files are not served", fsys: builtFS, path: "/.keep", wantStatus: 404,
		},
		{
			name: "POST is 405", fsys: builtFS, method: http.MethodPost, path: "/", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "GET, HEAD"},
		},
		{
			name: "not built: explanatory page at root", fsys: fstest.MapFS{}, path: "/",
			wantStatus: 200, wantBody: "make web",
			wantHeader: map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
		},
		{
			name: "not built: page lists the endpoints", fsys: fstest.MapFS{".keep": {}}, path: "/",
			wantStatus: 200, wantBody: "/api/v1/snapshot",
		},
		{
			name: "not built: other paths are 404", fsys: fstest.MapFS{}, path: "/assets/x.js", wantStatus: 404,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			handler(tt.fsys).ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", res.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" && !bytes.Contains(body, []byte(tt.wantBody)) {
				t.Errorf("body %q does not contain %q", body, tt.wantBody)
			}
			if tt.wantNoBody && len(body) != 0 {
				t.Errorf("HEAD returned a body of %d bytes", len(body))
			}
			for k, v := range tt.wantHeader {
				if got := res.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.wantGzipBody != "" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("body is not gzip: %v", err)
				}
				plain, _ := io.ReadAll(zr)
				if !bytes.Contains(plain, []byte(tt.wantGzipBody)) {
					t.Errorf("gunzipped body does not contain %q", tt.wantGzipBody)
				}
			}
		})
	}
}

func TestHandlerETagRevalidation(t *testing.T) {
	h := handler(builtFS)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation status = %d, want 304", rec.Code)
	}
}

// TestHandlerEmbedded checks the real embedded tree: either the built app or, with only
// dist/.keep present, the not-built page.
func TestHandlerEmbedded(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "<html") && !strings.Contains(body, "<!doctype html>") {
		t.Fatalf("GET / did not return HTML: %.200q", body)
	}
}
