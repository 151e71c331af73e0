package sim

import (
	"math"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
)

func TestListedTickers(t *testing.T) {
	seen := make(map[string]bool)
	for _, l := range listed {
		if !codec.ValidSymbol([]byte(l.sym)) {
			t.Errorf("%q is not a valid symbol", l.sym)
		}
		if seen[l.sym] {
			t.Errorf("%q is listed twice", l.sym)
		}
		seen[l.sym] = true
		if !(l.price >= 1) {
			t.Errorf("%s: price %v", l.sym, l.price)
		}
	}
	if len(listed) < 300 {
		t.Errorf("%d listed tickers, want at least 300", len(listed))
	}
}

func TestNewMarketSymbols(t *testing.T) {
	tests := []struct {
		name    string
		symbols int
		want    int
	}{
		{"default", 0, DefaultSymbols},
		{"negative", -3, DefaultSymbols},
		{"one", 1, 1},
		{"listed only", 10, 10},
		{"all listed", len(listed), len(listed)},
		{"synthetic tail", 5000, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			syms := NewMarket(Config{Symbols: tt.symbols, Seed: 7}).Symbols()
			if len(syms) != tt.want {
				t.Fatalf("%d symbols, want %d", len(syms), tt.want)
			}
			seen := make(map[string]bool, len(syms))
			for i, s := range syms {
				if !codec.ValidSymbol([]byte(s)) {
					t.Errorf("symbol %d %q is not valid", i, s)
				}
				if seen[s] {
					t.Errorf("symbol %d %q is a duplicate", i, s)
				}
				seen[s] = true
				if i < len(listed) && s != listed[i].sym {
					t.Errorf("symbol %d is %q, want the listed %q", i, s, listed[i].sym)
				}
				if i >= len(listed) && (len(s) < 3 || len(s) > 5) {
					t.Errorf("synthetic symbol %d %q is not 3 to 5 letters", i, s)
				}
			}
		})
	}
}

// updates returns the first n updates of a market, with copies of their
// symbols.
func updates(cfg Config, n int) []codec.Update {
	m := NewMarket(cfg)
	now := time.Unix(1_750_000_000, 0)
	out := make([]codec.Update, n)
	for i := range out {
		m.Next(now.Add(time.Duration(i)*time.Millisecond), &out[i])
		out[i].Sym = []byte(string(out[i].Sym))
	}
	return out
}

func equalUpdates(a, b []codec.Update) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i].Sym) != string(b[i].Sym) || a[i].Mask != b[i].Mask || a[i].Values != b[i].Values {
			return false
		}
	}
	return true
}

func TestMarketDeterminism(t *testing.T) {
	tests := []struct {
		name string
		a, b Config
		same bool
	}{
		{"same seed", Config{Seed: 42}, Config{Seed: 42}, true},
		{"same seed, synthetic names", Config{Symbols: 2000, Seed: -5}, Config{Symbols: 2000, Seed: -5}, true},
		{"other seed", Config{Seed: 42}, Config{Seed: 43}, false},
		{"seed zero differs from one", Config{Seed: 0}, Config{Seed: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := equalUpdates(updates(tt.a, 5000), updates(tt.b, 5000)); got != tt.same {
				t.Errorf("same updates = %v, want %v", got, tt.same)
			}
			sa, sb := NewMarket(tt.a).Symbols(), NewMarket(tt.b).Symbols()
			if tt.same && len(sa) != len(sb) {
				t.Fatalf("%d and %d symbols", len(sa), len(sb))
			}
			for i := range min(len(sa), len(sb)) {
				if tt.same && sa[i] != sb[i] {
					t.Fatalf("symbol %d: %q and %q", i, sa[i], sb[i])
				}
			}
		})
	}
}

// book is the state of one symbol as a consumer rebuilds it from updates.
type book struct {
	v [codec.NumFields]float64
}

func isTick(p float64) bool {
	c := p * ticksPerDollar
	return p > 0 && math.Abs(c-math.Round(c)) < 1e-6
}

func isLots(s float64) bool { return s > 0 && math.Mod(s, lotSize) == 0 }

// checkBook reports what is wrong with a symbol's state, or "".
func checkBook(b *book) string {
	v := &b.v
	switch {
	case !isTick(v[codec.FieldBid]) || !isTick(v[codec.FieldAsk]):
		return "bid or ask not a positive multiple of the tick"
	case v[codec.FieldBid] >= v[codec.FieldAsk]:
		return "bid >= ask"
	case !isLots(v[codec.FieldBidSize]) || !isLots(v[codec.FieldAskSize]):
		return "quote size not a positive number of round lots"
	case !isTick(v[codec.FieldLast]) || !isTick(v[codec.FieldOpen]) || !isTick(v[codec.FieldPrevClose]):
		return "last, open or prevClose not a positive multiple of the tick"
	case !(v[codec.FieldLastSize] > 0):
		return "lastSize not positive"
	case v[codec.FieldHigh] < v[codec.FieldLow] || !isTick(v[codec.FieldLow]):
		return "high < low or low not positive"
	case v[codec.FieldLast] > v[codec.FieldHigh] || v[codec.FieldLast] < v[codec.FieldLow]:
		return "last outside [low, high]"
	case v[codec.FieldOpen] > v[codec.FieldHigh] || v[codec.FieldOpen] < v[codec.FieldLow]:
		return "open outside [low, high]"
	}
	return ""
}

const (
	quoteFields = 1<<codec.FieldBid | 1<<codec.FieldBidSize | 1<<codec.FieldAsk | 1<<codec.FieldAskSize
	tradeFields = 1<<codec.FieldLast | 1<<codec.FieldLastSize | 1<<codec.FieldVolume
)

func TestMarketSanity(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		n    int
	}{
		{"default", Config{Seed: 1}, 300_000},
		{"few symbols", Config{Symbols: 3, Seed: 2}, 100_000},
		{"many symbols", Config{Symbols: 3000, Seed: 3}, 100_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMarket(tt.cfg)
			now := time.Unix(1_750_000_000, 0)
			books := make(map[string]*book)
			initBid := make(map[string]float64)
			var u codec.Update
			for i := range m.Symbols() {
				m.Initial(now, i, &u)
				if u.Mask != codec.AllFields {
					t.Fatalf("Initial(%d) has fields %b, want all", i, u.Mask)
				}
				b := &book{v: u.Values}
				if msg := checkBook(b); msg != "" {
					t.Fatalf("Initial(%d) %s: %s: %v", i, u.Sym, msg, b.v)
				}
				books[string(u.Sym)] = b
				initBid[string(u.Sym)] = u.Values[codec.FieldBid]
			}
			var trades int
			for i := range tt.n {
				now = now.Add(time.Microsecond)
				m.Next(now, &u)
				b := books[string(u.Sym)]
				if b == nil {
					t.Fatalf("update %d: unknown symbol %q", i, u.Sym)
				}
				if !u.Mask.Has(codec.FieldTS) || u.Values[codec.FieldTS] != float64(now.UnixMicro()) {
					t.Fatalf("update %d: ts %v, want %d", i, u.Values[codec.FieldTS], now.UnixMicro())
				}
				fields := u.Mask &^ (1 << codec.FieldTS)
				switch {
				case fields&quoteFields != 0:
					if fields&^quoteFields != 0 {
						t.Fatalf("update %d: quote with other fields %b", i, fields)
					}
				case fields&tradeFields == tradeFields:
					trades++
					if fields&^(tradeFields|1<<codec.FieldHigh|1<<codec.FieldLow) != 0 {
						t.Fatalf("update %d: trade with other fields %b", i, fields)
					}
					if u.Values[codec.FieldVolume] != b.v[codec.FieldVolume]+u.Values[codec.FieldLastSize] {
						t.Fatalf("update %d: volume %v after %v and a trade of %v", i,
							u.Values[codec.FieldVolume], b.v[codec.FieldVolume], u.Values[codec.FieldLastSize])
					}
					if last := u.Values[codec.FieldLast]; last != b.v[codec.FieldBid] && last != b.v[codec.FieldAsk] {
						t.Fatalf("update %d: trade at %v, quote %v/%v", i, last, b.v[codec.FieldBid], b.v[codec.FieldAsk])
					}
				default:
					t.Fatalf("update %d: neither a quote nor a trade: fields %b", i, fields)
				}
				for f := range codec.NumFields {
					if !u.Mask.Has(f) {
						continue
					}
					if f != codec.FieldTS && f != codec.FieldLast && f != codec.FieldLastSize && u.Values[f] == b.v[f] {
						t.Fatalf("update %d: %s sent unchanged (%v)", i, codec.FieldNames[f], u.Values[f])
					}
					b.v[f] = u.Values[f]
				}
				if msg := checkBook(b); msg != "" {
					t.Fatalf("update %d %s: %s: %v", i, u.Sym, msg, b.v)
				}
			}
			// Mean reversion keeps prices near where they started.
			for s, b := range books {
				if r := b.v[codec.FieldBid] / initBid[s]; r < 0.7 || r > 1.4 {
					t.Errorf("%s: bid moved from %v to %v", s, initBid[s], b.v[codec.FieldBid])
				}
			}
			if share := float64(trades) / float64(tt.n); share < 0.15 || share > 0.25 {
				t.Errorf("trades are %.3f of updates, want about %v", share, tradeShare)
			}
		})
	}
}

func TestMarketActivitySkew(t *testing.T) {
	m := NewMarket(Config{Seed: 9})
	counts := make(map[string]int)
	var u codec.Update
	now := time.Now()
	for range 100_000 {
		m.Next(now, &u)
		counts[string(u.Sym)]++
	}
	syms := m.Symbols()
	first, tenth, last := counts[syms[0]], counts[syms[9]], counts[syms[len(syms)-1]]
	if !(first > 3*tenth && tenth > 3*last && last > 0) {
		t.Errorf("updates of symbols 1, 10, %d: %d, %d, %d; want each over 3 times the next and the last above 0",
			len(syms), first, tenth, last)
	}
}

func TestMarketInitialDoesNotAdvance(t *testing.T) {
	m := NewMarket(Config{Seed: 4})
	now := time.Now()
	var a, b codec.Update
	m.Initial(now, 5, &a)
	m.Initial(now, 5, &b)
	if a.Values != b.Values {
		t.Errorf("two Initial calls differ: %v and %v", a.Values, b.Values)
	}
	if !equalUpdates(updates(Config{Seed: 4}, 100), func() []codec.Update {
		m := NewMarket(Config{Seed: 4})
		for i := range m.Symbols() {
			m.Initial(now, i, &a)
		}
		out := make([]codec.Update, 100)
		t0 := time.Unix(1_750_000_000, 0)
		for i := range out {
			m.Next(t0.Add(time.Duration(i)*time.Millisecond), &out[i])
		}
		return out
	}()) {
		t.Error("calling Initial changed the updates that follow")
	}
}

func TestMarketNextAllocs(t *testing.T) {
	m := NewMarket(Config{})
	var u codec.Update
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { m.Next(now, &u) }); n != 0 {
		t.Errorf("Next allocates %v times per call, want 0", n)
	}
}

func BenchmarkMarketNext(b *testing.B) {
	m := NewMarket(Config{Seed: 1})
	var u codec.Update
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Next(now, &u)
	}
}
