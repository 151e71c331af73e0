package fanout

import "testing"

func TestOutBufClasses(t *testing.T) {
	tests := []struct {
		n, class int
	}{
		{0, 0}, {1, 0}, {256, 0}, {257, 1}, {2048, 1}, {2049, 2},
		{16 << 10, 2}, {16<<10 + 1, 3}, {128 << 10, 3}, {128<<10 + 1, 4},
		{1 << 20, 4}, {1<<20 + 1, outBufClasses},
	}
	var p outBufPool
	for _, tc := range tests {
		if got := classOf(tc.n); got != tc.class {
			t.Errorf("classOf(%d) = %d, want %d", tc.n, got, tc.class)
		}
		ob := p.get(tc.n)
		if cap(ob.b) < tc.n || len(ob.b) != 0 {
			t.Errorf("get(%d): len %d cap %d", tc.n, len(ob.b), cap(ob.b))
		}
		if tc.class < outBufClasses && cap(ob.b) != 1<<(outBufMinShift+3*tc.class) {
			t.Errorf("get(%d): cap %d is not class %d's", tc.n, cap(ob.b), tc.class)
		}
	}
}

// TestOutBufPoolReuses checks that a buffer given back is handed out
// again, emptied, and that the pool keeps no more than its bound of a
// class.
func TestOutBufPoolReuses(t *testing.T) {
	var p outBufPool
	ob := p.get(100)
	ob.b = append(ob.b, "abc"...)
	ob.cuts = append(ob.cuts, 1)
	p.put(ob)
	if again := p.get(10); again != ob || len(again.b) != 0 || len(again.cuts) != 0 {
		t.Fatalf("get after put: %p len %d cuts %d, want the buffer given back, empty", again, len(again.b), len(again.cuts))
	}
	const size = 1 << 20 // the largest class
	for range outBufPoolBytes/size + 3 {
		p.put(&outBuf{b: make([]byte, 0, size)})
	}
	if n := len(p.classes[4].free); n != outBufPoolBytes/size {
		t.Errorf("pool keeps %d buffers of 1 MiB, want at most %d", n, outBufPoolBytes/size)
	}
	p.put(&outBuf{b: make([]byte, 0, 300)}) // not a class size: dropped
	if n := len(p.classes[1].free); n != 0 {
		t.Errorf("pool kept a buffer of no class: %d in class 1", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { p.put(p.get(1000)) }); allocs != 0 {
		t.Errorf("get and put of a pooled class: %v allocations, want 0", allocs)
	}
}
