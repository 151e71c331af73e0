package server

import (
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
)

// TestTokenRenewal holds AUTH to PROTOCOL.md §5.5: a token renewed in-band
// outlives the first one's exp on the same connection; a grant that shrinks
// drops the subscriptions it no longer allows, with ERROR 403 before
// AUTHED; a bad token gets ERROR 401 and changes nothing; and the renewed
// expiry still closes with 4001 when nothing renews it again.
func TestTokenRenewal(t *testing.T) {
	auth, err := NewAuthenticator(AuthConfig{Secret: []byte(testSecret), Audience: "dash"})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, setup{Config: Config{Auth: auth}, Demo: demo.Config{Symbols: 10, Rate: 500}})
	aud := func(c *Claims) { c.Audience = jwt.ClaimStrings{"dash"} }
	// exp has a resolution of one second: 2s is always in the future.
	firstExp := time.Now().Add(2 * time.Second)
	first := token(t, []string{"AAPL", "MSFT", "NVDA"}, firstExp, aud)
	c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws?symbols=AAPL,MSFT,NVDA&token="+first, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	ack := c.find(t, "ACK of the connect-time SUB", func(m *codec.Message) bool { return m.Op == codec.OpAck })
	sids := map[string]uint32{}
	for _, a := range ack.Acks {
		sids[a.Sym] = a.SID
	}

	refused := []struct {
		name  string
		id    uint64
		token string
	}{
		{"bad signature", 2, first[:len(first)-2] + "xx"},
		{"expired", 3, token(t, []string{"*"}, time.Now().Add(-time.Minute), aud)},
		{"wrong audience", 4, token(t, []string{"*"}, time.Now().Add(time.Hour), nil)},
	}
	for _, r := range refused {
		c.send(t, codec.Binary.AppendAuth(nil, r.id, r.token))
		c.find(t, "ERROR 401 for the "+r.name+" token", func(m *codec.Message) bool {
			return m.Op == codec.OpError && m.ID == r.id && m.Code == 401
		})
	}

	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c.send(t, codec.Binary.AppendAuth(nil, 5, token(t, []string{"AAPL", "MSFT"}, exp, aud)))
	authed := c.find(t, "AUTHED", func(m *codec.Message) bool { return m.Op == codec.OpAuthed && m.ID == 5 })
	if authed.ExpiresUs != exp.UnixMicro() {
		t.Errorf("AUTHED expiry %d, want %d", authed.ExpiresUs, exp.UnixMicro())
	}
	msgs := c.messages()
	at := slices.IndexFunc(msgs, func(m codec.Message) bool { return m.Op == codec.OpAuthed })
	dropped := slices.IndexFunc(msgs, func(m codec.Message) bool { return m.Op == codec.OpError && m.ID == 5 })
	if dropped < 0 || dropped > at || msgs[dropped].Code != 403 || !slices.Equal(msgs[dropped].Syms, []string{"NVDA"}) {
		t.Fatalf("before AUTHED: want ERROR 403 naming NVDA, got %+v", msgs[:at+1])
	}

	// Past the first token's exp the connection is still open, and NVDA
	// is no longer delivered while AAPL is.
	time.Sleep(time.Until(firstExp.Add(time.Second)))
	select {
	case <-c.done:
		code, reason := c.closed(t)
		t.Fatalf("closed %d %q after a renewal", code, reason)
	default:
	}
	c.send(t, codec.Binary.AppendPing(nil, 6, 1))
	c.find(t, "PONG", func(m *codec.Message) bool { return m.Op == codec.OpPong && m.ID == 6 })
	msgs = c.messages()
	for _, m := range msgs[at+1:] {
		if (m.Op == codec.OpDelta || m.Op == codec.OpSnapshot) && m.SID == sids["NVDA"] {
			t.Fatalf("NVDA delivered after its subscription was revoked: %+v", m)
		}
	}
	if !slices.ContainsFunc(msgs[at+1:], func(m codec.Message) bool { return m.Op == codec.OpDelta && m.SID == sids["AAPL"] }) {
		t.Error("no DELTA of AAPL after the renewal")
	}
	// The new grant decides SUB too.
	c.send(t, codec.Binary.AppendSub(nil, 7, []string{"NVDA"}, nil))
	c.find(t, "ERROR 403 for NVDA", func(m *codec.Message) bool { return m.Op == codec.OpError && m.ID == 7 && m.Code == 403 })

	// A renewal to a short-lived token: 4001 at its exp.
	c.send(t, codec.Binary.AppendAuth(nil, 8, token(t, []string{"*"}, time.Now().Add(2*time.Second), aud)))
	c.find(t, "AUTHED", func(m *codec.Message) bool { return m.Op == codec.OpAuthed && m.ID == 8 })
	if code, reason := c.closed(t); code != 4001 {
		t.Errorf("close %d %q at the renewed token's exp, want 4001", code, reason)
	}
}

// TestAuthWithoutAuthentication: a node that does not authenticate
// answers AUTH with AUTHED and expiry 0.
func TestAuthWithoutAuthentication(t *testing.T) {
	s := startServer(t, setup{Demo: demo.Config{Symbols: 5, Rate: 50}})
	c, _, err := dialRaw(t, "ws://"+s.Addr()+"/ws", nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c.send(t, codec.Binary.AppendAuth(nil, 1, "anything"))
	if m := c.find(t, "AUTHED", func(m *codec.Message) bool { return m.Op == codec.OpAuthed }); m.ID != 1 || m.ExpiresUs != 0 {
		t.Errorf("AUTHED %+v, want id 1 and expiry 0", m)
	}
}
