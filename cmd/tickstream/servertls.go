package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
)

// serverCAFlag is --server-ca of the commands that connect to a server
// (watch, bench): the CAs of a wss:// server whose certificate the system
// does not trust, as a private CA's or a self-signed one.
type serverCAFlag struct{ file string }

func (f *serverCAFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&f.file, "server-ca", "", "PEM `file` of the CAs of the server's certificate, for wss:// (default: the system's roots)")
}

// config returns the TLS configuration of wss:// connections, nil for the
// system's roots.
func (f *serverCAFlag) config() (*tls.Config, error) {
	if f.file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(f.file)
	if err != nil {
		return nil, usagef("--server-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usagef("--server-ca %s: no PEM certificate in it", f.file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// adviseUntrusted adds to a certificate that failed verification what to
// do about it.
func (f *serverCAFlag) adviseUntrusted(err error) error {
	if f.file == "" {
		return fmt.Errorf("%w; if a private CA signed the server's certificate, pass that CA with --server-ca FILE", err)
	}
	return fmt.Errorf("%w; check that --server-ca %s holds the CA that signed the server's certificate, and that the certificate names the host of --url", err, f.file)
}
