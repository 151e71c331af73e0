package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/testcert"
)

func TestSecurityDialer(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := testcert.Write(t)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		sec       Security
		tls, sasl bool
		err       string
	}{
		{"plain text", Security{}, false, false, ""},
		{"TLS with system roots", Security{TLS: true}, true, false, ""},
		{"TLS with a CA", Security{CAFile: cert}, true, false, ""},
		{"mutual TLS", Security{CAFile: cert, CertFile: cert, KeyFile: key}, true, false, ""},
		{"SCRAM over TLS", Security{CAFile: cert, SASLMechanism: "SCRAM-SHA-256", SASLUser: "u", SASLPassword: "p"}, true, true, ""},
		{"PLAIN", Security{SASLMechanism: "plain", SASLUser: "u", SASLPassword: "p"}, false, true, ""},
		{"SCRAM-SHA-512", Security{SASLMechanism: SASLSCRAMSHA512, SASLUser: "u", SASLPassword: "p"}, false, true, ""},
		{"missing CA", Security{CAFile: filepath.Join(dir, "none.pem")}, false, false, "TLS CA"},
		{"CA not PEM", Security{CAFile: notPEM}, false, false, "no PEM certificate"},
		{"certificate without key", Security{CertFile: cert}, false, false, "both the certificate and the key"},
		{"unknown mechanism", Security{SASLMechanism: "GSSAPI", SASLUser: "u"}, false, false, "want PLAIN"},
		{"no user", Security{SASLMechanism: "PLAIN"}, false, false, "no user"},
		{"credentials without mechanism", Security{SASLUser: "u", SASLPassword: "p"}, false, false, "without a SASL mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.sec.Dialer(time.Second)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (d.TLS != nil) != tt.tls || (d.SASLMechanism != nil) != tt.sasl {
				t.Fatalf("TLS %v SASL %v, want TLS %v SASL %v", d.TLS != nil, d.SASLMechanism != nil, tt.tls, tt.sasl)
			}
		})
	}
}
