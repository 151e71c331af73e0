package fanout

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// slowLink is a fakeConn behind a link of fixed bandwidth: each frame takes
// perByte for each of its bytes to get through, then reaches the client,
// which notes the age of every DELTA from the ts the test stamped on the
// update. It is slow, never stuck: every write ends.
type slowLink struct {
	*fakeConn
	perByte time.Duration

	agesMu sync.Mutex
	ages   []time.Duration
}

func (l *slowLink) WriteFrame(p []byte) error {
	time.Sleep(time.Duration(len(p)) * l.perByte)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.book.Feed(l.format, p, now, func(m *codec.Message) {
		l.record(m)
		if m.Op == codec.OpDelta && m.Mask&(1<<codec.FieldTS) != 0 {
			age := now.Sub(time.UnixMicro(int64(m.Values[codec.FieldTS])))
			l.agesMu.Lock()
			l.ages = append(l.ages, age)
			l.agesMu.Unlock()
		}
	})
}

// percentiles returns the 50th and 99th percentile and the largest of the
// DELTA ages seen.
func (l *slowLink) percentiles() (p50, p99, most time.Duration, n int) {
	l.agesMu.Lock()
	ages := slices.Clone(l.ages)
	l.agesMu.Unlock()
	if len(ages) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(ages)
	at := func(q float64) time.Duration { return ages[min(len(ages)-1, int(q*float64(len(ages))))] }
	return at(0.50), at(0.99), ages[len(ages)-1], len(ages)
}

// TestSlowLinkStaysFresh feeds a client on a link that takes about a third
// of what it is offered (8 symbols, about 8000 updates/s of 30-byte deltas
// to a 100 KB/s link) with the backlog and lag limits far away. The
// freshness budget switches it to conflated delivery once what waits for
// its socket is older than MaxStaleness, so the DELTAs it gets stay young,
// and back once the feed stops; every DELTA still carries every changed
// field (the Book's state equals the store's) and seq never decreases.
// Without the budget the backlog grows to the soft limit, 256 KiB: 2.6 s of
// this link, and the ages with it.
func TestSlowLinkStaysFresh(t *testing.T) {
	const budget = 20 * time.Millisecond
	store, hub := newTestHub(t, Config{MaxStaleness: budget, SoftLag: time.Minute, SlowGrace: time.Minute})
	link := &slowLink{fakeConn: newFakeConn(t, codec.Binary), perByte: 10 * time.Microsecond}
	c := hub.Register(link, ClientOptions{Format: codec.Binary})
	syms := symbols(8)
	price := func(sym string, i int) *codec.Update {
		u := &codec.Update{Sym: []byte(sym)}
		u.Set(codec.FieldTS, float64(time.Now().UnixMicro()))
		u.Set(codec.FieldBid, 100+float64(i%1000)/100)
		return u
	}
	for i, s := range syms {
		if err := store.Apply(price(s, i)); err != nil {
			t.Fatal(err)
		}
	}
	link.subscribe(c, 1, syms, codec.DefaultSubOptions())

	const feedFor = 1500 * time.Millisecond
	start := time.Now()
	updates := 0
	for time.Since(start) < feedFor {
		for range 8 {
			if err := store.Apply(price(syms[updates%len(syms)], updates)); err != nil {
				t.Fatal(err)
			}
			updates++
		}
		time.Sleep(time.Millisecond)
	}
	fed := time.Since(start)
	waitFor(t, "the client to catch up", func() bool {
		for _, s := range syms {
			if link.seq(s) != store.Lookup([]byte(s)).Load().Seq {
				return false
			}
		}
		return true
	})
	link.checkContract(t)
	waitFor(t, "the client to leave conflated delivery", func() bool { return hub.Stats().Conflating == 0 })

	st := hub.Stats()
	p50, p99, most, n := link.percentiles()
	t.Logf("%d updates in %v (%.0f/s); %d DELTAs received, age p50 %v p99 %v max %v; conflated %d, switched to conflation %v (staleness, backlog, lag)",
		updates, fed.Round(time.Millisecond), float64(updates)/fed.Seconds(), n, p50, p99, most, st.Conflated, st.ConflationStarts)
	if w := st.WriteWait; w.Count == 0 || w.Count > st.Frames {
		t.Errorf("%d writes' wait observed for %d frames written, want one a write", w.Count, st.Frames)
	} else {
		t.Logf("write wait: mean %v over %d writes", w.Sum/time.Duration(w.Count), w.Count)
	}
	if st.ConflationStarts[ConflatedForStaleness] == 0 {
		t.Errorf("the freshness budget never switched the client to conflated delivery: %v", st.ConflationStarts)
	}
	// Generous: the budget, the write of what was queued within it (about
	// 70 ms of this link) and the scheduling of a loaded machine under
	// -race. Without the budget, p99 passes a second.
	if p99 > 500*time.Millisecond {
		t.Errorf("p99 age of the DELTAs received %v, want well under the 2.6 s of a soft limit's backlog on this link", p99)
	}
}

// TestConflationCauseNames keeps the metric labels of the causes.
func TestConflationCauseNames(t *testing.T) {
	for cause, want := range map[ConflationCause]string{
		ConflatedForStaleness: "staleness", ConflatedForBacklog: "backlog", ConflatedForLag: "lag", 7: "ConflationCause(7)",
	} {
		if got := fmt.Sprint(cause); got != want {
			t.Errorf("ConflationCause %d is %q, want %q", int(cause), got, want)
		}
	}
}
