package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/server"
)

// configHelp explains the three sources of a setting; serve --help prints it.
const configHelp = `Every setting is a flag, and can also be given as the environment variable
TICKSTREAM_<FLAG> (upper case, dashes as underscores: TICKSTREAM_JWT_SECRET) or
as a line of the file named by --config. The command line wins over the
environment, which wins over the file. The file holds one setting a line,
keyed by flag name, "name = value" or "name: value"; blank lines and lines
starting with # are ignored, and a value may be quoted:

    # /etc/tickstream.conf
    listen = 0.0.0.0:8080
    brokers = kafka-0:9092,kafka-1:9092
    jwt-public-key = /etc/tickstream/jwt.pem
    max-connections-per-ip: 200
`

// parseServeFlags parses args, then the environment (parseFlags), then the
// --config file, each filling only the flags the sources before it left
// unset, so that a flag has one meaning whatever sets it.
func parseServeFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := fs.Lookup("config").Value.String()
	if path == "" {
		return nil
	}
	defer hintDurations(fs)()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := os.LookupEnv(envName(f.Name)); ok {
			set[f.Name] = true
		}
	})
	return badUsage(applyConfigFile(fs, path, set))
}

// applyConfigFile sets the flags named in the file at path, except those
// in skip. Unknown names and bad values are errors naming the line.
func applyConfigFile(fs *flag.FlagSet, path string, skip map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return fmt.Errorf("%s:%d: want name = value", path, n)
		}
		name := strings.TrimLeft(strings.TrimSpace(line[:i]), "-")
		value := strings.TrimSpace(line[i+1:])
		if uq, err := strconv.Unquote(value); err == nil {
			value = uq
		}
		fl := fs.Lookup(name)
		if fl == nil || name == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, name)
		}
		if skip[name] {
			continue
		}
		if err := fl.Value.Set(value); err != nil {
			return fmt.Errorf("%s:%d: %s = %q: %v", path, n, name, value, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	return nil
}

// edgeFlags are the security, limit and operation settings of serve.
type edgeFlags struct {
	config          string
	auth            string
	jwtSecret       string
	jwtPublicKey    string
	jwtIssuer       string
	jwtAudience     string
	origins         string
	pprof           string
	shutdownTimeout time.Duration
}

func (e *edgeFlags) register(fs *flag.FlagSet, cfg *server.Config) {
	fs.StringVar(&e.config, "config", "", "read settings from this `file` (see above)")
	fs.StringVar(&e.auth, "auth", "", "client authentication: jwt or none (default: jwt when a JWT key is set; required with --brokers; none for the embedded demo)")
	fs.StringVar(&e.jwtSecret, "jwt-secret", "", "HS256 shared `secret` of client tokens, at least 32 bytes (better: TICKSTREAM_JWT_SECRET)")
	fs.StringVar(&e.jwtPublicKey, "jwt-public-key", "", "PEM `file` of the RSA (RS256) or P-256 (ES256) public key of client tokens")
	fs.StringVar(&e.jwtIssuer, "jwt-issuer", "", "required iss claim of client tokens (default: not checked)")
	fs.StringVar(&e.jwtAudience, "jwt-audience", "", "required aud claim of client tokens (default: not checked)")
	fs.StringVar(&e.origins, "allowed-origins", "", "browser `origins` besides the node's own allowed to connect, comma-separated: https://app.example.com, https://*.example.com or * (others: close 1008)")
	fs.StringVar(&cfg.TLSCertFile, "listen-cert", cfg.TLSCertFile, "PEM certificate chain `file`: serve HTTPS and wss (with --listen-key)")
	fs.StringVar(&cfg.TLSKeyFile, "listen-key", cfg.TLSKeyFile, "PEM private key `file` of --listen-cert")
	fs.IntVar(&cfg.Limits.MaxConnections, "max-connections", cfg.Limits.MaxConnections, "WebSocket connections of this node (close 4029 past it)")
	fs.IntVar(&cfg.Limits.MaxConnectionsPerIP, "max-connections-per-ip", cfg.Limits.MaxConnectionsPerIP, "WebSocket connections of one client IP (close 4029 past it)")
	fs.StringVar(&cfg.Limits.ClientIPHeader, "client-ip-header", cfg.Limits.ClientIPHeader, "`header` holding the client IP behind a proxy, e.g. X-Forwarded-For (last address used); only behind a proxy that sets it")
	fs.Float64Var(&cfg.Limits.RequestRate, "request-rate", cfg.Limits.RequestRate, "requests per second one connection may sustain (ERROR 429 past it; close 1008 at 10 times that many refused)")
	fs.IntVar(&cfg.Limits.RequestBurst, "request-burst", cfg.Limits.RequestBurst, "requests one connection may send at once")
	fs.IntVar(&cfg.Limits.SocketSendBuffer, "socket-send-buffer", cfg.Limits.SocketSendBuffer, "kernel send buffer (SO_SNDBUF) of each connection in `bytes`, so that a client that does not read is seen as slow; -1 leaves the kernel's autotuning")
	fs.IntVar(&cfg.Limits.MaxHTTPConnections, "max-http-connections", cfg.Limits.MaxHTTPConnections, "plain HTTP connections (dashboard, REST, metrics, upgrades in progress); past it the longest idle keep-alive one is closed, or a new one waits for a slot (half of --handshake-timeout at most), then HTTP 503")
	fs.StringVar(&e.pprof, "pprof", "", "serve net/http/pprof on this `address` (a separate listener; keep it private); empty: off")
	fs.DurationVar(&e.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGTERM or SIGINT, exit after this long even if shutdown has not finished")
}

// apply completes cfg from the flags: it loads the token key and enforces
// that a node reading a real Kafka authenticates its clients unless told
// otherwise.
func (e *edgeFlags) apply(sc *serveConfig, log *slog.Logger) error {
	cfg := &sc.edge
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return errors.New("--listen-cert and --listen-key: want both or neither")
	}
	hasKey := e.jwtSecret != "" || e.jwtPublicKey != ""
	switch e.auth {
	case "":
		if !hasKey && len(sc.node.Brokers) > 0 {
			return errors.New("--auth: a node reading Kafka (--brokers) authenticates its clients: set --jwt-secret or --jwt-public-key, or --auth=none to serve every symbol to anyone")
		}
	case "jwt":
		if !hasKey {
			return errors.New("--auth=jwt: set --jwt-secret or --jwt-public-key")
		}
	case "none":
		if hasKey {
			return errors.New("--auth=none: --jwt-secret and --jwt-public-key would be ignored; remove them or use --auth=jwt")
		}
	default:
		return fmt.Errorf("--auth %q: want jwt or none", e.auth)
	}
	if !hasKey {
		// The embedded demo serves its own simulated market: no warning there,
		// only where --auth=none opens a real feed to anyone.
		if len(sc.node.Brokers) == 0 {
			log.Info("client authentication is off (the embedded demo)")
		} else {
			log.Warn("client authentication is off: anyone who reaches this node may subscribe to every symbol")
		}
		return nil
	}
	ac := server.AuthConfig{Secret: []byte(e.jwtSecret), Issuer: e.jwtIssuer, Audience: e.jwtAudience}
	if e.jwtPublicKey != "" {
		pem, err := os.ReadFile(e.jwtPublicKey)
		if err != nil {
			return fmt.Errorf("--jwt-public-key: %w", err)
		}
		ac.PublicKeyPEM = pem
	}
	a, err := server.NewAuthenticator(ac)
	if err != nil {
		if e.jwtPublicKey != "" {
			return fmt.Errorf("--jwt-public-key %s: %w", e.jwtPublicKey, err)
		}
		return fmt.Errorf("--jwt-secret: %w", err)
	}
	cfg.Auth = a
	log.Info("client authentication on", "method", a.Method())
	return nil
}

// allowedOrigins returns the origins of --allowed-origins.
func (e *edgeFlags) allowedOrigins() []string {
	var origins []string
	for _, o := range strings.Split(e.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	return origins
}

// startPprof serves the profiler on its own listener, so that it is never
// exposed on the public port by accident. The returned func stops it.
func startPprof(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		log.Warn("pprof listens on a non-loopback address: it exposes profiles and stacks", "addr", ln.Addr().String())
	}
	log.Info("pprof serving", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}

// runBounded runs srv, and the simulator of feed unless it is nil, until
// ctx ends or either fails, and returns an error if the shutdown then takes
// longer than timeout, so that a stuck shutdown cannot keep an
// orchestrator's SIGTERM waiting until SIGKILL.
func runBounded(ctx context.Context, srv *server.Server, feed *demo.Feed, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- runFed(ctx, srv, feed) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("shutdown did not finish within --shutdown-timeout %v", timeout)
	}
}

// runFed runs srv and the simulator of feed (when not nil) until ctx ends
// or either fails; the simulator stops first, its broker is closed by the
// caller.
func runFed(ctx context.Context, srv *server.Server, feed *demo.Feed) error {
	if feed == nil {
		return srv.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fed := make(chan error, 1)
	go func() {
		err := feed.Run(ctx)
		if err != nil {
			cancel()
		}
		fed <- err
	}()
	err := srv.Run(ctx)
	cancel()
	return errors.Join(err, <-fed)
}
