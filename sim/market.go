// Package sim generates a realistic simulated market and feeds it, or a
// recorded file, into Kafka.
//
// A Market holds the state of a universe of symbols (a built-in list of real
// US tickers, then synthetic ones) and produces updates in the ingest format
// of protocol v1, one codec.Update at a time. A Producer writes a Market's
// updates, paced at a chosen rate, or the lines of a recorded JSONL or CSV
// file (see ReadReplay) to a Kafka topic, keyed by symbol.
package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// DefaultSymbols is the number of symbols of a Market whose Config leaves
// Symbols at zero.
const DefaultSymbols = 500

// MaxSymbols bounds Config.Symbols.
const MaxSymbols = 1_000_000

// Model parameters. Prices are held in ticks (cents) and sizes in shares, as
// integers, so that every price on the wire is an exact multiple of the tick
// and no rounding drift accumulates over a long run.
const (
	ticksPerDollar = 100 // the tick is one cent
	lotSize        = 100 // shares per round lot

	// tradeShare is the fraction of updates that are trades; the rest are
	// quote changes, which outnumber trades on every real feed.
	tradeShare = 0.2
	// volPerUpdate is the typical move of the mid price per update, as a
	// fraction of the price (before the per-symbol factor).
	volPerUpdate = 0.0002
	// meanReversion pulls the mid back toward its anchor at each update, so
	// that a popular symbol updated millions of times stays within a few
	// percent of its open instead of wandering off to zero or infinity.
	// The stationary deviation is about volPerUpdate/sqrt(2*meanReversion),
	// roughly 1.5% of the price.
	meanReversion = 1e-4
)

// Config configures a Market.
type Config struct {
	// Symbols is the number of symbols: DefaultSymbols when zero or
	// negative, at most MaxSymbols (larger values are treated as
	// MaxSymbols). The first ones are real tickers in order of activity,
	// the rest synthetic tickers of 3 to 5 capital letters.
	Symbols int
	// Seed seeds every random choice: two Markets with the same Config
	// produce the same symbols, prices and sequence of updates.
	Seed int64
}

// Market is a simulated market: a set of symbols, each with its quote, last
// trade and session statistics. The session is already open when the Market
// is created, so that Initial has a value for every field. A Market is not
// safe for concurrent use.
type Market struct {
	rng   *rand.Rand
	syms  []symbol
	names []string
	// cdf is the cumulative activity weight of the symbols, for picking
	// the symbol of the next update by binary search.
	cdf []float64
}

// symbol is the state of one simulated symbol. Prices are in ticks.
type symbol struct {
	name   []byte  // handed out as Update.Sym, never modified
	mid    float64 // mid price, a continuous random walk
	anchor float64 // level the mid reverts to
	sigma  float64 // standard deviation of a mid move, in ticks

	bid, ask         int64
	bidSize, askSize int64
	last, lastSize   int64
	volume           int64
	open, high, low  int64
	prevClose        int64
}

// NewMarket returns a Market as configured.
func NewMarket(cfg Config) *Market {
	n := cfg.Symbols
	if n <= 0 {
		n = DefaultSymbols
	}
	n = min(n, MaxSymbols)
	// PCG needs two words of seed; the constant only keeps seed 0 from
	// being a degenerate all-zero state.
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	m := &Market{
		rng:   rng,
		syms:  make([]symbol, n),
		names: make([]string, n),
		cdf:   make([]float64, n),
	}
	used := make(map[string]bool, n)
	var total float64
	for i := range n {
		var name string
		var price float64
		if i < len(listed) {
			name, price = listed[i].sym, listed[i].price
		} else {
			name = syntheticTicker(rng, used)
			// Log-uniform from $2 to $500 spreads synthetic names over
			// penny-ish, mid and high-priced stocks, as a real listing does.
			price = math.Exp(math.Log(2) + rng.Float64()*math.Log(250))
		}
		used[name] = true
		m.names[i] = name
		m.syms[i] = newSymbol(rng, name, price, i)
		// Zipf-like activity: the symbol of rank r gets a share of the
		// updates proportional to 1/r.
		total += 1 / float64(i+1)
		m.cdf[i] = total
	}
	return m
}

// syntheticTicker returns a ticker of 3 to 5 capital letters not in used.
func syntheticTicker(rng *rand.Rand, used map[string]bool) string {
	var b [5]byte
	for {
		k := 3 + rng.IntN(3)
		for j := range k {
			b[j] = 'A' + byte(rng.IntN(26))
		}
		if s := string(b[:k]); !used[s] {
			return s
		}
	}
}

// newSymbol returns the state of a symbol that closed at price yesterday
// and has been trading for a while today; rank 0 is the most active.
func newSymbol(rng *rand.Rand, name string, price float64, rank int) symbol {
	prev := max(1, int64(math.Round(price*ticksPerDollar)))
	// An overnight gap of about 1%, then some drift since the open.
	open := max(1, int64(math.Round(float64(prev)*(1+0.01*rng.NormFloat64()))))
	mid := float64(open) * (1 + 0.005*rng.NormFloat64())
	s := symbol{
		name:      []byte(name),
		mid:       max(mid, 1),
		anchor:    float64(open),
		sigma:     float64(open) * volPerUpdate * (0.5 + 1.5*rng.Float64()),
		open:      open,
		prevClose: prev,
	}
	s.requote(rng)
	s.bidSize, s.askSize = quoteSize(rng), quoteSize(rng)
	s.last = s.bid
	if rng.IntN(2) == 0 {
		s.last = s.ask
	}
	s.lastSize = tradeSize(rng, s.bidSize)
	// The session range so far covers the open and the last trade, and a
	// little more on each side.
	spread := float64(open) * 0.004
	s.high = max(open, s.last) + int64(spread*rng.Float64())
	s.low = max(1, min(open, s.last)-int64(spread*rng.Float64()))
	// Session volume so far, larger for the more active symbols.
	s.volume = lotSize * int64(1+rng.IntN(1000)) * int64(1+1000/(rank+1))
	return s
}

// requote moves the mid price one step and derives a bid and an ask from it.
func (s *symbol) requote(rng *rand.Rand) {
	s.mid += meanReversion*(s.anchor-s.mid) + s.sigma*rng.NormFloat64()
	s.mid = max(s.mid, 1)
	// A few ticks wide, wider for expensive stocks (one more tick per $200).
	spread := 1 + int64(rng.IntN(3)) + int64(s.mid/ticksPerDollar/200)
	s.bid = max(1, int64(math.Round(s.mid-float64(spread)/2)))
	s.ask = s.bid + spread
}

// quoteSize returns a displayed size: a few round lots, now and then many.
func quoteSize(rng *rand.Rand) int64 {
	return lotSize * (1 + min(int64(rng.ExpFloat64()*4), 99))
}

// tradeSize returns the size of a trade against a side displaying avail.
func tradeSize(rng *rand.Rand, avail int64) int64 {
	return min(lotSize*(1+int64(rng.ExpFloat64()*2)), avail)
}

// Symbols returns the symbols of the market, most active first. Symbol i is
// the one Initial(now, i, u) describes.
func (m *Market) Symbols() []string { return slices.Clone(m.names) }

// Initial fills u with the whole current state of symbol i (every field of
// the v1 table), stamped now; used to seed a topic so that every symbol has
// a complete snapshot from the start. It does not change the market. u.Sym
// belongs to the market and must not be modified.
func (m *Market) Initial(now time.Time, i int, u *codec.Update) {
	s := &m.syms[i]
	u.Reset()
	u.Sym = s.name
	u.Set(codec.FieldTS, float64(now.UnixMicro()))
	u.Set(codec.FieldBid, price(s.bid))
	u.Set(codec.FieldBidSize, float64(s.bidSize))
	u.Set(codec.FieldAsk, price(s.ask))
	u.Set(codec.FieldAskSize, float64(s.askSize))
	u.Set(codec.FieldLast, price(s.last))
	u.Set(codec.FieldLastSize, float64(s.lastSize))
	u.Set(codec.FieldVolume, float64(s.volume))
	u.Set(codec.FieldOpen, price(s.open))
	u.Set(codec.FieldHigh, price(s.high))
	u.Set(codec.FieldLow, price(s.low))
	u.Set(codec.FieldPrevClose, price(s.prevClose))
}

// Next advances the market by one event and fills u with it, stamped now:
// for a symbol picked by activity, either a quote change (ts and those of
// bid, bidSize, ask and askSize that changed) or a trade at the bid or the
// ask (ts, last, lastSize, volume, and high or low when the trade moved
// them). u.Sym belongs to the market and must not be modified.
func (m *Market) Next(now time.Time, u *codec.Update) {
	i, _ := slices.BinarySearch(m.cdf, m.rng.Float64()*m.cdf[len(m.cdf)-1])
	s := &m.syms[min(i, len(m.syms)-1)]
	u.Reset()
	u.Sym = s.name
	u.Set(codec.FieldTS, float64(now.UnixMicro()))
	if m.rng.Float64() < tradeShare {
		s.trade(m.rng, u)
	} else {
		s.quote(m.rng, u)
	}
}

// trade fills u with a trade that takes liquidity at the bid or the ask.
func (s *symbol) trade(rng *rand.Rand, u *codec.Update) {
	px, avail := s.bid, s.bidSize
	if rng.IntN(2) == 0 {
		px, avail = s.ask, s.askSize
	}
	s.last, s.lastSize = px, tradeSize(rng, avail)
	s.volume += s.lastSize
	u.Set(codec.FieldLast, price(s.last))
	u.Set(codec.FieldLastSize, float64(s.lastSize))
	u.Set(codec.FieldVolume, float64(s.volume))
	if px > s.high {
		s.high = px
		u.Set(codec.FieldHigh, price(px))
	}
	if px < s.low {
		s.low = px
		u.Set(codec.FieldLow, price(px))
	}
}

// quote fills u with a change of the quote. A side whose price moved gets a
// new size; a side that kept its price changes size half the time, as
// orders join and leave the level.
func (s *symbol) quote(rng *rand.Rand, u *codec.Update) {
	bid, ask := s.bid, s.ask
	bidSize, askSize := s.bidSize, s.askSize
	s.requote(rng)
	if s.bid != bid || rng.IntN(2) == 0 {
		s.bidSize = quoteSize(rng)
	}
	if s.ask != ask || rng.IntN(2) == 0 {
		s.askSize = quoteSize(rng)
	}
	if s.bid == bid && s.ask == ask && s.bidSize == bidSize && s.askSize == askSize {
		// A feed sends no quote that changes nothing: make this one an
		// order joining the bid.
		s.bidSize += lotSize
	}
	if s.bid != bid {
		u.Set(codec.FieldBid, price(s.bid))
	}
	if s.bidSize != bidSize {
		u.Set(codec.FieldBidSize, float64(s.bidSize))
	}
	if s.ask != ask {
		u.Set(codec.FieldAsk, price(s.ask))
	}
	if s.askSize != askSize {
		u.Set(codec.FieldAskSize, float64(s.askSize))
	}
}

// price converts ticks to dollars. The division is correctly rounded, so
// the result is the float64 nearest the decimal price, which prints as
// that decimal (18723 ticks prints as 187.23).
func price(ticks int64) float64 { return float64(ticks) / ticksPerDollar }
