package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickstream/tickstream/codec"
)

// Claims are the JWT claims tickstream reads: the registered ones (exp,
// nbf, iss, aud, sub) and syms, the symbol patterns the bearer is entitled
// to. A pattern is a symbol ("AAPL"), a prefix ending in "*" ("NASDAQ:*"),
// or "*" for every symbol.
type Claims struct {
	Syms []string `json:"syms"`
	jwt.RegisteredClaims
}

// AuthConfig configures an Authenticator: exactly one of Secret (HS256) and
// PublicKeyPEM (RS256 for an RSA key, ES256 for a P-256 key) is set.
type AuthConfig struct {
	// Secret is the shared HS256 secret, at least 32 bytes (RFC 7518 3.2).
	Secret []byte
	// PublicKeyPEM is a PEM public key or certificate.
	PublicKeyPEM []byte
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
}

// Authenticator verifies the tokens that clients present on the upgrade
// request. It is safe for concurrent use.
type Authenticator struct {
	key    any
	parser *jwt.Parser
}

// NewAuthenticator returns an Authenticator for cfg.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	var (
		key    any
		method string
	)
	switch {
	case len(cfg.Secret) > 0 && len(cfg.PublicKeyPEM) > 0:
		return nil, errors.New("auth: a shared secret and a public key are exclusive")
	case len(cfg.Secret) > 0:
		if len(cfg.Secret) < 32 {
			return nil, fmt.Errorf("auth: the HS256 secret has %d bytes, want at least 32", len(cfg.Secret))
		}
		key, method = cfg.Secret, jwt.SigningMethodHS256.Alg()
	case len(cfg.PublicKeyPEM) > 0:
		if k, err := jwt.ParseRSAPublicKeyFromPEM(cfg.PublicKeyPEM); err == nil {
			key, method = k, jwt.SigningMethodRS256.Alg()
		} else if k, err := jwt.ParseECPublicKeyFromPEM(cfg.PublicKeyPEM); err == nil {
			if k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("auth: ES256 needs a P-256 key, not %s", k.Curve.Params().Name)
			}
			key, method = k, jwt.SigningMethodES256.Alg()
		} else {
			return nil, errors.New("auth: the public key is neither an RSA nor an ECDSA key in PEM form")
		}
	default:
		return nil, errors.New("auth: want a shared secret or a public key")
	}
	// Pinning the one method the key is for rules out algorithm
	// confusion (an HS256 token signed with an RSA public key as secret).
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{method})}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Authenticator{key: key, parser: jwt.NewParser(opts...)}, nil
}

// Method returns the signing algorithm the Authenticator accepts.
func (a *Authenticator) Method() string {
	switch a.key.(type) {
	case []byte:
		return jwt.SigningMethodHS256.Alg()
	case *ecdsa.PublicKey:
		return jwt.SigningMethodES256.Alg()
	}
	return jwt.SigningMethodRS256.Alg()
}

// Session is what a verified token grants.
type Session struct {
	// Subject is the token's sub claim, for logs.
	Subject string
	// Expires is the token's exp; zero when the token has none.
	Expires time.Time
	// Grant holds the symbols the bearer may receive.
	Grant *Grant
}

// Verify checks a token's signature and claims and returns its session.
func (a *Authenticator) Verify(token string) (*Session, error) {
	if token == "" {
		return nil, errors.New("no token: send Authorization: Bearer <token> or ?token=<token>")
	}
	var claims Claims
	if _, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return a.key, nil }); err != nil {
		return nil, fmt.Errorf("invalid token: %w", err)
	}
	grant, err := NewGrant(claims.Syms)
	if err != nil {
		return nil, fmt.Errorf("invalid token: syms: %w", err)
	}
	s := &Session{Subject: claims.Subject, Grant: grant}
	if claims.ExpiresAt != nil {
		s.Expires = claims.ExpiresAt.Time
	}
	return s, nil
}

// tokenFrom returns the token of an upgrade request: the Authorization
// header's bearer token, else the token query parameter (browsers cannot
// set headers on a WebSocket).
func tokenFrom(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}

// Grant is a set of symbol patterns: exact symbols, prefixes and "*".
type Grant struct {
	all      bool
	exact    map[string]struct{}
	prefixes []string
}

// NewGrant parses symbol patterns. "*" is allowed only as the last
// character; a pattern that could match no valid symbol is an error, so
// that a typo in a token is found rather than silently granting nothing.
func NewGrant(patterns []string) (*Grant, error) {
	g := &Grant{exact: map[string]struct{}{}}
	for _, p := range patterns {
		prefix, wild := strings.CutSuffix(p, "*")
		switch {
		case wild && prefix == "":
			g.all = true
		case wild && !strings.Contains(prefix, "*") && codec.ValidSymbol([]byte(prefix+"A")):
			g.prefixes = append(g.prefixes, prefix)
		case !wild && codec.ValidSymbol([]byte(p)):
			g.exact[p] = struct{}{}
		default:
			return nil, fmt.Errorf("pattern %q: want a symbol, PREFIX* or *", p)
		}
	}
	return g, nil
}

// Allows reports whether sym matches one of the patterns.
func (g *Grant) Allows(sym string) bool {
	if g.all {
		return true
	}
	if _, ok := g.exact[sym]; ok {
		return true
	}
	for _, p := range g.prefixes {
		if strings.HasPrefix(sym, p) {
			return true
		}
	}
	return false
}

// denied returns the symbols of syms that g does not allow; a nil Grant
// (authentication off) allows every symbol.
func (g *Grant) denied(syms []string) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, s := range syms {
		if !g.Allows(s) {
			out = append(out, s)
		}
	}
	return out
}

// filter returns the symbols of syms that g allows, all of them for a nil
// Grant.
func (g *Grant) filter(syms []string) []string {
	if g == nil {
		return syms
	}
	out := syms[:0:0]
	for _, s := range syms {
		if g.Allows(s) {
			out = append(out, s)
		}
	}
	return out
}

type grantKey struct{}

// authorize makes the REST API answer only requests with a valid token
// when authentication is on (401 otherwise), with the token's grant in the
// request's context: the API must not leak what the WebSocket refuses.
func (s *Server) authorize(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.cfg.Auth.Verify(tokenFrom(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tickstream"`)
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, sess.Grant)))
	}
}

// grantOf returns the grant authorize put in r's context; nil when
// authentication is off.
func grantOf(r *http.Request) *Grant {
	g, _ := r.Context().Value(grantKey{}).(*Grant)
	return g
}
