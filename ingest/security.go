package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms that Security accepts.
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// Security holds the settings for reaching a secured Kafka cluster. The zero
// value connects in plain text without authentication.
type Security struct {
	// TLS encrypts the connections; it is implied by any of the files below.
	TLS bool
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates (default: the system's roots).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mutual TLS).
	CertFile, KeyFile string
	// SASLMechanism is "" (none), SASLPlain, SASLSCRAMSHA256 or
	// SASLSCRAMSHA512; the names are case-insensitive.
	SASLMechanism string
	// SASLUser and SASLPassword are the SASL credentials.
	SASLUser, SASLPassword string
}

// Dialer returns a kafka-go dialer with these settings, having read and
// checked the certificate files.
func (s Security) Dialer(timeout time.Duration) (*kafka.Dialer, error) {
	d := &kafka.Dialer{Timeout: timeout, DualStack: true}
	var err error
	if d.TLS, err = s.tlsConfig(); err != nil {
		return nil, err
	}
	if d.SASLMechanism, err = s.mechanism(); err != nil {
		return nil, err
	}
	return d, nil
}

func (s Security) tlsConfig() (*tls.Config, error) {
	if !s.TLS && s.CAFile == "" && s.CertFile == "" && s.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: TLS CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest: TLS CA %s: no PEM certificate in it", s.CAFile)
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, errors.New("ingest: TLS client certificate: want both the certificate and the key file")
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (s Security) mechanism() (sasl.Mechanism, error) {
	name := strings.ToUpper(s.SASLMechanism)
	if name == "" {
		if s.SASLUser != "" || s.SASLPassword != "" {
			return nil, errors.New("ingest: SASL credentials given without a SASL mechanism")
		}
		return nil, nil
	}
	if s.SASLUser == "" {
		return nil, fmt.Errorf("ingest: SASL %s: no user", name)
	}
	switch name {
	case SASLPlain:
		return plain.Mechanism{Username: s.SASLUser, Password: s.SASLPassword}, nil
	case SASLSCRAMSHA256, SASLSCRAMSHA512:
		algo := scram.SHA256
		if name == SASLSCRAMSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.SASLUser, s.SASLPassword)
		if err != nil {
			return nil, fmt.Errorf("ingest: SASL %s: %w", name, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("ingest: SASL mechanism %q: want %s, %s or %s", s.SASLMechanism, SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512)
}
