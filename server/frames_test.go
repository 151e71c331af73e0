package server

import "testing"

// FuzzFrameGuard checks that the guard judges a stream the same however it
// arrives: whole, or cut into reads at arbitrary points.
func FuzzFrameGuard(f *testing.F) {
	f.Add([]byte{0x82, 0x81, 1, 2, 3, 4, 0x90}, []byte{1, 3}, true)
	f.Add([]byte{0xa2, 0x80, 1, 2, 3, 4}, []byte{2}, true)
	f.Add([]byte{0x89, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, []byte{5, 1}, false)
	f.Add([]byte{0x01, 0xfe, 0x01, 0x00, 9, 9, 9, 9}, []byte{0, 7}, true)
	f.Fuzz(func(t *testing.T, stream, cuts []byte, deflate bool) {
		whole := &frameGuard{deflate: deflate}
		want := whole.scan(stream)
		pieces := &frameGuard{deflate: deflate}
		var got string
		rest := stream
		for _, c := range cuts {
			if got != "" || len(rest) == 0 {
				break
			}
			n := min(int(c), len(rest))
			got = pieces.scan(rest[:n])
			rest = rest[n:]
		}
		if got == "" {
			got = pieces.scan(rest)
		}
		if got != want {
			t.Fatalf("in pieces %q, whole %q", got, want)
		}
		if want == "" && (pieces.have != whole.have || pieces.skip != whole.skip || pieces.hdr != whole.hdr) {
			t.Fatalf("state in pieces %d/%d, whole %d/%d", pieces.have, pieces.skip, whole.have, whole.skip)
		}
	})
}
