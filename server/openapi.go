package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the REST API. The server's tests
// validate real responses against it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
