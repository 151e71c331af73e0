package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/internal/kafkatest"
)

// wireConn is a WebSocket client that sends arbitrary frames and records
// every decoded server message and the close code: the tool for checking
// the server's answers to bad input.
type wireConn struct {
	gws.BuiltinEventHandler
	t      *testing.T
	format codec.Format
	ws     *gws.Conn

	mu        sync.Mutex
	msgs      []codec.Message
	closeCode int
	closed    chan struct{}
}

func dialWire(t *testing.T, addr, query string, f codec.Format) *wireConn {
	t.Helper()
	rc := &wireConn{t: t, format: f, closed: make(chan struct{})}
	ws, _, err := gws.NewClient(rc, &gws.ClientOption{
		Addr:          "ws://" + addr + "/ws" + query,
		RequestHeader: http.Header{"Sec-WebSocket-Protocol": []string{f.String()}},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", query, err)
	}
	rc.ws = ws
	go ws.ReadLoop()
	t.Cleanup(func() {
		ws.WriteClose(1000, nil)
		select {
		case <-rc.closed:
		case <-time.After(5 * time.Second):
			t.Error("connection not closed 5s after the test")
		}
	})
	return rc
}

func (rc *wireConn) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var msg codec.Message
	err := rc.format.DecodeMessages(m.Bytes(), &msg, func(msg *codec.Message) error {
		cp := *msg
		cp.FieldNames = append([]string(nil), msg.FieldNames...)
		cp.Acks = append([]codec.SymbolID(nil), msg.Acks...)
		cp.Syms = append([]string(nil), msg.Syms...)
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, cp)
		rc.mu.Unlock()
		return nil
	})
	if err != nil {
		rc.t.Errorf("undecodable server frame %q: %v", m.Bytes(), err)
	}
}

func (rc *wireConn) OnClose(_ *gws.Conn, err error) {
	rc.mu.Lock()
	if ce, ok := err.(*gws.CloseError); ok {
		rc.closeCode = int(ce.Code)
	}
	rc.mu.Unlock()
	close(rc.closed)
}

func (rc *wireConn) send(frame []byte) {
	rc.t.Helper()
	op := gws.OpcodeBinary
	if rc.format == codec.JSON {
		op = gws.OpcodeText
	}
	if err := rc.ws.WriteMessage(op, frame); err != nil {
		rc.t.Fatalf("send: %v", err)
	}
}

// waitMsg waits for the first message from index from on that matches.
func (rc *wireConn) waitMsg(what string, from int, match func(*codec.Message) bool) (codec.Message, int) {
	rc.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc.mu.Lock()
		for i := from; i < len(rc.msgs); i++ {
			if match(&rc.msgs[i]) {
				m := rc.msgs[i]
				rc.mu.Unlock()
				return m, i
			}
		}
		rc.mu.Unlock()
		if time.Now().After(deadline) {
			rc.t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (rc *wireConn) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.msgs)
}

// pingPong proves the session still works: a PING gets its PONG.
func (rc *wireConn) pingPong(id uint64) {
	rc.t.Helper()
	from := rc.count()
	rc.send(rc.format.AppendPing(nil, id, 42))
	rc.waitMsg(fmt.Sprintf("PONG %d", id), from, func(m *codec.Message) bool { return m.Op == codec.OpPong && m.ID == id })
}

// TestBadClientInput sends every kind of bad request in both formats and
// checks the documented answer: an ERROR 400 with the request's id where
// it can be read, the session going on, and a bystander still served.
func TestBadClientInput(t *testing.T) {
	s := startServer(t, setup{Config: Config{MaxMessageSize: 1024}, Demo: demo.Config{Symbols: 50, Rate: 500}})
	bystander := dialWire(t, s.Addr(), "?symbols=AAPL", codec.Binary)
	bystander.waitMsg("bystander SNAPSHOT", 0, func(m *codec.Message) bool { return m.Op == codec.OpSnapshot })

	type badCase struct {
		name   string
		frame  string
		id     uint64 // id the ERROR names
		syms   []string
		format codec.Format
	}
	cases := []badCase{
		{"not MessagePack", "\xc1", 0, nil, codec.Binary},
		{"not an array", "\x81\xa1a\x01", 0, nil, codec.Binary},
		{"unknown op", "\x92\x63\x07", 7, nil, codec.Binary},
		{"SUB id of the wrong type", "\x93\x01\xa1x\x91\xa4AAPL", 0, nil, codec.Binary},
		{"SUB symbols not an array", "\x93\x01\x05\xa4AAPL", 5, nil, codec.Binary},
		{"SUB opts not a map", "\x94\x01\x06\x91\xa4AAPL\x01", 6, nil, codec.Binary},
		{"SUB invalid symbol", "\x93\x01\x08\x92\xa4AAPL\xa6bad sy", 8, []string{"bad sy"}, codec.Binary},
		{"UNSUB invalid symbol", "\x93\x02\x0b\x92\xa4AAPL\xa2a!", 11, []string{"a!"}, codec.Binary},
		{"SNAP not subscribed", "\x93\x03\x09\x91\xa4MSFT", 9, []string{"MSFT"}, codec.Binary},
		{"truncated", "\x93\x01\x0a", 0, nil, codec.Binary},
		{"JSON syntax", `[1,`, 0, nil, codec.JSON},
		{"JSON unknown op", `[99,11]`, 11, nil, codec.JSON},
		{"JSON wrong type", `[1,12,"AAPL"]`, 12, nil, codec.JSON},
		{"JSON invalid symbol", `[1,13,["AAPL","way-too-long-symbol-name-over-32-chars"]]`, 13, []string{"way-too-long-symbol-name-over-32-chars"}, codec.JSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialWire(t, s.Addr(), "", tc.format)
			rc.waitMsg("HELLO", 0, func(m *codec.Message) bool { return m.Op == codec.OpHello })
			from := rc.count()
			rc.send([]byte(tc.frame))
			e, _ := rc.waitMsg("ERROR", from, func(m *codec.Message) bool { return m.Op == codec.OpError })
			if e.Code != 400 || e.ID != tc.id || strings.Join(e.Syms, ",") != strings.Join(tc.syms, ",") {
				t.Errorf("got ERROR id %d code %d %q syms %v; want id %d code 400 syms %v", e.ID, e.Code, e.Text, e.Syms, tc.id, tc.syms)
			}
			if e.Text == "" {
				t.Error("ERROR without a message")
			}
			rc.pingPong(1000)
		})
	}

	t.Run("oversized frame closes with 1009", func(t *testing.T) {
		rc := dialWire(t, s.Addr(), "", codec.Binary)
		rc.waitMsg("HELLO", 0, func(m *codec.Message) bool { return m.Op == codec.OpHello })
		syms := make([]string, 300)
		for i := range syms {
			syms[i] = fmt.Sprintf("SYM%d", i)
		}
		opts := codec.DefaultSubOptions()
		rc.send(codec.Binary.AppendSub(nil, 1, syms, &opts))
		select {
		case <-rc.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("not closed after an oversized frame")
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.closeCode != 1009 {
			t.Errorf("close code %d, want 1009", rc.closeCode)
		}
	})

	from := bystander.count()
	bystander.waitMsg("bystander DELTA after the bad input", from, func(m *codec.Message) bool { return m.Op == codec.OpDelta })
	bystander.pingPong(1)
}

// TestHandshake checks the subprotocol choice and the subscription at
// connect, as an HTTP client sees the upgrade.
func TestHandshake(t *testing.T) {
	s := startServer(t, setup{Config: Config{Compression: true}, Demo: demo.Config{Symbols: 20, Rate: 200}})
	cases := []struct {
		name       string
		query      string
		protocols  string
		extensions string
		wantStatus int
		wantProto  string
		wantBody   string
		wantExt    []string
	}{
		{name: "no offer gets tickstream.v1 without a header", wantStatus: http.StatusSwitchingProtocols},
		{name: "binary", protocols: "tickstream.v1", wantStatus: http.StatusSwitchingProtocols, wantProto: "tickstream.v1"},
		{name: "json", protocols: "tickstream.v1.json", wantStatus: http.StatusSwitchingProtocols, wantProto: "tickstream.v1.json"},
		{name: "client preference order", protocols: "tickstream.v1.json, tickstream.v1", wantStatus: http.StatusSwitchingProtocols, wantProto: "tickstream.v1.json"},
		{name: "unknown offers skipped", protocols: "mqtt, tickstream.v1", wantStatus: http.StatusSwitchingProtocols, wantProto: "tickstream.v1"},
		{name: "only unknown offers", protocols: "mqtt, v2.tickstream", wantStatus: http.StatusBadRequest, wantBody: "subprotocol"},
		{name: "invalid symbol at connect", query: "?symbols=AAPL,bad%20sym", wantStatus: http.StatusBadRequest, wantBody: "bad sym"},
		{name: "bad maxHz at connect", query: "?symbols=AAPL&maxHz=fast", wantStatus: http.StatusBadRequest, wantBody: "maxHz"},
		{name: "NaN maxHz at connect", query: "?symbols=AAPL&maxHz=NaN", wantStatus: http.StatusBadRequest, wantBody: "maxHz"},
		{name: "unknown field at connect", query: "?symbols=AAPL&fields=bid,color", wantStatus: http.StatusBadRequest, wantBody: "color"},
		// Every client gets the same deflate parameters, whatever it asks
		// for: frames then never depend on a per-connection window (the
		// gws Broadcaster corrupts streams when clients differ).
		{name: "deflate with context takeover asked", extensions: "permessage-deflate; client_max_window_bits",
			wantStatus: http.StatusSwitchingProtocols, wantExt: []string{"permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"}},
		{name: "deflate without context takeover asked", extensions: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			wantStatus: http.StatusSwitchingProtocols, wantExt: []string{"permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", "http://"+s.Addr()+"/ws"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if tc.protocols != "" {
				req.Header.Set("Sec-WebSocket-Protocol", tc.protocols)
			}
			if tc.extensions != "" {
				req.Header.Set("Sec-WebSocket-Extensions", tc.extensions)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tc.wantProto {
				t.Errorf("Sec-WebSocket-Protocol %q, want %q", got, tc.wantProto)
			}
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			for _, want := range tc.wantExt {
				if !strings.Contains(ext, want) {
					t.Errorf("Sec-WebSocket-Extensions %q lacks %q", ext, want)
				}
			}
			if tc.wantBody != "" {
				body := make([]byte, 512)
				n, _ := resp.Body.Read(body)
				if !strings.Contains(string(body[:n]), tc.wantBody) {
					t.Errorf("body %q does not say %q", body[:n], tc.wantBody)
				}
			}
		})
	}

	t.Run("subscribe at connect: HELLO, ACK 0, SNAPSHOT of the listed fields", func(t *testing.T) {
		rc := dialWire(t, s.Addr(), "?symbols=AAPL,MSFT&fields=bid,ask&maxHz=50", codec.JSON)
		rc.waitMsg("SNAPSHOT", 0, func(m *codec.Message) bool { return m.Op == codec.OpSnapshot })
		rc.waitMsg("second SNAPSHOT", 0, func(m *codec.Message) bool {
			return m.Op == codec.OpSnapshot && m.SID != rc.msgs[2].SID
		})
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.msgs[0].Op != codec.OpHello || rc.msgs[1].Op != codec.OpAck || rc.msgs[1].ID != 0 || len(rc.msgs[1].Acks) != 2 {
			t.Fatalf("first messages %+v, %+v; want HELLO, then ACK id 0 of two symbols", rc.msgs[0], rc.msgs[1])
		}
		allowed := codec.FieldMask(1<<codec.FieldBid | 1<<codec.FieldAsk)
		for _, m := range rc.msgs[2:] {
			if (m.Op == codec.OpSnapshot || m.Op == codec.OpDelta) && m.Mask&^allowed != 0 {
				t.Errorf("op %d carries fields %b outside bid, ask", m.Op, m.Mask)
			}
		}
	})
}

// TestBadRecords writes undecodable and wrongly typed records into the
// topic once the simulator has stopped: each is counted and skipped, the
// store is unchanged, and a good record behind them is applied.
func TestBadRecords(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 10, Rate: 1000, Duration: 500 * time.Millisecond, Partitions: 1}})
	waitUntil(t, 20*time.Second, "simulator done", func() bool {
		a := s.node.Ingest().Stats().Records
		time.Sleep(300 * time.Millisecond)
		return a > 0 && s.node.Ingest().Stats().Records == a
	})
	aapl := s.node.Store().Lookup([]byte("AAPL"))
	if aapl == nil {
		t.Fatal("AAPL not in the store")
	}
	before := *aapl.Load()
	rejectedBefore := s.node.Ingest().Stats().Rejected

	bad := []kafka.Message{
		{Key: []byte("AAPL"), Value: []byte("\xc1\xc1")},
		{Key: []byte("AAPL"), Value: []byte(`{"bid":"cheap"}`)},
		{Key: []byte("AAPL"), Value: []byte(`{"bid":1,`)},
		{Key: []byte("AAPL"), Value: []byte("\x81\xa3bid\xa4high")},
		{Key: []byte("bad sym"), Value: []byte(`{"bid":1}`)},
		{Key: []byte("AAPL"), Value: []byte(`{"bid":-1e400}`)},
	}
	good := kafka.Message{Key: []byte("ZZGOOD"), Value: []byte(`{"bid":12.5,"ts":1}`)}
	kafkatest.Produce(t, s.node.Config().Brokers, "ticks", nil, append(bad, good))
	waitUntil(t, 20*time.Second, "the good record behind the bad ones", func() bool {
		sym := s.node.Store().Lookup([]byte("ZZGOOD"))
		return sym != nil && sym.Load().Seq == 1
	})
	after := *aapl.Load()
	if after.Seq != before.Seq || after.Values != before.Values || after.Mask != before.Mask {
		t.Errorf("AAPL changed by bad records: seq %d → %d", before.Seq, after.Seq)
	}
	var skipped uint64
	for reason, n := range s.node.Ingest().Stats().Rejected {
		skipped += n - rejectedBefore[reason]
	}
	if skipped != uint64(len(bad)) {
		t.Errorf("%d records counted as rejected, want %d (%v)", skipped, len(bad), s.node.Ingest().Stats().Rejected)
	}
}
