package wsframe

import (
	"bytes"
	"testing"
)

// TestAppendFrameRoundTrip checks that what AppendFrame writes, in each of
// the three length encodings, masked or not, a Reader of the other side
// reads back.
func TestAppendFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		for _, client := range []bool{false, true} {
			p := bytes.Repeat([]byte{'a', 'b', 'c'}, n/3+1)[:n]
			h := Header{Fin: true, Opcode: OpBinary, Masked: client, Key: [4]byte{1, 2, 3, 4}}
			stream := AppendFrame(nil, h, p)
			if h.Length = uint64(n); len(stream)-n != h.Len() {
				t.Errorf("%d bytes, client %t: a header of %d bytes, Len says %d", n, client, len(stream)-n, h.Len())
			}
			r := Reader{MaxSize: 1 << 20, Client: !client}
			var sink recordSink
			if end, ended := r.Feed(stream, &sink); ended {
				t.Fatalf("%d bytes, client %t: ended %+v", n, client, end)
			}
			if len(sink.messages) != 1 || !bytes.Equal(sink.messages[0], p) {
				t.Errorf("%d bytes, client %t: read %d messages, want the payload back", n, client, len(sink.messages))
			}
		}
	}
}
