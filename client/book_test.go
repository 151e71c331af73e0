package client

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// msg appends one server message in format f.
type msg func(f codec.Format, dst []byte) []byte

// fv is a field and its value.
type fv struct {
	f int
	v float64
}

func hello() msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendHello(dst, "node-1", 1000) }
}

func ack(id uint64, pairs ...codec.SymbolID) msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendAck(dst, id, pairs) }
}

func sid(sym string, id uint32) codec.SymbolID { return codec.SymbolID{Sym: sym, SID: id} }

func state(op codec.Op, id uint32, seq uint64, fvs ...fv) msg {
	var mask codec.FieldMask
	var values [codec.NumFields]float64
	for _, x := range fvs {
		mask |= 1 << x.f
		values[x.f] = x.v
	}
	return func(f codec.Format, dst []byte) []byte { return f.AppendState(dst, op, id, seq, mask, &values) }
}

func snapshot(id uint32, seq uint64, fvs ...fv) msg { return state(codec.OpSnapshot, id, seq, fvs...) }
func delta(id uint32, seq uint64, fvs ...fv) msg    { return state(codec.OpDelta, id, seq, fvs...) }

func pong(id uint64) msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendPong(dst, id, f.AppendNumber(nil, 1.5), 42) }
}

func serverError(id uint64, code int, syms ...string) msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendError(dst, id, code, "refused", syms) }
}

func status(s string) msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendStatus(dst, s, "ingest lost its source") }
}

func heartbeat() msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendHeartbeat(dst, 1) }
}

// raw is a message written by hand, in each format.
func raw(binary, json string) msg {
	return func(f codec.Format, dst []byte) []byte {
		if f == codec.JSON {
			return append(dst, json...)
		}
		return append(dst, binary...)
	}
}

// trailing adds an element that v1 does not know at the end of m.
func trailing(m msg) msg {
	return func(f codec.Format, dst []byte) []byte {
		start := len(dst)
		dst = m(f, dst)
		if f == codec.JSON {
			return append(dst[:len(dst)-1], `,"later",7]`...)
		}
		dst[start]++ // fixarray header: one more element
		return append(dst, 0xa5, 'l', 'a', 't', 'e', 'r')
	}
}

// step is one thing that happens to a Book: a request sent or a frame
// received.
type step func(t *testing.T, b *Book, f codec.Format)

func sub(id uint64, syms ...string) step {
	return func(t *testing.T, b *Book, f codec.Format) { b.NoteSub(id, syms, nil) }
}

func subNoSnap(id uint64, syms ...string) step {
	return func(t *testing.T, b *Book, f codec.Format) {
		opts := codec.DefaultSubOptions()
		opts.Snap = false
		b.NoteSub(id, syms, &opts)
	}
}

func unsub(id uint64, syms ...string) step {
	return func(t *testing.T, b *Book, f codec.Format) { b.NoteUnsub(id, syms) }
}

func snapReq(id uint64, syms ...string) step {
	return func(t *testing.T, b *Book, f codec.Format) { b.NoteSnap(id, syms) }
}

func frame(f codec.Format, msgs ...msg) []byte {
	var dst []byte
	for _, m := range msgs {
		dst = m(f, f.AppendSeparator(dst))
	}
	return dst
}

// recv feeds msgs in one frame.
func recv(msgs ...msg) step {
	return func(t *testing.T, b *Book, f codec.Format) {
		t.Helper()
		if err := b.Feed(f, frame(f, msgs...), time.Unix(1, 0), nil); err != nil {
			t.Fatalf("Feed: %v", err)
		}
	}
}

// recvBad feeds msgs in one frame that must fail to decode.
func recvBad(msgs ...msg) step {
	return func(t *testing.T, b *Book, f codec.Format) {
		t.Helper()
		if err := b.Feed(f, frame(f, msgs...), time.Unix(1, 0), nil); err == nil {
			t.Fatal("Feed of a broken frame returned no error")
		}
	}
}

type wantState struct {
	seq    uint64
	values map[string]float64
}

const (
	bid  = codec.FieldBid
	ask  = codec.FieldAsk
	last = codec.FieldLast
)

func TestBook(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		violations []ViolationKind
		states     map[string]*wantState // nil: State must report !ok
		symbols    []string
		late       uint64
	}{
		{
			name: "snapshot then deltas",
			steps: []step{
				sub(1, "AAPL"),
				recv(hello()),
				recv(ack(1, sid("AAPL", 1)), snapshot(1, 5, fv{bid, 1.5}, fv{ask, 2}), delta(1, 6, fv{bid, 1.25})),
				recv(delta(1, 8, fv{last, 3})),
			},
			states:  map[string]*wantState{"AAPL": {8, map[string]float64{"bid": 1.25, "ask": 2, "last": 3}}},
			symbols: []string{"AAPL"},
		},
		{
			name: "every message in one frame",
			steps: []step{
				sub(1, "A", "B"),
				recv(hello(), ack(1, sid("A", 1), sid("B", 2)), snapshot(1, 1, fv{bid, 10}), snapshot(2, 0),
					heartbeat(), delta(2, 1, fv{ask, 20}), status(codec.StatusStale), pong(2)),
			},
			states: map[string]*wantState{
				"A": {1, map[string]float64{"bid": 10}},
				"B": {1, map[string]float64{"ask": 20}},
			},
			symbols: []string{"A", "B"},
		},
		{
			name:    "subscription of the upgrade URL (ACK 0)",
			steps:   []step{recv(hello(), ack(0, sid("A", 7)), snapshot(7, 3, fv{last, 1}))},
			states:  map[string]*wantState{"A": {3, map[string]float64{"last": 1}}},
			symbols: []string{"A"},
		},
		{
			name:       "delta before snapshot",
			steps:      []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), delta(1, 2, fv{bid, 1}))},
			violations: []ViolationKind{ViolationDeltaBeforeSnapshot},
			states:     map[string]*wantState{"A": {2, map[string]float64{"bid": 1}}},
			symbols:    []string{"A"},
		},
		{
			name:       "delta at the same seq",
			steps:      []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), delta(1, 5, fv{bid, 1}))},
			violations: []ViolationKind{ViolationSeq},
			symbols:    []string{"A"},
		},
		{
			name:       "delta seq going back",
			steps:      []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), delta(1, 6), delta(1, 4))},
			violations: []ViolationKind{ViolationSeq},
			symbols:    []string{"A"},
		},
		{
			name:    "delta skipping seq values (conflation)",
			steps:   []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), delta(1, 9, fv{bid, 1}))},
			states:  map[string]*wantState{"A": {9, map[string]float64{"bid": 1}}},
			symbols: []string{"A"},
		},
		{
			name: "SNAP resnapshot at the same seq",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5, fv{bid, 1}, fv{ask, 2})),
				snapReq(2, "A"), recv(snapshot(1, 5, fv{bid, 1})),
			},
			states:  map[string]*wantState{"A": {5, map[string]float64{"bid": 1}}},
			symbols: []string{"A"},
		},
		{
			name: "SNAP resnapshot below the previous seq",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), delta(1, 6)),
				snapReq(2, "A"), recv(snapshot(1, 5)),
			},
			violations: []ViolationKind{ViolationSeq},
			symbols:    []string{"A"},
		},
		{
			name:       "snapshot nobody asked for",
			steps:      []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), snapshot(1, 6))},
			violations: []ViolationKind{ViolationExtraSnapshot},
			symbols:    []string{"A"},
		},
		{
			name:       "unknown sid",
			steps:      []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), delta(2, 6))},
			violations: []ViolationKind{ViolationUnknownSID},
			symbols:    []string{"A"},
		},
		{
			name: "messages before the UNSUB took effect are ignored",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5, fv{bid, 1})),
				unsub(2, "A"), recv(delta(1, 6, fv{bid, 2})),
			},
			states: map[string]*wantState{"A": nil},
			late:   1,
		},
		{
			name: "message after the UNSUB took effect",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5)),
				unsub(2, "A"), recv(delta(1, 6), pong(3), delta(1, 7)),
			},
			violations: []ViolationKind{ViolationNotSubscribed},
			states:     map[string]*wantState{"A": nil},
			late:       1,
		},
		{
			name: "late message seq still checked",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5)),
				unsub(2, "A"), recv(delta(1, 5)),
			},
			violations: []ViolationKind{ViolationSeq},
			late:       1,
		},
		{
			name: "resubscribe after UNSUB starts over",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5, fv{ask, 9}), delta(1, 6, fv{bid, 1})),
				unsub(2, "A"), sub(3, "A"),
				recv(delta(1, 7, fv{bid, 2})), // sent before the server saw the UNSUB
				recv(ack(3, sid("A", 1)), snapshot(1, 7, fv{last, 9}), delta(1, 8, fv{bid, 3})),
			},
			states:  map[string]*wantState{"A": {8, map[string]float64{"last": 9, "bid": 3}}},
			symbols: []string{"A"},
			late:    1,
		},
		{
			name: "resubscribe: delta before the new snapshot",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5)),
				unsub(2, "A"), sub(3, "A"), recv(ack(3, sid("A", 1)), delta(1, 6)),
			},
			violations: []ViolationKind{ViolationDeltaBeforeSnapshot},
			symbols:    []string{"A"},
		},
		{
			name: "resubscribe: snapshot below the old seq",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5)),
				unsub(2, "A"), sub(3, "A"), recv(ack(3, sid("A", 1)), snapshot(1, 4)),
			},
			violations: []ViolationKind{ViolationSeq},
			symbols:    []string{"A"},
		},
		{
			name:    "UNSUB sent before the ACK came",
			steps:   []step{sub(1, "A"), unsub(2, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5))},
			states:  map[string]*wantState{"A": nil},
			symbols: nil,
			late:    1,
		},
		{
			name: "resubscribe without UNSUB sends a fresh snapshot",
			steps: []step{
				sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5, fv{bid, 1})),
				sub(2, "A"), recv(delta(1, 6, fv{bid, 2}), ack(2, sid("A", 1)), snapshot(1, 6, fv{ask, 3})),
			},
			states:  map[string]*wantState{"A": {6, map[string]float64{"ask": 3}}},
			symbols: []string{"A"},
		},
		{
			name:    "snap false: deltas without a snapshot",
			steps:   []step{subNoSnap(1, "A"), recv(hello(), ack(1, sid("A", 1)), delta(1, 3, fv{bid, 4}))},
			states:  map[string]*wantState{"A": {3, map[string]float64{"bid": 4}}},
			symbols: []string{"A"},
		},
		{
			name:    "rejected symbol",
			steps:   []step{sub(1, "A", "B"), recv(hello(), serverError(1, 404, "B"), ack(1, sid("A", 1)), snapshot(1, 0))},
			states:  map[string]*wantState{"A": {0, map[string]float64{}}, "B": nil},
			symbols: []string{"A"},
		},
		{
			name:       "SUB without ACK",
			steps:      []step{sub(1, "A"), recv(hello(), pong(2))},
			violations: []ViolationKind{ViolationAck},
			states:     map[string]*wantState{"A": nil},
		},
		{
			name:   "SUB that did not decode gets only an ERROR",
			steps:  []step{sub(1, "A"), recv(hello(), serverError(1, 400), pong(2))},
			states: map[string]*wantState{"A": nil},
		},
		{
			name:       "ACK of no SUB",
			steps:      []step{recv(hello(), ack(5, sid("A", 1)))},
			violations: []ViolationKind{ViolationAck},
			symbols:    []string{"A"},
		},
		{
			name:       "sid changes",
			steps:      []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 1)), sub(2, "A"), recv(ack(2, sid("A", 2)), snapshot(2, 1))},
			violations: []ViolationKind{ViolationSID},
			symbols:    []string{"A"},
		},
		{
			name: "sid of a forgotten symbol named another",
			steps: []step{sub(1, "X1", "X2"), recv(hello(), ack(1, sid("X1", 1), sid("X2", 2)), snapshot(1, 0), snapshot(2, 0)),
				unsub(2, "X1", "X2"), sub(3, "X4"), recv(ack(3, sid("X4", 2)), snapshot(2, 0))},
			states:  map[string]*wantState{"X4": {0, map[string]float64{}}},
			symbols: []string{"X4"},
		},
		{
			name: "forgotten symbol back with another sid",
			steps: []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 0)),
				unsub(2, "A"), sub(3, "A"), recv(ack(3, sid("A", 5)), snapshot(5, 0))},
			states:  map[string]*wantState{"A": {0, map[string]float64{}}},
			symbols: []string{"A"},
		},
		{
			name: "sid of a symbol whose UNSUB is not processed",
			steps: []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 4)),
				sub(2, "B"), unsub(3, "A"), recv(ack(2, sid("B", 1)))},
			violations: []ViolationKind{ViolationSID},
			symbols:    []string{"B"},
		},
		{
			name: "SNAP after UNSUB and re-SUB, before their replies",
			steps: []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 1)),
				unsub(2, "A"), sub(3, "A"), snapReq(4, "A"), recv(ack(3, sid("A", 1)), snapshot(1, 2), snapshot(1, 2))},
			states:  map[string]*wantState{"A": {2, map[string]float64{}}},
			symbols: []string{"A"},
		},
		{
			name: "SNAP after the UNSUB took effect, before the re-SUB's ACK",
			steps: []step{sub(1, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 1)),
				unsub(2, "A"), sub(3, "A"), recv(pong(2)), snapReq(4, "A"), recv(ack(3, sid("A", 1)), snapshot(1, 2), snapshot(1, 2))},
			states:  map[string]*wantState{"A": {2, map[string]float64{}}},
			symbols: []string{"A"},
		},
		{
			name:       "one sid for two symbols",
			steps:      []step{sub(1, "A", "B"), recv(hello(), ack(1, sid("A", 1), sid("B", 1)))},
			violations: []ViolationKind{ViolationSID},
			symbols:    []string{"A", "B"},
		},
		{
			name:       "first message not HELLO",
			steps:      []step{sub(1, "A"), recv(ack(1, sid("A", 1)), snapshot(1, 1))},
			violations: []ViolationKind{ViolationHello},
			symbols:    []string{"A"},
		},
		{
			name:       "second HELLO",
			steps:      []step{recv(hello()), recv(hello())},
			violations: []ViolationKind{ViolationHello},
		},
		{
			name: "unknown ops ignored",
			steps: []step{
				sub(1, "A"),
				recv(hello(), raw("\x93\x63\x01\xa1x", `[99,1,"x"]`), ack(1, sid("A", 1)), raw("\x91\x1f", `[31]`), snapshot(1, 2, fv{bid, 1})),
			},
			states:  map[string]*wantState{"A": {2, map[string]float64{"bid": 1}}},
			symbols: []string{"A"},
		},
		{
			name: "trailing elements ignored",
			steps: []step{
				sub(1, "A"),
				recv(trailing(hello()), trailing(ack(1, sid("A", 1))), trailing(snapshot(1, 2, fv{bid, 1})), trailing(delta(1, 3, fv{ask, 2}))),
			},
			states:  map[string]*wantState{"A": {3, map[string]float64{"bid": 1, "ask": 2}}},
			symbols: []string{"A"},
		},
		{
			name: "undecodable frame",
			steps: []step{
				sub(1, "A"),
				recvBad(hello(), ack(1, sid("A", 1)), snapshot(1, 2), raw("\xc1", "{")),
			},
			violations: []ViolationKind{ViolationBadFrame},
			states:     map[string]*wantState{"A": {2, map[string]float64{}}},
			symbols:    []string{"A"},
		},
	}
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		for _, tt := range tests {
			t.Run(f.String()+"/"+tt.name, func(t *testing.T) {
				b := NewBook()
				for _, s := range tt.steps {
					s(t, b, f)
				}
				var kinds []ViolationKind
				for _, v := range b.Violations() {
					kinds = append(kinds, v.Kind)
				}
				if !slices.Equal(kinds, tt.violations) {
					t.Errorf("violations = %v, want kinds %v", b.Violations(), tt.violations)
				}
				for sym, want := range tt.states {
					seq, values, ok := b.State(sym)
					switch {
					case want == nil && ok:
						t.Errorf("State(%s) = %d %v, want none", sym, seq, values)
					case want != nil && !ok:
						t.Errorf("State(%s): none, want seq %d %v", sym, want.seq, want.values)
					case want != nil && (seq != want.seq || !maps.Equal(values, want.values)):
						t.Errorf("State(%s) = %d %v, want %d %v", sym, seq, values, want.seq, want.values)
					}
				}
				if got := b.Symbols(); !slices.Equal(got, tt.symbols) {
					t.Errorf("Symbols() = %v, want %v", got, tt.symbols)
				}
				if got := b.Stats().Late; got != tt.late {
					t.Errorf("Stats().Late = %d, want %d", got, tt.late)
				}
			})
		}
	}
}

func TestBookStats(t *testing.T) {
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		t.Run(f.String(), func(t *testing.T) {
			b := NewBook()
			b.NoteSub(1, []string{"A", "B"}, nil)
			frames := [][]byte{
				frame(f, hello(), status(codec.StatusStale)),
				frame(f, serverError(1, 404, "B"), ack(1, sid("A", 1)), snapshot(1, 1), delta(1, 2), delta(1, 3)),
				frame(f, heartbeat(), raw("\x91\x63", "[99]")),
			}
			var size uint64
			var seen []codec.Op
			for _, fr := range frames {
				size += uint64(len(fr))
				if err := b.Feed(f, fr, time.Unix(1, 0), func(m *codec.Message) { seen = append(seen, m.Op) }); err != nil {
					t.Fatal(err)
				}
			}
			st := b.Stats()
			wantOps := []codec.Op{codec.OpHello, codec.OpStatus, codec.OpError, codec.OpAck, codec.OpSnapshot,
				codec.OpDelta, codec.OpDelta, codec.OpHeartbeat, 99}
			if !slices.Equal(seen, wantOps) {
				t.Errorf("callback saw ops %v, want %v", seen, wantOps)
			}
			wantMsgs := map[codec.Op]uint64{codec.OpHello: 1, codec.OpStatus: 1, codec.OpError: 1, codec.OpAck: 1,
				codec.OpSnapshot: 1, codec.OpDelta: 2, codec.OpHeartbeat: 1, 99: 1}
			if st.Frames != 3 || st.Bytes != size || !maps.Equal(st.Messages, wantMsgs) {
				t.Errorf("Stats = %d frames, %d bytes, %v; want 3, %d, %v", st.Frames, st.Bytes, st.Messages, size, wantMsgs)
			}
			if !maps.Equal(st.Errors, map[int]uint64{404: 1}) || st.LastError == nil ||
				st.LastError.Code != 404 || st.LastError.ID != 1 || !slices.Equal(st.LastError.Syms, []string{"B"}) {
				t.Errorf("Stats errors = %v, last %v", st.Errors, st.LastError)
			}
			if state, detail := b.FeedStatus(); state != codec.StatusStale || detail == "" {
				t.Errorf("FeedStatus() = %q, %q", state, detail)
			}
			h, ok := b.Hello()
			if !ok || h.Version != 1 || h.ServerID != "node-1" || h.Heartbeat != time.Second || !slices.Equal(h.FieldNames, codec.FieldNames[:]) {
				t.Errorf("Hello() = %+v, %v", h, ok)
			}
			if sym, ok := b.Symbol(1); sym != "A" || !ok {
				t.Errorf("Symbol(1) = %q, %v", sym, ok)
			}
			if e, ok := b.Entry("A"); !ok || e.Seq != 3 || !e.Updated.Equal(time.Unix(1, 0)) {
				t.Errorf("Entry(A) = %+v, %v", e, ok)
			}
		})
	}
}

func TestBookViolationDetail(t *testing.T) {
	b := NewBook()
	b.NoteSub(1, []string{"A"}, nil)
	feed := frame(codec.Binary, hello(), ack(1, sid("A", 3)), snapshot(3, 10), delta(3, 9))
	if err := b.Feed(codec.Binary, feed, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	got := b.Violations()
	want := Violation{Kind: ViolationSeq, Op: codec.OpDelta, Symbol: "A", SID: 3, Seq: 9, PrevSeq: 10}
	if len(got) != 1 {
		t.Fatalf("violations = %v, want one", got)
	}
	v := got[0]
	v.Detail = ""
	if v != want {
		t.Errorf("violation = %+v, want %+v", v, want)
	}
	if s := got[0].String(); !strings.Contains(s, "seq A") || !strings.Contains(s, "9") {
		t.Errorf("String() = %q", s)
	}
}

func TestBookKeepsAtMostMaxViolations(t *testing.T) {
	b := NewBook()
	b.Feed(codec.Binary, frame(codec.Binary, hello()), time.Time{}, nil)
	for i := range MaxViolations + 10 {
		b.Feed(codec.Binary, frame(codec.Binary, delta(uint32(i), 1)), time.Time{}, nil)
	}
	if n, total := len(b.Violations()), b.Stats().Violations; n != MaxViolations || total != MaxViolations+10 {
		t.Errorf("kept %d of %d violations, want %d of %d", n, total, MaxViolations, MaxViolations+10)
	}
}

func TestBookReady(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		ready bool
	}{
		{"nothing asked", []step{recv(hello())}, true},
		{"SUB not answered", []step{recv(hello()), sub(1, "A")}, false},
		{"ACK, one SNAPSHOT of two", []step{recv(hello()), sub(1, "A", "B"),
			recv(ack(1, sid("A", 1), sid("B", 2)), snapshot(1, 1))}, false},
		{"ACK and every SNAPSHOT", []step{recv(hello()), sub(1, "A", "B"),
			recv(ack(1, sid("A", 1), sid("B", 2)), snapshot(2, 4), snapshot(1, 1))}, true},
		{"SUB without snapshot", []step{recv(hello()), subNoSnap(1, "A"), recv(ack(1, sid("A", 1)))}, true},
		{"a symbol refused", []step{recv(hello()), sub(1, "A", "B"),
			recv(serverError(1, 404, "B"), ack(1, sid("A", 1)), snapshot(1, 1))}, true},
		{"SUB answered by ERROR alone", []step{recv(hello()), sub(1, "A"), recv(serverError(1, 400, "A"))}, false},
		// The PONG of a later PING proves that the SUB will get no ACK.
		{"SUB answered by ERROR, then a later reply", []step{recv(hello()), sub(1, "A"),
			recv(serverError(1, 400, "A"), pong(2))}, true},
		{"UNSUB before the SNAPSHOT", []step{recv(hello()), sub(1, "A"), recv(ack(1, sid("A", 1))), unsub(2, "A")}, true},
		{"SNAP not answered yet", []step{recv(hello()), sub(1, "A"), recv(ack(1, sid("A", 1)), snapshot(1, 1)),
			snapReq(2, "A")}, true},
		{"SUB again, before its SNAPSHOT", []step{recv(hello()), sub(1, "A"), recv(ack(1, sid("A", 1)), snapshot(1, 1)),
			sub(2, "A"), recv(ack(2, sid("A", 1)))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBook()
			for _, s := range tt.steps {
				s(t, b, codec.Binary)
			}
			if got := b.Ready(); got != tt.ready {
				t.Errorf("Ready() = %v, want %v", got, tt.ready)
			}
			if v := b.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
		})
	}
}

func TestBookSkipped(t *testing.T) {
	b := NewBook()
	for _, s := range []step{
		recv(hello()), sub(1, "A", "B"),
		recv(ack(1, sid("A", 1), sid("B", 2)), snapshot(1, 10), snapshot(2, 3)),
		recv(delta(1, 11), delta(1, 14), delta(2, 4), delta(2, 9)), // 2 and 4 skipped
		unsub(2, "A"),
		recv(delta(1, 20)), // late: not applied, not counted
		sub(3, "A"),
		recv(ack(3, sid("A", 1)), snapshot(1, 30), delta(1, 32)), // the SNAPSHOT's jump is no conflation; 1 skipped
	} {
		s(t, b, codec.Binary)
	}
	if got := b.Skipped(); got != 7 {
		t.Errorf("Skipped() = %d, want 7", got)
	}
	if v := b.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestBookConcurrentReads runs the readers of the public API against a
// feeding goroutine, for the race detector.
func TestBookConcurrentReads(t *testing.T) {
	b := NewBook()
	b.NoteSub(1, []string{"A"}, nil)
	b.Feed(codec.Binary, frame(codec.Binary, hello(), ack(1, sid("A", 1)), snapshot(1, 0)), time.Now(), nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			b.Feed(codec.Binary, frame(codec.Binary, delta(1, uint64(i+1), fv{bid, float64(i)})), time.Now(), nil)
		}
	})
	wg.Go(func() {
		for range 500 {
			b.State("A")
			b.Entry("A")
			b.Symbols()
			b.Stats()
			b.Violations()
			b.FeedStatus()
		}
	})
	wg.Wait()
	if seq, _, _ := b.State("A"); seq != 2000 || len(b.Violations()) != 0 {
		t.Errorf("seq %d, violations %v", seq, b.Violations())
	}
}

// TestFeedDeltaAllocs holds the benchmark's promise: a binary DELTA costs no
// allocation.
func TestFeedDeltaAllocs(t *testing.T) {
	b := NewBook()
	b.NoteSub(1, []string{"A"}, nil)
	b.Feed(codec.Binary, frame(codec.Binary, hello(), ack(1, sid("A", 1)), snapshot(1, 0)), time.Now(), nil)
	var seq uint64
	buf := make([]byte, 0, 256)
	count := 0
	fn := func(*codec.Message) { count++ }
	allocs := testing.AllocsPerRun(100, func() {
		seq++
		buf = delta(1, seq, fv{bid, 1.5}, fv{ask, 1.75}, fv{last, float64(seq)})(codec.Binary, buf[:0])
		if err := b.Feed(codec.Binary, buf, time.Time{}, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Feed of a DELTA: %v allocations, want 0", allocs)
	}
}

// BenchmarkFeedDelta measures a frame of two binary DELTAs, encoding
// included: what the load benchmark's connections spend per frame.
func BenchmarkFeedDelta(b *testing.B) {
	book := NewBook()
	book.NoteSub(1, []string{"A"}, nil)
	book.Feed(codec.Binary, frame(codec.Binary, hello(), ack(1, sid("A", 1)), snapshot(1, 0)), time.Now(), nil)
	var mask1, mask2 codec.FieldMask = 1<<bid | 1<<ask, 1<<last | 1<<codec.FieldVolume
	values := [codec.NumFields]float64{bid: 187.25, ask: 187.5, last: 187.375}
	buf := make([]byte, 0, 256)
	now := time.Now()
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		values[codec.FieldVolume] = float64(seq)
		buf = codec.Binary.AppendState(buf[:0], codec.OpDelta, 1, seq+1, mask1, &values)
		buf = codec.Binary.AppendState(buf, codec.OpDelta, 1, seq+2, mask2, &values)
		seq += 2
		book.Feed(codec.Binary, buf, now, nil)
	}
	if v := book.Violations(); len(v) > 0 {
		b.Fatalf("violations: %v", v[0])
	}
}

func subBars(id uint64, interval string, count int, snap bool, syms ...string) step {
	return func(t *testing.T, b *Book, f codec.Format) {
		opts := codec.DefaultSubOptions()
		opts.Snap, opts.Bars, opts.BarCount = snap, interval, count
		b.NoteSub(id, syms, &opts)
	}
}

func bar(t int64, c float64) codec.Bar {
	return codec.Bar{T: t, Open: 1, High: max(c, 1), Low: min(c, 1), Close: c, Volume: 10, Trades: 2}
}

func barsMsg(id uint32, seq uint64, interval string, bars ...codec.Bar) msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendBars(dst, id, seq, interval, bars) }
}

func barMsg(id uint32, seq uint64, interval string, b codec.Bar) msg {
	return func(f codec.Format, dst []byte) []byte { return f.AppendBar(dst, id, seq, interval, &b) }
}

// TestBookBars holds the Book to guarantee 5: where BARS and BAR may come,
// how they apply, and what it reports.
func TestBookBars(t *testing.T) {
	start := []step{subBars(1, "1m", 10, true, "A"), recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5))}
	steps := func(more ...step) []step { return append(slices.Clone(start), more...) }
	tests := []struct {
		name       string
		steps      []step
		violations []ViolationKind
		bars       []codec.Bar // nil: Bars must report !ok
		seq        uint64
	}{
		{"history, then BARs replace and append", steps(recv(barsMsg(1, 4, "1m", bar(60, 2), bar(120, 3)),
			delta(1, 6), barMsg(1, 6, "1m", bar(120, 4)), barMsg(1, 7, "1m", bar(180, 5)))),
			nil, []codec.Bar{bar(60, 2), bar(120, 4), bar(180, 5)}, 7},
		{"empty history", steps(recv(barsMsg(1, 0, "1m"), barMsg(1, 6, "1m", bar(60, 1)))),
			nil, []codec.Bar{bar(60, 1)}, 6},
		{"snap false: BARS right after the ACK", []step{subBars(1, "1m", 10, false, "A"),
			recv(hello(), ack(1, sid("A", 1)), barsMsg(1, 3, "1m", bar(60, 2)), delta(1, 4))},
			nil, []codec.Bar{bar(60, 2)}, 3},
		{"snap false: DELTA before the BARS", []step{subBars(1, "1m", 10, false, "A"),
			recv(hello(), ack(1, sid("A", 1)), delta(1, 4), barsMsg(1, 4, "1m", bar(60, 2)))},
			[]ViolationKind{ViolationBars}, []codec.Bar{bar(60, 2)}, 4},
		{"live bars only", []step{subBars(1, "1s", 0, true, "A"),
			recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), barMsg(1, 5, "1s", bar(1, 2)), delta(1, 6), barMsg(1, 6, "1s", bar(2, 3)))},
			nil, []codec.Bar{bar(1, 2), bar(2, 3)}, 6},
		{"BARS before the SNAPSHOT", []step{subBars(1, "1m", 10, true, "A"),
			recv(hello(), ack(1, sid("A", 1)), barsMsg(1, 3, "1m"), snapshot(1, 5))},
			[]ViolationKind{ViolationBars}, []codec.Bar{}, 3},
		{"DELTA between SNAPSHOT and BARS", steps(recv(delta(1, 6), barsMsg(1, 6, "1m"))),
			[]ViolationKind{ViolationBars}, []codec.Bar{}, 6},
		{"BAR before the BARS", steps(recv(barMsg(1, 6, "1m", bar(60, 1)), barsMsg(1, 6, "1m", bar(60, 1)))),
			[]ViolationKind{ViolationBars}, []codec.Bar{bar(60, 1)}, 6},
		{"BAR t going back", steps(recv(barsMsg(1, 5, "1m", bar(120, 1)), barMsg(1, 6, "1m", bar(60, 1)))),
			[]ViolationKind{ViolationBars}, []codec.Bar{bar(120, 1)}, 6},
		{"BAR seq below the BARS's", steps(recv(barsMsg(1, 5, "1m", bar(120, 1)), barMsg(1, 4, "1m", bar(120, 2)))),
			[]ViolationKind{ViolationBars}, []codec.Bar{bar(120, 2)}, 5},
		{"bars of another interval", steps(recv(barsMsg(1, 5, "1s", bar(120, 1)))),
			[]ViolationKind{ViolationBars}, nil, 0},
		{"BARS out of order", steps(recv(barsMsg(1, 5, "1m", bar(120, 1), bar(60, 1)))),
			[]ViolationKind{ViolationBars}, []codec.Bar{bar(120, 1), bar(60, 1)}, 5},
		{"BARS no SUB asked for", []step{subBars(1, "1m", 0, true, "A"),
			recv(hello(), ack(1, sid("A", 1)), snapshot(1, 5), barsMsg(1, 5, "1m"))},
			[]ViolationKind{ViolationBars}, []codec.Bar{}, 5},
		{"SNAP: its SNAPSHOT is followed by the BARS", steps(recv(barsMsg(1, 5, "1m", bar(60, 1))),
			snapReq(2, "A"), recv(snapshot(1, 6), delta(1, 7), barsMsg(1, 7, "1m", bar(60, 2)))),
			[]ViolationKind{ViolationBars}, []codec.Bar{bar(60, 2)}, 7},
		{"re-SUB of another interval starts afresh", steps(recv(barsMsg(1, 5, "1m", bar(60, 1))),
			subBars(2, "1s", 0, false, "A"), recv(barMsg(1, 6, "1m", bar(60, 2)), ack(2, sid("A", 1)), barMsg(1, 7, "1s", bar(61, 3)))),
			nil, []codec.Bar{bar(61, 3)}, 7},
		{"re-SUB without bars ends them", steps(recv(barsMsg(1, 5, "1m", bar(60, 1))),
			sub(2, "A"), recv(ack(2, sid("A", 1)), snapshot(1, 6), barMsg(1, 7, "1m", bar(60, 2)))),
			[]ViolationKind{ViolationBars}, nil, 0},
		{"bars after the UNSUB took effect", steps(recv(barsMsg(1, 5, "1m", bar(60, 1))),
			unsub(2, "A"), recv(barMsg(1, 6, "1m", bar(60, 2)), pong(3), barMsg(1, 7, "1m", bar(60, 3)))),
			[]ViolationKind{ViolationNotSubscribed}, nil, 0},
	}
	for _, f := range []codec.Format{codec.Binary, codec.JSON} {
		for _, tt := range tests {
			t.Run(f.String()+"/"+tt.name, func(t *testing.T) {
				b := NewBook()
				for _, s := range tt.steps {
					s(t, b, f)
				}
				var kinds []ViolationKind
				for _, v := range b.Violations() {
					kinds = append(kinds, v.Kind)
				}
				if !slices.Equal(kinds, tt.violations) {
					t.Errorf("violations = %v, want kinds %v", b.Violations(), tt.violations)
				}
				_, seq, bars, ok := b.Bars("A")
				switch {
				case tt.bars == nil && ok:
					t.Errorf("Bars = %d %v, want none", seq, bars)
				case tt.bars != nil && (!ok || seq != tt.seq || !slices.Equal(bars, tt.bars)):
					t.Errorf("Bars = %v %d %v, want %d %v", ok, seq, bars, tt.seq, tt.bars)
				}
			})
		}
	}
}
