package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
)

// connsPerSourceIP is how many connections share one source address by
// default when the server is on loopback. Real clients come from many
// addresses, and servers limit connections per address (tickstream's
// default is 1000), so one address for thousands of connections would
// measure that limit instead of the server; it is also far below Linux's
// ephemeral port range (32768-60999) of one address.
const connsPerSourceIP = 500

// slot is one of the Conns connections, across reconnections: its
// symbols, source address and counters.
type slot struct {
	idx   int
	syms  []string
	laddr *net.TCPAddr // nil: the system's choice

	wireBytes  atomic.Int64
	deliveries atomic.Int64
	measured   atomic.Int64 // deliveries while a window measures: one latency each
	conflated  atomic.Int64
	sess       atomic.Pointer[session] // the current connection
}

// session is one connection of a slot, from dial to close.
type session struct {
	slot  *slot
	conn  benchConn
	start time.Time
	// ours is set before the benchmark closes the connection itself, so
	// that the close is not counted as an error.
	ours atomic.Bool

	// Owned by the connection's read goroutine.
	skipped uint64 // the Book's Skipped, as last added to the slot's conflated
	readyAt time.Time
	ready   chan struct{} // closed once the Book is Ready, after readyAt is set
}

// chooseSymbols gives each slot its k symbols out of syms (most active
// first), uniformly or, with zipf above 1, with weight 1/rank^zipf.
func chooseSymbols(slots []*slot, syms []string, k int, zipf float64, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_b3c4))
	var z *rand.Zipf
	if zipf > 1 {
		z = rand.NewZipf(rng, zipf, 1, uint64(len(syms)-1))
	}
	chosen := make(map[int]bool, k)
	for _, sl := range slots {
		clear(chosen)
		sl.syms = make([]string, 0, k)
		pick := func(i int) {
			if !chosen[i] {
				chosen[i] = true
				sl.syms = append(sl.syms, syms[i])
			}
		}
		switch {
		case k*2 > len(syms):
			// Most of the universe: a permutation wastes no draws.
			for _, i := range rng.Perm(len(syms))[:k] {
				pick(i)
			}
		case z != nil:
			// Popular symbols repeat; the bound keeps a steep skew from
			// drawing forever, and uniform draws fill what it leaves.
			for n := 0; len(sl.syms) < k && n < 64*k; n++ {
				pick(int(z.Uint64()))
			}
			fallthrough
		default:
			for len(sl.syms) < k {
				pick(rng.IntN(len(syms)))
			}
		}
	}
}

// sourceAddr returns the source address of connection i of n spread over
// ips addresses of 127.0.0.0/8 from 127.0.0.1.
func sourceAddr(i, ips int) *net.TCPAddr {
	k := uint32(i%ips) + 1
	return &net.TCPAddr{IP: net.IPv4(127, byte(k>>16), byte(k>>8), byte(k))}
}

// countingConn counts the bytes read from the network: the wire size of
// what the server sent, compressed and framed.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (r *runner) netDial(sl *slot) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if sl.laddr != nil {
		d.LocalAddr = sl.laddr
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: &sl.wireBytes}, nil
	}
}

// dial opens slot sl's connection, subscribes and waits for every
// snapshot; it returns the time that took.
func (r *runner) dial(ctx context.Context, sl *slot) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	s := &session{slot: sl, start: time.Now(), ready: make(chan struct{})}
	c, err := r.dialConn(ctx, s)
	if err != nil {
		r.countError(dialErrorKind(err))
		return 0, err
	}
	s.conn = c
	r.open.Add(1)
	sl.sess.Store(s)
	// The replies are read on the connection's goroutine, which may see
	// them before Subscribe returns: s.conn is set before it is sent.
	if _, err := c.Subscribe(sl.syms, r.sub); err != nil {
		r.countError("subscribe write failed")
		r.closeSession(s)
		return 0, err
	}
	select {
	case <-s.ready:
		return s.readyAt.Sub(s.start), nil
	case <-c.Done():
		return 0, fmt.Errorf("bench: connection %d closed before its snapshots: code %d", sl.idx, c.CloseCode())
	case <-ctx.Done():
		r.countError("timeout waiting for snapshots")
		r.closeSession(s)
		return 0, fmt.Errorf("bench: connection %d: no snapshots within %v", sl.idx, r.cfg.DialTimeout)
	}
}

// benchConn is what the benchmark uses of a connection: a client.Conn, or
// a pollConn where the poller reads the connections.
type benchConn interface {
	Subscribe(syms []string, opts *codec.SubOptions) (uint64, error)
	Close() error
	Done() <-chan struct{}
	CloseCode() int
	Book() *client.Book
}

// connPoller reads many connections on a few goroutines
// (pollloop_linux.go).
type connPoller interface {
	// dial opens a connection to rawURL from laddr (nil: the system's
	// choice) with format's subprotocol, and returns it once HELLO came;
	// wire counts the bytes read; onMessage and onClose are
	// client.Options'.
	dial(ctx context.Context, rawURL string, laddr *net.TCPAddr, format codec.Format, wire *atomic.Int64,
		onMessage func(*codec.Message), onClose func(code int, reason string)) (benchConn, error)
	// stop stops the poller; the connections still open are dropped.
	stop()
}

// startPoller starts the poller that reads the run's connections where
// one can (pollable); the returned function stops it.
func (r *runner) startPoller() (stop func()) {
	if !r.pollable() {
		return func() {}
	}
	p, err := newConnPoller(r.log)
	if err != nil {
		r.log.Warn("bench: no poller: a goroutine reads each connection", "err", err)
	}
	if p == nil {
		return func() {}
	}
	r.poller = p
	return p.stop
}

// pollable is whether the poller can read the run's connections: the
// benchmark's own client side speaks plain ws:// without compression and
// subscribes after HELLO, and Config.SDKReader did not ask for the SDK's.
func (r *runner) pollable() bool {
	u, err := url.Parse(r.cfg.URL)
	return err == nil && u.Scheme == "ws" && !u.Query().Has("symbols") && !r.cfg.Compression && !r.cfg.SDKReader
}

// clientReader names what reads the run's connections (ResultConfig's
// ClientReader).
func (r *runner) clientReader() string {
	if r.poller != nil {
		return "poll"
	}
	return "sdk"
}

// readerName is how the summary names a ResultConfig.ClientReader.
func readerName(reader string) string {
	if reader == "poll" {
		return "the benchmark's epoll poller"
	}
	return "the Go SDK (a goroutine each)"
}

// dialConn opens s's connection: on the poller if the run has one, with
// the SDK's client.Conn otherwise.
func (r *runner) dialConn(ctx context.Context, s *session) (benchConn, error) {
	onMessage := func(m *codec.Message) { r.onMessage(s, m) }
	onClose := func(code int, reason string) { r.onClose(s, code, reason) }
	format := codec.Binary
	if r.cfg.JSON {
		format = codec.JSON
	}
	if r.poller != nil {
		return r.poller.dial(ctx, r.cfg.URL, s.slot.laddr, format, &s.slot.wireBytes, onMessage, onClose)
	}
	c, err := client.Dial(ctx, r.cfg.URL, client.Options{
		Format:      format,
		TLSConfig:   r.cfg.TLSConfig,
		Compression: r.cfg.Compression,
		Logger:      r.clientLog,
		NetDial:     r.netDial(s.slot),
		OnMessage:   onMessage,
		OnClose:     onClose,
	})
	if err != nil {
		return nil, err // not a nil *client.Conn in a benchConn
	}
	return c, nil
}

// onMessage runs on a connection's read goroutine for every message, after
// its Book checked and applied it: it must stay light.
func (r *runner) onMessage(s *session, m *codec.Message) {
	sl := s.slot
	switch m.Op {
	case codec.OpDelta:
		sl.deliveries.Add(1)
		if n := s.conn.Book().Skipped(); n != s.skipped {
			sl.conflated.Add(int64(n - s.skipped))
			s.skipped = n
		}
		if r.measuring.Load() {
			sl.measured.Add(1)
			// ts is in every DELTA: the subscription's fields include it
			// and every update moves it.
			r.rec.record(sl.idx, time.Now().UnixMicro()-int64(m.Values[codec.FieldTS]))
		}
	case codec.OpAck, codec.OpSnapshot:
		if s.readyAt.IsZero() && s.conn.Book().Ready() {
			s.readyAt = time.Now()
			close(s.ready)
		}
	case codec.OpError:
		r.countError(fmt.Sprintf("server ERROR %d", m.Code))
	}
}

func (r *runner) onClose(s *session, code int, reason string) {
	r.open.Add(-1)
	r.mu.Lock()
	r.closes[code]++
	r.mu.Unlock()
	if !s.ours.Load() {
		kind := fmt.Sprintf("closed by server: %d %s", code, closeName(code))
		r.countError(kind)
		r.log.Debug("bench: connection closed", "conn", s.slot.idx, "code", code, "reason", reason)
	}
}

// closeName names a close code: the protocol's names, and the Go client's
// own code for a heartbeat that stopped.
func closeName(code int) string {
	if code == client.CloseTimeout {
		return "heartbeat timeout"
	}
	return codec.CloseCode(code).String()
}

func (r *runner) countError(kind string) {
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// dialErrorKind names the kind of a failed dial, for the error counts.
func dialErrorKind(err error) string {
	var he *client.HandshakeError
	var ce *client.CloseError
	switch {
	case errors.As(err, &he):
		return fmt.Sprintf("upgrade refused: HTTP %d", he.StatusCode)
	case errors.As(err, &ce):
		return fmt.Sprintf("closed before HELLO: %d", ce.Code)
	case client.CertificateUntrusted(err):
		return "the server's certificate is not trusted: give its CA (Config.TLSConfig, --server-ca)"
	case errors.Is(err, context.DeadlineExceeded):
		return "dial timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no source port left (EADDRNOTAVAIL): raise SourceIPs"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files: raise ulimit -n"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return "dial failed"
}

// closeSession closes s's connection, as the benchmark's own doing, and
// collects its Book's violations.
func (r *runner) closeSession(s *session) {
	s.ours.Store(true)
	_ = s.conn.Close()
	r.collect(s)
}

// collect adds the violations s's Book recorded to the run's.
func (r *runner) collect(s *session) {
	r.collectBook(s.conn.Book(), s.slot.idx)
}

// collectBook adds the violations a Book recorded, of connection idx, to
// the run's.
func (r *runner) collectBook(b *client.Book, idx int) {
	st := b.Stats()
	if st.Violations == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations += int64(st.Violations)
	for _, v := range b.Violations() {
		if len(r.violationSamples) >= maxSamples {
			break
		}
		r.violationSamples = append(r.violationSamples, fmt.Sprintf("conn %d: %s", idx, v))
	}
}

// maxSamples bounds the examples of violations and mismatches a Result
// shows.
const maxSamples = 20

// connectAll opens the connections of slots, at most rampRate per second
// (0: no pacing) and conc at a time, and measures it.
func (r *runner) connectAll(ctx context.Context, slots []*slot, rampRate float64, conc int) ConnectStats {
	st := ConnectStats{Attempted: len(slots)}
	start := time.Now()
	var (
		mu   sync.Mutex
		h    = newHistogram()
		last time.Time
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, conc)
	var pace *time.Ticker
	if rampRate > 0 {
		pace = time.NewTicker(time.Duration(float64(time.Second) / rampRate))
		defer pace.Stop()
	}
dials:
	for i, sl := range slots {
		if pace != nil && i > 0 {
			select {
			case <-pace.C:
			case <-ctx.Done():
				break dials
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break dials
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := r.dial(ctx, sl)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.Failed++
				if st.Failed <= 3 {
					r.log.Warn("bench: connection failed", "conn", sl.idx, "err", err)
				}
				return
			}
			st.Ready++
			_ = h.RecordValue(min(max(d.Microseconds(), latencyMin), latencyMax))
			last = time.Now()
		}()
	}
	wg.Wait()
	st.Failed = st.Attempted - st.Ready
	if st.Ready > 0 {
		st.Total = last.Sub(start)
	}
	st.PerConn = summarize(h)
	return st
}

// closeAll closes the open connection of every slot, conc at a time.
func (r *runner) closeAll(slots []*slot, conc int) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, sl := range slots {
		s := sl.sess.Swap(nil)
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.closeSession(s)
		}()
	}
	wg.Wait()
}
