package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
)

// bookConn is a benchConn that only holds a Book, fed by the test.
type bookConn struct{ book *client.Book }

func (c bookConn) Subscribe([]string, *codec.SubOptions) (uint64, error) { return 0, nil }
func (c bookConn) Close() error                                          { return nil }
func (c bookConn) Done() <-chan struct{}                                 { return nil }
func (c bookConn) CloseCode() int                                        { return 0 }
func (c bookConn) Book() *client.Book                                    { return c.book }

// TestFinalCheckWaitsForTheTail checks that a connection one update behind
// the server when the check starts, whose last update then comes, passes:
// the check compares again. One that stays behind fails it.
func TestFinalCheckWaitsForTheTail(t *testing.T) {
	const sym = "AAPL"
	var vals [codec.NumFields]float64
	mask := codec.FieldMask(1<<codec.FieldTS | 1<<codec.FieldLast)
	state := func(seq uint64) []byte {
		vals[codec.FieldTS], vals[codec.FieldLast] = float64(1_764_000_000_000_000+seq), 100+float64(seq)
		op := codec.OpSnapshot
		if seq > 1 {
			op = codec.OpDelta
		}
		return codec.Binary.AppendState(nil, op, 1, seq, mask, &vals)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(client.SnapshotResponse{Snapshots: map[string]client.SymbolSnapshot{
			sym: {Seq: 2, State: map[string]float64{"ts": 1_764_000_000_000_002, "last": 102}},
		}})
	}))
	defer srv.Close()

	for _, late := range []bool{true, false} {
		book := client.NewBook()
		book.NoteSub(1, []string{sym}, nil)
		feed := func(frame []byte) {
			if err := book.Feed(codec.Binary, frame, time.Now(), nil); err != nil {
				t.Fatal(err)
			}
		}
		feed(codec.Binary.AppendAck(nil, 1, []codec.SymbolID{{Sym: sym, SID: 1}}))
		feed(state(1))
		sl := &slot{syms: []string{sym}}
		sl.sess.Store(&session{slot: sl, conn: bookConn{book}})
		r := &runner{
			cfg:   Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"},
			sub:   &codec.SubOptions{Fields: mask},
			slots: []*slot{sl},
			http:  srv.Client(),
		}
		done := make(chan struct{})
		if late {
			go func() {
				defer close(done)
				time.Sleep(2 * quietPeriod)
				feed(state(2))
			}()
		} else {
			close(done)
		}
		ctx := t.Context()
		if !late {
			var cancel func()
			ctx, cancel = context.WithTimeout(ctx, 3*quietPeriod)
			defer cancel()
		}
		fc := r.finalCheck(ctx)
		<-done
		if late && (fc.Checked != 1 || fc.Mismatches != 0) {
			t.Errorf("late update: %+v, want 1 checked, no mismatch", fc)
		}
		if !late && fc.Mismatches != 1 {
			t.Errorf("update never came: %+v, want the mismatch", fc)
		}
	}
}
