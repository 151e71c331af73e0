package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/server"
)

// writePEM writes a PEM block to a file of dir and returns its path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenKeys makes an RSA and a P-256 key pair in dir, the private keys in
// the forms openssl writes, and returns the files and public key PEMs.
func tokenKeys(t *testing.T, dir string) (rsaKey, ecKey string, rsaPub, ecPub []byte) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	return writePEM(t, dir, "rsa.pem", "PRIVATE KEY", pkcs8), writePEM(t, dir, "ec.pem", "EC PRIVATE KEY", sec1),
		pub(&rk.PublicKey), pub(&ek.PublicKey)
}

// TestTokenAccepted mints tokens with the command and checks each with the
// server's Authenticator configured as serve configures it: accepted with
// the right settings, with the syms it was given and its lifetime; refused
// with a wrong issuer or audience or another key.
func TestTokenAccepted(t *testing.T) {
	t.Setenv("TICKSTREAM_JWT_SECRET", "")
	os.Unsetenv("TICKSTREAM_JWT_SECRET")
	dir := t.TempDir()
	rsaKey, ecKey, rsaPub, ecPub := tokenKeys(t, dir)
	secret := strings.Repeat("k", 40)
	tests := []struct {
		name   string
		args   []string
		server server.AuthConfig
		method string
		refuse string // in the Authenticator's error; "" to accept
	}{
		{"HS256", []string{"--jwt-secret", secret}, server.AuthConfig{Secret: []byte(secret)}, "HS256", ""},
		{"RS256", []string{"--jwt-private-key", rsaKey}, server.AuthConfig{PublicKeyPEM: rsaPub}, "RS256", ""},
		{"ES256", []string{"--jwt-private-key", ecKey}, server.AuthConfig{PublicKeyPEM: ecPub}, "ES256", ""},
		{"issuer and audience", []string{"--jwt-secret", secret, "--iss", "idp", "--aud", "md"},
			server.AuthConfig{Secret: []byte(secret), Issuer: "idp", Audience: "md"}, "HS256", ""},
		{"wrong audience", []string{"--jwt-secret", secret, "--aud", "other"},
			server.AuthConfig{Secret: []byte(secret), Audience: "md"}, "HS256", "audience"},
		{"no audience", []string{"--jwt-secret", secret},
			server.AuthConfig{Secret: []byte(secret), Audience: "md"}, "HS256", "aud"},
		{"wrong issuer", []string{"--jwt-secret", secret, "--iss", "me"},
			server.AuthConfig{Secret: []byte(secret), Issuer: "idp"}, "HS256", "issuer"},
		{"other secret", []string{"--jwt-secret", secret},
			server.AuthConfig{Secret: []byte(strings.Repeat("x", 40))}, "HS256", "signature"},
		{"other key", []string{"--jwt-private-key", ecKey}, server.AuthConfig{PublicKeyPEM: rsaPub}, "RS256", "signing method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"--syms", "AAPL, NASDAQ:*", "--ttl", "2h", "--sub", "alice"}, tt.args...)
			if err := runToken(t.Context(), args, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSuffix(stdout.String(), "\n")
			if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
				t.Fatalf("stdout %q, want one JWT line", stdout.String())
			}
			a, err := server.NewAuthenticator(tt.server)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := a.Verify(tok)
			if tt.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refuse) {
					t.Errorf("Verify = %v, want a refusal about %s", err, tt.refuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.Method() != tt.method {
				t.Errorf("method %s, want %s", a.Method(), tt.method)
			}
			for sym, want := range map[string]bool{"AAPL": true, "NASDAQ:MSFT": true, "MSFT": false, "AAPLX": false} {
				if sess.Grant.Allows(sym) != want {
					t.Errorf("grant allows %s: %v, want %v", sym, !want, want)
				}
			}
			if sess.Subject != "alice" {
				t.Errorf("subject %q", sess.Subject)
			}
			if d := time.Until(sess.Expires); d < 119*time.Minute || d > 2*time.Hour {
				t.Errorf("expires in %v, want 2h", d)
			}
		})
	}
}

// TestTokenKeyOverEnvironment checks that a key on the command line signs
// although serve's TICKSTREAM_JWT_SECRET is exported: the command line
// wins over the environment.
func TestTokenKeyOverEnvironment(t *testing.T) {
	t.Setenv("TICKSTREAM_JWT_SECRET", strings.Repeat("k", 32))
	_, ecKey, _, ecPub := tokenKeys(t, t.TempDir())
	var stdout bytes.Buffer
	if err := runToken(t.Context(), []string{"--syms", "*", "--jwt-private-key", ecKey}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	a, err := server.NewAuthenticator(server.AuthConfig{PublicKeyPEM: ecPub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(strings.TrimSpace(stdout.String())); err != nil {
		t.Errorf("the ES256 server refuses the token: %v", err)
	}
}

// TestTokenExpired checks that a token past its --ttl is refused by the
// server, and that --ttl 0 makes one without exp.
func TestTokenExpired(t *testing.T) {
	secret := strings.Repeat("k", 32)
	a, err := server.NewAuthenticator(server.AuthConfig{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	o := tokenOptions{secret: secret, syms: []string{"*"}, ttl: time.Hour}
	tok, _, err := mintToken(o, time.Now().Add(-61*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Verify of a token 1 minute past its ttl = %v, want expired", err)
	}
	o.ttl = 0
	tok, _, err = mintToken(o, time.Now().Add(-1000*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if sess, err := a.Verify(tok); err != nil || !sess.Expires.IsZero() {
		t.Errorf("Verify of a --ttl 0 token = %v, %v; want accepted, no expiry", sess, err)
	}
}

func TestTokenNewSecret(t *testing.T) {
	var secrets []string
	for range 2 {
		var stdout bytes.Buffer
		if err := runToken(t.Context(), []string{"--new-secret"}, &stdout, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSuffix(stdout.String(), "\n")
		if _, err := hex.DecodeString(s); err != nil || len(s) != 64 {
			t.Fatalf("secret %q, want 64 hex digits", s)
		}
		if _, err := server.NewAuthenticator(server.AuthConfig{Secret: []byte(s)}); err != nil {
			t.Errorf("the server refuses the new secret: %v", err)
		}
		secrets = append(secrets, s)
	}
	if secrets[0] == secrets[1] {
		t.Error("two new secrets are the same")
	}
}

func TestTokenFlags(t *testing.T) {
	t.Setenv("TICKSTREAM_JWT_SECRET", "")
	os.Unsetenv("TICKSTREAM_JWT_SECRET")
	dir := t.TempDir()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	p384File := writePEM(t, dir, "p384.pem", "EC PRIVATE KEY", der)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := "--jwt-secret=" + strings.Repeat("s", 32)
	tests := []refusal{
		{"help", []string{"-h"}, "", flag.ErrHelp},
		{"no syms", []string{s}, "--syms is required", nil},
		{"bad pattern", []string{s, "--syms", "A*B"}, `--syms: pattern "A*B"`, nil},
		{"no key", []string{"--syms", "*"}, "no signing key", nil},
		{"short secret", []string{"--syms", "*", "--jwt-secret", "short"}, "--jwt-secret has 5 bytes, the server wants at least 32", nil},
		{"secret and key", []string{s, "--syms", "*", "--jwt-private-key", garbage}, "exclude each other", nil},
		{"not a key", []string{"--syms", "*", "--jwt-private-key", garbage}, "neither an RSA nor an ECDSA private key", nil},
		{"missing key", []string{"--syms", "*", "--jwt-private-key", filepath.Join(dir, "none.pem")}, "no such file", nil},
		{"P-384", []string{"--syms", "*", "--jwt-private-key", p384File}, "ES256 needs a P-256 key", nil},
		{"negative ttl", []string{s, "--syms", "*", "--ttl", "-1h"}, "--ttl -1h0m0s", nil},
		{"ttl without unit", []string{s, "--syms", "*", "--ttl", "8"}, "a duration needs a unit", nil},
		{"new secret and syms", []string{"--new-secret", "--syms", "*"}, "--syms does not apply", nil},
		{"argument", []string{s, "AAPL"}, `unexpected argument "AAPL"`, nil},
	}
	testRefusals(t, runToken, tests, "usage: tickstream token")
}

// TestTokenWithServe mints tokens for a real `tickstream serve --auth jwt`
// and connects with them: a valid one gets HELLO, an expired one close 4001.
func TestTokenWithServe(t *testing.T) {
	t.Setenv("TICKSTREAM_JWT_SECRET", "")
	os.Unsetenv("TICKSTREAM_JWT_SECRET")
	var secret bytes.Buffer
	if err := runToken(t.Context(), []string{"--new-secret"}, &secret, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(secret.String())
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--symbols", "5", "--rate", "50",
			"--auth", "jwt", "--jwt-secret", key, "--jwt-audience", "md"}, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		<-exit
	}()
	addrRE := regexp.MustCompile(`websocket (ws://\S+/ws)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatal("serve did not start within 20s")
		}
	}
	valid, _, err := mintToken(tokenOptions{secret: key, syms: []string{"*"}, ttl: time.Hour, audience: "md"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := mintToken(tokenOptions{secret: key, syms: []string{"*"}, ttl: time.Hour, audience: "md"}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(tok string) (*client.Conn, error) {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		return client.Dial(dctx, url, client.Options{Header: http.Header{"Authorization": {"Bearer " + tok}}})
	}
	conn, err := dial(valid)
	if err != nil {
		t.Fatalf("a minted token was refused: %v", err)
	}
	if conn.Hello().ServerID == "" {
		t.Error("no HELLO")
	}
	conn.Close()
	if conn, err := dial(expired); err == nil {
		conn.Close()
		t.Error("an expired token was accepted")
	} else if ce := (*client.CloseError)(nil); !errors.As(err, &ce) || ce.Code != 4001 {
		t.Errorf("expired token: %v, want close 4001", err)
	}
}
