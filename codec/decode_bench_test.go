package codec

import "testing"

// BenchmarkDecodeCommands decodes a frame of the requests a client sends
// most: a SUB with options, a PING and an UNSUB.
func BenchmarkDecodeCommands(b *testing.B) {
	opts := &SubOptions{Snap: true, MaxHz: 4, Fields: 1<<FieldBid | 1<<FieldAsk}
	for _, f := range []Format{Binary, JSON} {
		frame := f.AppendSub(nil, 1, []string{"AAPL", "MSFT", "BRK.B"}, opts)
		frame = f.AppendPing(f.AppendSeparator(frame), 2, 1764000000.25)
		frame = f.AppendUnsub(f.AppendSeparator(frame), 3, []string{"MSFT"})
		b.Run(f.String(), func(b *testing.B) {
			var c Command
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				f.DecodeCommands(frame, &c, func(_ *Command, err error) {
					if err != nil {
						b.Fatal(err)
					}
				})
			}
		})
	}
}

// BenchmarkDecodeMessages decodes a frame as a client receives it under
// load: an ACK, a SNAPSHOT and three DELTAs.
func BenchmarkDecodeMessages(b *testing.B) {
	v := sampleState()
	delta := FieldMask(1<<FieldTS | 1<<FieldBid | 1<<FieldAsk)
	for _, f := range []Format{Binary, JSON} {
		frame := f.AppendAck(nil, 1, []SymbolID{{Sym: "AAPL", SID: 1}})
		frame = f.AppendState(f.AppendSeparator(frame), OpSnapshot, 1, 1, AllFields, v)
		for seq := uint64(2); seq < 5; seq++ {
			frame = f.AppendState(f.AppendSeparator(frame), OpDelta, 1, seq, delta, v)
		}
		b.Run(f.String(), func(b *testing.B) {
			var m Message
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if err := f.DecodeMessages(frame, &m, func(*Message) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
