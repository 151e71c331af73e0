package main

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickstream/tickstream/server"
)

const tokenUsage = `usage: tickstream token --syms PATTERNS [--jwt-secret S | --jwt-private-key FILE] [flags]
       tickstream token --new-secret > jwt-secret

Mints a client token (JWT) that 'tickstream serve' accepts, and prints it on
standard output. The claim syms lists the symbol patterns the client may see:
AAPL (exact), NASDAQ:* (prefix), * (every symbol).

Sign with the server's shared secret (HS256; the server's --jwt-secret, read
here from the same TICKSTREAM_JWT_SECRET), or with the private key whose
public key the server has as --jwt-public-key (RS256 for an RSA key, ES256 for
a P-256 key). --iss and --aud must match the server's --jwt-issuer and
--jwt-audience when it sets them.

--new-secret prints a new random HS256 secret (32 random bytes, hex) instead:

    tickstream token --new-secret > jwt-secret
    TICKSTREAM_JWT_SECRET=$(cat jwt-secret) tickstream serve --brokers ... &
    TICKSTREAM_JWT_SECRET=$(cat jwt-secret) tickstream token --syms 'AAPL,NASDAQ:*' --ttl 8h

Every flag can also be set as TICKSTREAM_<FLAG> (e.g. TICKSTREAM_JWT_SECRET).

flags:
`

// tokenOptions is what a minted token holds and how it is signed.
type tokenOptions struct {
	secret     string
	privateKey string // PEM file
	syms       []string
	ttl        time.Duration
	issuer     string
	audience   string
	subject    string
}

func runToken(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("token", stdout, tokenUsage)
	var (
		o         tokenOptions
		syms      string
		newSecret bool
	)
	fs.StringVar(&syms, "syms", "", "comma-separated symbol `patterns` the client may see: AAPL, NASDAQ:*, * (required)")
	fs.StringVar(&o.secret, "jwt-secret", "", "HS256 shared `secret` of the server, at least 32 bytes (better: TICKSTREAM_JWT_SECRET)")
	fs.StringVar(&o.privateKey, "jwt-private-key", "", "PEM `file` of the RSA (RS256) or P-256 (ES256) private key whose public key the server has")
	fs.DurationVar(&o.ttl, "ttl", 24*time.Hour, "lifetime of the token, e.g. 30m or 8h; the server closes the connection (4001) when it ends; 0: never expires")
	fs.StringVar(&o.issuer, "iss", "", "iss claim (the server's --jwt-issuer)")
	fs.StringVar(&o.audience, "aud", "", "aud claim (the server's --jwt-audience)")
	fs.StringVar(&o.subject, "sub", "", "sub claim: who the client is, for the server's logs")
	fs.BoolVar(&newSecret, "new-secret", false, "print a new random HS256 secret instead of a token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if newSecret {
		for _, name := range []string{"syms", "jwt-private-key", "ttl", "iss", "aud", "sub", "jwt-secret"} {
			if given[name] {
				return usagef("--new-secret makes a secret, not a token: --%s does not apply", name)
			}
		}
		secret, err := newJWTSecret()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		return nil
	}
	// The command line wins over the environment: a key given there
	// signs even with TICKSTREAM_JWT_SECRET exported for serve.
	switch {
	case given["jwt-private-key"] && !given["jwt-secret"]:
		o.secret = ""
	case given["jwt-secret"] && !given["jwt-private-key"]:
		o.privateKey = ""
	}
	for _, s := range strings.Split(syms, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.syms = append(o.syms, s)
		}
	}
	tok, ac, err := mintToken(o, time.Now())
	if err != nil {
		return badUsage(err)
	}
	// Checked by the server's own code, configured as the server would
	// be: never hand out a token that the server refuses.
	a, err := server.NewAuthenticator(ac)
	if err != nil {
		return badUsage(err)
	}
	if _, err := a.Verify(tok); err != nil {
		return fmt.Errorf("the server would refuse the minted token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// newJWTSecret returns 32 random bytes in hex: 64 characters that are, as
// bytes, a valid HS256 secret for --jwt-secret.
func newJWTSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// mintToken signs a token of o's claims, issued at now, and returns it with
// the settings of a server that accepts it.
func mintToken(o tokenOptions, now time.Time) (string, server.AuthConfig, error) {
	if len(o.syms) == 0 {
		return "", server.AuthConfig{}, errors.New("--syms is required: the symbol patterns the client may see, e.g. AAPL,MSFT or NASDAQ:* or *")
	}
	if _, err := server.NewGrant(o.syms); err != nil {
		return "", server.AuthConfig{}, fmt.Errorf("--syms: %w", err)
	}
	if o.ttl < 0 {
		return "", server.AuthConfig{}, fmt.Errorf("--ttl %v: want a lifetime, or 0 for a token that never expires", o.ttl)
	}
	claims := server.Claims{
		Syms: o.syms,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   o.issuer,
			Subject:  o.subject,
			IssuedAt: jwt.NewNumericDate(now),
		},
	}
	if o.audience != "" {
		claims.Audience = jwt.ClaimStrings{o.audience}
	}
	if o.ttl > 0 {
		claims.ExpiresAt = jwt.NewNumericDate(now.Add(o.ttl))
	}
	ac := server.AuthConfig{Issuer: o.issuer, Audience: o.audience}
	var (
		method jwt.SigningMethod
		key    any
	)
	switch {
	case o.secret != "" && o.privateKey != "":
		return "", server.AuthConfig{}, errors.New("--jwt-secret and --jwt-private-key exclude each other")
	case o.secret != "":
		if len(o.secret) < 32 {
			return "", server.AuthConfig{}, fmt.Errorf("--jwt-secret has %d bytes, the server wants at least 32: make one with 'tickstream token --new-secret'", len(o.secret))
		}
		method, key, ac.Secret = jwt.SigningMethodHS256, []byte(o.secret), []byte(o.secret)
	case o.privateKey != "":
		var err error
		if method, key, ac.PublicKeyPEM, err = loadSigningKey(o.privateKey); err != nil {
			return "", server.AuthConfig{}, fmt.Errorf("--jwt-private-key %s: %w", o.privateKey, err)
		}
	default:
		return "", server.AuthConfig{}, errors.New("no signing key: set --jwt-secret (or TICKSTREAM_JWT_SECRET) or --jwt-private-key")
	}
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		return "", server.AuthConfig{}, fmt.Errorf("sign: %w", err)
	}
	return tok, ac, nil
}

// loadSigningKey reads a PEM private key: RSA signs RS256, P-256 ECDSA
// ES256. It returns the public key in PEM too, for the check of mintToken.
func loadSigningKey(file string) (jwt.SigningMethod, crypto.Signer, []byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		method jwt.SigningMethod
		key    crypto.Signer
	)
	if k, err := jwt.ParseRSAPrivateKeyFromPEM(data); err == nil {
		method, key = jwt.SigningMethodRS256, k
	} else if k, err := jwt.ParseECPrivateKeyFromPEM(data); err == nil {
		if k.Curve != elliptic.P256() {
			return nil, nil, nil, fmt.Errorf("ES256 needs a P-256 key, not %s", k.Curve.Params().Name)
		}
		method, key = jwt.SigningMethodES256, k
	} else {
		return nil, nil, nil, errors.New("neither an RSA nor an ECDSA private key in PEM form")
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, nil, err
	}
	return method, key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
