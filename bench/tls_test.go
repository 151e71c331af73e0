package bench

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/tickstream/tickstream/internal/testcert"
	"github.com/tickstream/tickstream/node"
	"github.com/tickstream/tickstream/server"
)

// TestRunTLS runs against a wss:// server whose certificate the system does
// not trust: with its CA in Config.TLSConfig the run passes, its final
// check reading the snapshot over https; without, no connection gets ready
// and the error says why.
func TestRunTLS(t *testing.T) {
	cert, key, pool := testcert.Write(t)
	url, brokers := testServerWith(t, server.Config{TLSCertFile: cert, TLSKeyFile: key}, node.Config{})
	url = "wss" + strings.TrimPrefix(url, "ws")
	cfg := shortConfig(url, brokers)

	_, err := Run(t.Context(), cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), "the server's certificate is not trusted") {
		t.Fatalf("Run without the CA: %v, want the connections refused for the certificate", err)
	}

	cfg.TLSConfig = &tls.Config{RootCAs: pool}
	res, err := Run(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed || res.Final.Checked == 0 {
		t.Fatalf("run over wss: passed %v, final check %+v: %v", res.Passed, res.Final, res.Failures)
	}
}
