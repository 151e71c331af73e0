package barstest

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
)

// LogConfig describes a known log of price updates for bars.
type LogConfig struct {
	Seed    uint64
	Records int
	Symbols int
	// Start is the first record's ts, unix µs; each record is on average
	// Step µs after the one before.
	Start, Step int64
}

// Log returns a deterministic log of keyed records that exercises every
// bar rule: trades with and without lastSize, quotes, fields that move no
// bar, records that change nothing, late records (one in 10), records
// without ts (which then carry no bar field); the
// symbols whose number is a multiple of 4 never trade (quotes only) and
// those of remainder 1 trade only from the log's second half. Records
// alternate between MessagePack and JSON.
func Log(cfg LogConfig) []kafka.Message {
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5bd1e995))
	msgs := make([]kafka.Message, 0, cfg.Records)
	ts := cfg.Start
	price := func() float64 { return 100 + float64(r.IntN(40))*0.25 }
	var u codec.Update
	for k := range cfg.Records {
		u.Reset()
		s := r.IntN(cfg.Symbols)
		u.Sym = fmt.Appendf(nil, "BAR%02d", s)
		ts += r.Int64N(2 * cfg.Step)
		trades := s%4 != 0 && (s%4 != 1 || k >= cfg.Records/2)
		switch kind := r.IntN(10); {
		case kind == 0 && r.IntN(5) == 0:
			// No ts: ingest stamps its own time, which no reference knows,
			// so such a record carries nothing that moves a bar.
			u.Set(codec.FieldVolume, float64(r.IntN(5)))
			goto encode
		case kind == 1:
			u.Set(codec.FieldTS, float64(max(ts-r.Int64N(3*cfg.Step+1), 0))) // late
		default:
			u.Set(codec.FieldTS, float64(ts))
		}
		switch kind := r.IntN(10); {
		case kind < 4 && trades:
			u.Set(codec.FieldLast, price())
			if r.IntN(3) > 0 {
				u.Set(codec.FieldLastSize, float64(100*(1+r.IntN(5))))
			}
		case kind < 8:
			if r.IntN(2) == 0 {
				u.Set(codec.FieldBid, price())
			}
			if r.IntN(2) == 0 {
				u.Set(codec.FieldAsk, price()+0.25)
			}
			if u.Mask&^(1<<codec.FieldTS) == 0 {
				u.Set(codec.FieldBidSize, float64(r.IntN(3)))
			}
		default:
			u.Set(codec.FieldVolume, float64(r.IntN(5)))
		}
	encode:
		var v []byte
		if k%2 == 0 {
			v = codec.AppendRecordJSON(nil, &u, false)
		} else {
			v = codec.AppendRecord(nil, &u, false)
		}
		msgs = append(msgs, kafka.Message{Key: slices.Clone(u.Sym), Value: v})
	}
	return msgs
}
