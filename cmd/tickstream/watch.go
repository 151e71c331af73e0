package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/backoff"
)

const (
	// watchRedraw caps a terminal at 10 redraws a second: faster is
	// unreadable and costs the terminal more than the feed.
	watchRedraw = 100 * time.Millisecond
	// watchPlainRedraw paces the tables written to a pipe or file, which
	// keeps every one of them.
	watchPlainRedraw = time.Second
	// watchIdleRedraw refreshes the age column when nothing arrives.
	watchIdleRedraw  = time.Second
	watchDialTimeout = 10 * time.Second
)

// watchRetry spaces the reconnections of watch.
var watchRetry = backoff.Policy{First: 250 * time.Millisecond, Max: 10 * time.Second}

// ANSI escapes of the terminal table.
const (
	ansiHome       = "\x1b[H"
	ansiClearLine  = "\x1b[K" // to the end of the line
	ansiClearBelow = "\x1b[J" // to the end of the screen
	ansiClear      = "\x1b[2J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
	ansiGreen      = "\x1b[32m"
	ansiRed        = "\x1b[31m"
	ansiYellow     = "\x1b[33m"
	ansiAlarm      = "\x1b[1;97;41m" // bold white on red
	ansiReset      = "\x1b[0m"
)

const watchUsage = `usage: tickstream watch [--url URL] [--token T] [--server-ca FILE] [--json] [--bars 1m] [--trend 15] SYM...

Shows a live table of the symbols, redrawn in place on a terminal (a table a
second when written to a pipe or file). Its TREND column is the change over
each symbol's last --trend bars of --bars (the forming one included), from the
server's bar history and live bars, with a sparkline of their closes; --bars
off, or a server without bars, leaves it out. It reconnects with backoff when the
server goes away, showing the table's last state as DISCONNECTED meanwhile, and
stops for good when the server refuses the credentials (close 4001) or its
certificate is not trusted.

--url takes the WebSocket endpoint (ws://host:port/ws, wss://), or the server's
http(s):// address or a bare host:port, which mean the same server's /ws. A
wss:// server whose certificate a private CA signed (or a self-signed one, as
serve's --listen-cert may be) needs that CA's certificate in --server-ca.

flags:
`

// runWatch runs `tickstream watch`: a live table of some symbols, redrawn
// in place on a terminal, reconnecting with backoff when the server goes
// away, until ctx is canceled.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("watch", stdout, watchUsage)
	rawURL := fs.String("url", "ws://127.0.0.1:8080/ws", "the server: its WebSocket `URL`, or its http(s):// address or host:port (/ws implied)")
	token := fs.String("token", "", "client `token` (JWT) of a server that authenticates: 'tickstream token' mints one; sent as Authorization: Bearer")
	asJSON := fs.Bool("json", false, "use the JSON subprotocol (tickstream.v1.json) instead of MessagePack")
	bars := fs.String("bars", "1m", "bar `interval` of the TREND column (off: no column)")
	trend := fs.Int("trend", 15, "bars the TREND column spans")
	var serverCA serverCAFlag
	serverCA.register(fs)
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var syms []string
	for _, s := range args {
		if !codec.ValidSymbol([]byte(s)) {
			return usagef("invalid symbol %q: 1 to 32 of A-Z a-z 0-9 . _ : / -", s)
		}
		if !slices.Contains(syms, s) {
			syms = append(syms, s)
		}
	}
	if len(syms) == 0 {
		return usagef("no symbol: name one or more, e.g. tickstream watch AAPL MSFT")
	}
	url, err := watchURL(*rawURL)
	if err != nil {
		return badUsage(err)
	}
	if *trend < 1 || *trend > codec.MaxBarHistory {
		return usagef("--trend %d: want 1 to %d bars", *trend, codec.MaxBarHistory)
	}

	tlsConfig, err := serverCA.config()
	if err != nil {
		return err
	}

	w := &watcher{url: url, syms: syms, out: stdout, tty: isTerminal(stdout), token: *token != "", serverCA: serverCA, refused: make(chan subRefusal, 1)}
	if *bars != "off" {
		w.bars, w.trend = *bars, *trend
	}
	w.opts = client.Options{
		Header:    http.Header{},
		TLSConfig: tlsConfig,
		OnMessage: func(m *codec.Message) {
			w.dirty.Store(true)
			// A server without the interval, or without bars, refuses the
			// whole SUB (an ERROR naming no symbol): the drawing goroutine
			// subscribes again without bars.
			if m.Op == codec.OpError && len(m.Syms) == 0 && m.ID != 0 {
				select {
				case w.refused <- subRefusal{m.ID, m.Text}:
				default:
				}
			}
		},
		// Log lines would tear the table: what matters is in its header.
		Logger: slog.New(slog.DiscardHandler),
	}
	if *asJSON {
		w.opts.Format = codec.JSON
	}
	if *token != "" {
		w.opts.Header.Set("Authorization", "Bearer "+*token)
	}
	return w.run(ctx)
}

// watchURL turns what a user gives as --url into the WebSocket endpoint:
// http(s) becomes ws(s), a bare host:port ws://host:port, and an empty path
// /ws, so that the address the server prints for its dashboard works too.
func watchURL(raw string) (string, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "ws://" + s
	}
	u, err := neturl.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--url %q: want ws://host:port/ws, wss://, http(s)://host:port or host:port", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("--url %q: scheme %s: want ws, wss, http or https", raw, u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// isTerminal reports whether w is a character device, where the table is
// redrawn in place and colored.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// watcher is the state of `tickstream watch`. Only dirty is touched by the
// connection's read goroutine.
type watcher struct {
	url  string
	syms []string
	opts client.Options
	out  io.Writer
	tty  bool
	// token reports that --token was given, and serverCA --server-ca, for
	// the advice on a refusal.
	token    bool
	serverCA serverCAFlag
	// bars is the interval of the TREND column and trend the bars it
	// spans; "" and 0 without the column.
	bars  string
	trend int
	// refused carries the server's refusals of a whole SUB from the
	// connection's goroutine to the drawing one; barsSub is the id of the
	// current connection's SUB that asked for bars (0: none).
	refused chan subRefusal
	barsSub uint64
	// noTrend says why the TREND column has nothing: the server refused
	// bars. Subscriptions then ask for none, for good.
	noTrend string
	conn    *client.Conn // the current connection, nil between them

	dirty     atomic.Bool  // something changed since the last draw
	book      *client.Book // the current connection's, or the last one's while reconnecting
	connected bool         // a connection is up: book is live
	state     string       // the connection, in words
	buf       bytes.Buffer
	drawn     time.Time
}

// closedError is the end of a connection that was up.
type closedError struct {
	code   int
	reason string
}

func (e *closedError) Error() string {
	return fmt.Sprintf("connection closed: %d %s", e.code, e.reason)
}

func (w *watcher) run(ctx context.Context) error {
	if w.tty {
		io.WriteString(w.out, ansiHideCursor+ansiClear)
		defer io.WriteString(w.out, ansiShowCursor)
	}
	failed := 0 // reconnections since the last session that got HELLO
	for {
		w.setState("connecting to " + w.url)
		w.draw(time.Now())
		connected, err := w.session(ctx)
		w.connected = false
		if ctx.Err() != nil {
			return nil
		}
		if permanent(err) {
			err = w.advise(err)
			w.setState(err.Error())
			w.draw(time.Now())
			return err
		}
		if connected {
			failed = 0
		}
		failed++
		// Jitter spreads the reconnections of many watchers after a restart.
		wait := watchRetry.Delay(failed)
		delay := wait/2 + rand.N(wait/2+1)
		w.setState(fmt.Sprintf("reconnecting in %v (%v)", delay.Round(10*time.Millisecond), err))
		timer := time.NewTimer(delay)
		ok := redrawUntil(ctx, w, timer.C)
		timer.Stop()
		if !ok {
			return nil
		}
	}
}

// session connects, subscribes, and shows the table until the connection
// ends or ctx is canceled. connected reports whether HELLO came.
func (w *watcher) session(ctx context.Context) (connected bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, watchDialTimeout)
	conn, err := client.Dial(dctx, w.url, w.opts)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	w.book = conn.Book()
	select {
	case <-w.refused: // of the last connection
	default:
	}
	if err := w.subscribe(conn); err != nil {
		return true, err
	}
	w.connected = true
	w.conn = conn
	defer func() { w.conn = nil }()
	w.setState("connected to " + conn.Hello().ServerID)
	if !redrawUntil(ctx, w, conn.Done()) {
		return true, ctx.Err()
	}
	return true, &closedError{conn.CloseCode(), conn.CloseReason()}
}

// subRefusal is an ERROR that refused a whole SUB.
type subRefusal struct {
	id   uint64
	text string
}

// onRefused handles a refused SUB: when it asked for bars, the server has
// none of that interval (or none at all), and the symbols are subscribed
// again without them.
func (w *watcher) onRefused(r subRefusal) {
	if w.conn == nil || r.id != w.barsSub {
		return
	}
	w.noTrend = r.text
	if err := w.subscribe(w.conn); err != nil {
		w.setState("subscribe failed: " + err.Error())
	}
}

// subscribe sends the SUB of every symbol: with the bars of the TREND
// column unless there is none or the server refused them.
func (w *watcher) subscribe(conn *client.Conn) error {
	if w.bars == "" || w.noTrend != "" {
		w.barsSub = 0
		_, err := conn.Subscribe(w.syms, nil)
		return err
	}
	o := codec.DefaultSubOptions()
	o.Bars, o.BarCount = w.bars, w.trend
	id, err := conn.Subscribe(w.syms, &o)
	// Its refusal waits in w.refused until the drawing goroutine, this
	// one, reads it: after barsSub is set.
	w.barsSub = id
	return err
}

// permanent reports whether err will not go away by reconnecting: the
// server refused the request itself, or the credentials, or its certificate
// is not trusted.
func permanent(err error) bool {
	if client.CertificateUntrusted(err) {
		return true
	}
	var he *client.HandshakeError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return true
		}
	}
	// watch has one token: a close that wants new credentials is as final
	// as one that wants no retry at all.
	return codec.CloseCode(closeCode(err)).Reconnect() != codec.ReconnectBackoff
}

// advise adds to a refusal of the credentials, or of the server's
// certificate, what to do about it.
func (w *watcher) advise(err error) error {
	if client.CertificateUntrusted(err) {
		return w.serverCA.adviseUntrusted(err)
	}
	if closeCode(err) != int(codec.CloseNotAuthenticated) {
		return err
	}
	if !w.token {
		return fmt.Errorf("%w; the server authenticates its clients: pass a token with --token (mint one with 'tickstream token')", err)
	}
	return fmt.Errorf("%w; the server refused --token: mint a valid one with 'tickstream token' (the server's secret or key, --iss, --aud, a --ttl not passed)", err)
}

// closeCode returns the close code of a connection's end, 0 when err is
// not one.
func closeCode(err error) int {
	var ce *client.CloseError
	var closed *closedError
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.As(err, &closed):
		return closed.code
	}
	return 0
}

// redrawUntil redraws the table until until delivers or ctx is done, and
// reports which: true for until.
func redrawUntil[T any](ctx context.Context, w *watcher, until <-chan T) bool {
	period := watchRedraw
	if !w.tty {
		period = watchPlainRedraw
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	w.draw(time.Now())
	for {
		select {
		case <-ctx.Done():
			return false
		case <-until:
			return true
		case r := <-w.refused:
			w.onRefused(r)
		case now := <-tick.C:
			if w.dirty.Load() || (w.tty && now.Sub(w.drawn) >= watchIdleRedraw) {
				w.draw(now)
			}
		}
	}
}

func (w *watcher) setState(s string) {
	w.state = s
	w.dirty.Store(true)
}

func (w *watcher) draw(now time.Time) {
	w.dirty.Store(false)
	w.drawn = now
	w.buf.Reset()
	render(&w.buf, view{url: w.url, state: w.state, syms: w.syms, book: w.book, connected: w.connected, now: now, tty: w.tty,
		bars: w.bars, trend: w.trend, noTrend: w.noTrend})
	w.out.Write(w.buf.Bytes())
}

// view is what one drawing of the table shows.
type view struct {
	url   string
	state string
	syms  []string
	book  *client.Book // nil before the first connection
	// connected reports a live connection; otherwise the table shows
	// the last one's state, if any, as disconnected.
	connected bool
	now       time.Time
	tty       bool // redraw in place and color; plain text otherwise
	// bars and trend are the TREND column's interval and bars ("" and 0:
	// no column); noTrend is the server's refusal of bars.
	bars    string
	trend   int
	noTrend string
}

// render writes the table. On a terminal it overwrites the previous one:
// cursor home, every line cleared to its end, the screen cleared below, so
// that nothing is erased before it is redrawn (no flicker).
func render(buf *bytes.Buffer, v view) {
	eol := "\n"
	if v.tty {
		buf.WriteString(ansiHome)
		eol = ansiClearLine + "\n"
	}
	feed, detail := codec.StatusLive, ""
	var stats client.Stats
	if v.book != nil {
		feed, detail = v.book.FeedStatus()
		stats = v.book.Stats()
	}
	fmt.Fprintf(buf, "tickstream watch  %s  %s  ", v.url, v.state)
	switch {
	case !v.connected && v.book != nil:
		paint(buf, v.tty, ansiAlarm, " DISCONNECTED: prices as of the last connection ")
	case !v.connected:
		paint(buf, v.tty, ansiYellow, "disconnected")
	case feed == codec.StatusLive:
		buf.WriteString("feed live")
	case feed == codec.StatusStale:
		paint(buf, v.tty, ansiAlarm, " FEED STALE: "+detail+" ")
	default:
		paint(buf, v.tty, ansiYellow, "feed "+feed+": "+detail)
	}
	buf.WriteString(eol)
	var notes []string
	if stats.LastError != nil {
		notes = append(notes, "last error: "+stats.LastError.Error())
	}
	if stats.Violations > 0 {
		notes = append(notes, fmt.Sprintf("protocol violations: %d", stats.Violations))
	}
	if v.noTrend != "" {
		notes = append(notes, "no trend: "+v.noTrend)
	}
	buf.WriteString(strings.Join(notes, "  "))
	buf.WriteString(eol)

	fmt.Fprintf(buf, "%-12s %12s %12s %12s %9s %15s %8s", "SYMBOL", "BID", "ASK", "LAST", "CHG%", "VOLUME", "AGE")
	if v.trend > 0 {
		fmt.Fprintf(buf, "  TREND %d×%s", v.trend, v.bars)
	}
	buf.WriteString(eol)
	for _, sym := range v.syms {
		var e client.Entry
		ok := false
		if v.book != nil {
			e, ok = v.book.Entry(sym)
		}
		fmt.Fprintf(buf, "%-12s %12s %12s ", sym, price(&e, codec.FieldBid), price(&e, codec.FieldAsk))
		last, hasLast := e.Value(codec.FieldLast)
		prev, hasPrev := e.Value(codec.FieldPrevClose)
		color, change := "", "-"
		if hasLast && hasPrev && prev != 0 {
			pct := (last - prev) / prev * 100
			change = fmt.Sprintf("%+.2f%%", pct)
			switch {
			case pct > 0:
				color = ansiGreen
			case pct < 0:
				color = ansiRed
			}
		}
		paint(buf, v.tty, color, fmt.Sprintf("%12s", price(&e, codec.FieldLast)))
		buf.WriteByte(' ')
		paint(buf, v.tty, color, fmt.Sprintf("%9s", change))
		vol := "-"
		if x, ok := e.Value(codec.FieldVolume); ok {
			vol = groupThousands(strconv.FormatFloat(x, 'f', -1, 64))
		}
		age := "waiting"
		if ok {
			age = "-"
			if ts, has := e.Value(codec.FieldTS); has {
				age = formatAge(v.now.Sub(time.UnixMicro(int64(ts))))
			}
		}
		fmt.Fprintf(buf, " %15s %8s", vol, age)
		if v.trend > 0 {
			buf.WriteString("  ")
			writeTrend(buf, v, sym)
		}
		buf.WriteString(eol)
	}
	if v.tty {
		buf.WriteString(ansiClearBelow)
	} else {
		buf.WriteString("\n")
	}
}

// writeTrend writes sym's TREND cell: the change over its last v.trend bars
// and their sparkline, colored like the change on a terminal.
func writeTrend(buf *bytes.Buffer, v view, sym string) {
	var bars []codec.Bar
	if v.book != nil {
		if interval, _, b, ok := v.book.Bars(sym); ok && interval == v.bars {
			bars = b
		}
	}
	change, pct, spark := trendCell(bars, v.trend)
	color := ""
	switch {
	case pct > 0:
		color = ansiGreen
	case pct < 0:
		color = ansiRed
	}
	paint(buf, v.tty, color, fmt.Sprintf("%8s %s", change, spark))
}

// paint writes s in color on a terminal; color "" is none.
func paint(buf *bytes.Buffer, tty bool, color, s string) {
	if !tty || color == "" {
		buf.WriteString(s)
		return
	}
	buf.WriteString(color)
	buf.WriteString(s)
	buf.WriteString(ansiReset)
}

// price formats a price with at least two decimals, and all it has: a crypto
// quote of 0.00001234 must not read 0.00.
func price(e *client.Entry, f int) string {
	v, ok := e.Value(f)
	if !ok {
		return "-"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	switch i := strings.IndexByte(s, '.'); {
	case i < 0:
		return s + ".00"
	case len(s)-i == 2:
		return s + "0"
	}
	return s
}

// groupThousands puts commas between the thousands of a formatted number.
func groupThousands(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	sign := ""
	if strings.HasPrefix(intPart, "-") {
		sign, intPart = "-", intPart[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// formatAge writes how long ago an update happened, by its event time ts:
// after a reconnect the snapshot shows how old the price really is.
func formatAge(d time.Duration) string {
	d = max(d, 0) // clocks of server and client differ a little
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
