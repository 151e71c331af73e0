package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/sockopt"
	"github.com/tickstream/tickstream/internal/wsframe"
)

// slowRecvBuffer is the receive buffer of a slow connection: the kernel
// takes little on the benchmark's side, so what the server sends piles up
// on the server's side, as with a stalled client on a real network.
const slowRecvBuffer = 4096

// slowPool holds Config.SlowConns connections that subscribe and never
// read. On loopback it watches the server's end of each in /proc/net/tcp:
// its send queue, and whether the server closed it, in which case the
// connection is reopened with Config.SlowReconnect.
type slowPool struct {
	r     *runner
	conns []*slowConn
	port  int // the server's port, 0 when it is not on loopback
	stop  chan struct{}
	wg    sync.WaitGroup

	mu        sync.Mutex
	stats     SlowStats
	lifetimes *hdrhistogram.Histogram
}

// slowConn is one slow connection slot; conn and opened are guarded by
// slowPool.mu.
type slowConn struct {
	idx    int
	syms   []string
	laddr  *net.TCPAddr
	conn   net.Conn
	opened time.Time
}

// SlowStats are the figures of the connections that never read
// (Config.SlowConns).
type SlowStats struct {
	Conns          int `json:"conns"`
	SymbolsPerConn int `json:"symbolsPerConn"`
	// Dials counts the connections opened (reopened when the server
	// closed one), Failed the dials that failed.
	Dials  int64 `json:"dials"`
	Failed int64 `json:"failed"`
	// ClosedByServer counts the connections the server closed, as seen
	// on loopback from the state of its socket; Lifetime is the time
	// from a connection's subscription to that close.
	ClosedByServer int64   `json:"closedByServer"`
	Lifetime       Latency `json:"lifetime"`
	// SlowCloses is the server's count of 4008 closes over the run
	// (tickstream_slow_consumer_closes_total), when its metrics could be
	// read; -1 otherwise.
	SlowCloses int64 `json:"slowCloses"`
	// MaxSendQueue is the largest kernel send queue of the server's end
	// of one slow connection (tx_queue in /proc/net/tcp), and
	// PeakSendQueue the largest sum over all of them at one sample.
	MaxSendQueue  int64 `json:"maxSendQueue"`
	PeakSendQueue int64 `json:"peakSendQueue"`
	// Watched is false when the server is not on loopback: its sockets
	// cannot be seen, closes are not detected and nothing is reopened.
	Watched bool `json:"watched"`
}

func (r *runner) newSlowPool() *slowPool {
	k := r.cfg.SlowSymbolsPerConn
	if k == 0 {
		k = r.cfg.SymbolsPerConn
	}
	p := &slowPool{r: r, stop: make(chan struct{}), lifetimes: newHistogram()}
	p.stats.Conns, p.stats.SymbolsPerConn = r.cfg.SlowConns, k
	if host, port, ok := r.loopback(); ok && !strings.Contains(host, ":") {
		p.port = port
		p.stats.Watched = true
	}
	slots := make([]*slot, r.cfg.SlowConns)
	ips := r.sourceIPs()
	for i := range slots {
		slots[i] = &slot{idx: i}
	}
	// Their own seed: the slow connections' symbols are not the others'.
	chooseSymbols(slots, r.marketSymbols, k, r.cfg.Zipf, r.cfg.Seed+1)
	for i, sl := range slots {
		c := &slowConn{idx: i, syms: sl.syms}
		if ips > 0 {
			c.laddr = sourceAddr(r.cfg.Conns+i, ips)
		}
		p.conns = append(p.conns, c)
	}
	return p
}

// open dials every slow connection, conc at a time.
func (p *slowPool) open(ctx context.Context, conc int) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, c := range p.conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.dial(ctx, c)
		}()
	}
	wg.Wait()
}

// dial opens c's connection: the upgrade and one SUB, then nothing read.
func (p *slowPool) dial(ctx context.Context, c *slowConn) {
	conn, err := p.handshake(ctx, c)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Dials++
	if err != nil {
		p.stats.Failed++
		if p.stats.Failed <= 3 {
			p.r.log.Warn("bench: slow connection failed", "conn", c.idx, "err", err)
		}
		return
	}
	select {
	case <-p.stop:
		conn.Close()
	default:
		c.conn, c.opened = conn, time.Now()
	}
}

func (p *slowPool) handshake(ctx context.Context, c *slowConn) (net.Conn, error) {
	u, err := url.Parse(p.r.cfg.URL)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: p.r.cfg.DialTimeout, Control: sockopt.RecvBuffer(slowRecvBuffer)}
	if c.laddr != nil {
		d.LocalAddr = c.laddr
	}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	format, opcode := codec.Binary, byte(wsframe.OpBinary)
	if p.r.cfg.JSON {
		format, opcode = codec.JSON, wsframe.OpText
	}
	_ = conn.SetDeadline(time.Now().Add(p.r.cfg.DialTimeout))
	if _, err := upgradeConn(conn, u, format); err != nil {
		conn.Close()
		return nil, err
	}
	// Masked with a zero key, which leaves the payload as it is.
	sub := wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: opcode, Masked: true}, format.AppendSub(nil, 1, c.syms, p.r.sub))
	if _, err := conn.Write(sub); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// poll runs on every tick: it reads the server's sockets and reopens the
// slow connections the server closed.
func (p *slowPool) poll(ctx context.Context, now time.Time) {
	if p.port == 0 {
		return
	}
	socks, err := serverSockets(p.port)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var total int64
	for _, c := range p.conns {
		if c.conn == nil {
			continue
		}
		s, ok := socks[procAddr(c.conn.LocalAddr())]
		if ok && s.established {
			total += s.txQueue
			p.stats.MaxSendQueue = max(p.stats.MaxSendQueue, s.txQueue)
			continue
		}
		// The server closed it: its end left ESTABLISHED.
		p.stats.ClosedByServer++
		_ = p.lifetimes.RecordValue(min(max(now.Sub(c.opened).Microseconds(), latencyMin), latencyMax))
		c.conn.Close()
		c.conn = nil
		select {
		case <-p.stop:
		default:
			if !p.r.cfg.SlowReconnect {
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.dial(ctx, c)
			}()
		}
	}
	p.stats.PeakSendQueue = max(p.stats.PeakSendQueue, total)
}

// close closes every slow connection and returns the figures.
func (p *slowPool) close() SlowStats {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if c.conn != nil {
			c.conn.Close()
			c.conn = nil
		}
	}
	st := p.stats
	st.Lifetime = summarize(p.lifetimes)
	return st
}

// sockState is the server's end of one connection in /proc/net/tcp.
type sockState struct {
	established bool
	txQueue     int64
}

// serverSockets reads the sockets whose local port is port from
// /proc/net/tcp, keyed by their remote address as /proc writes it.
func serverSockets(port int) (map[string]sockState, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	suffix := fmt.Sprintf(":%04X", port)
	out := map[string]sockState{}
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], suffix) {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, _ := strconv.ParseInt(tx, 16, 64)
		out[f[2]] = sockState{established: f[3] == "01", txQueue: n}
	}
	return out, nil
}

// procAddr writes an IPv4 TCP address as /proc/net/tcp does: the address
// as a little-endian hexadecimal word, and the port.
func procAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip := ta.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
}

// scrapeMetrics reads the named counters from the server's /metrics (the
// sum of every series of each name); it returns nil when they cannot be
// read.
func (r *runner) scrapeMetrics(ctx context.Context, names ...string) map[string]float64 {
	out := map[string]float64{}
	err := r.scrapeSeries(ctx, func(series string, v float64) {
		for _, n := range names {
			if rest, ok := strings.CutPrefix(series, n); ok && (rest == "" || rest[0] == '{') {
				out[n] += v
			}
		}
	})
	if err != nil {
		return nil
	}
	return out
}

// scrapeSeries reads the server's /metrics and calls f with every series
// (name and labels as written) and its value.
func (r *runner) scrapeSeries(ctx context.Context, f func(series string, v float64)) error {
	u, err := url.Parse(r.cfg.URL)
	if err != nil {
		return err
	}
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	u.Path, u.RawQuery = "/metrics", ""
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: %s: %s", u, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			f(line[:i], v)
		}
	}
	return sc.Err()
}
