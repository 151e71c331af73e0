//go:build linux

package server

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLoopbackWriteFloor measures the floor under the server's CPU per
// frame on this machine: one write(2) of a 42-byte binary WebSocket frame (a
// typical DELTA) to one of conns loopback sockets in turn, with nothing of
// the server around it, readers draining the other ends. It reports the CPU
// time of the writing thread per write (cpu-ns/write, split into user and
// sys), which on loopback includes the receiving side's TCP work done in the
// writer's context; compare it with the server's CPU per frame
// (tickstream_frames_out_total and the process's CPU time) in the same
// shape (docs/BENCHMARKS.md).
func BenchmarkLoopbackWriteFloor(b *testing.B) {
	for _, conns := range []int{1, 1000, 9000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			writers := dialPairs(b, conns)
			frame := make([]byte, 42)
			frame[0], frame[1] = 0x82, 40 // FIN, binary; 40 bytes unmasked
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			u0, s0 := threadCPU(b)
			b.ResetTimer()
			for i := range b.N {
				if _, err := writers[i%conns].Write(frame); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			u1, s1 := threadCPU(b)
			b.ReportMetric(float64(u1-u0+s1-s0)/float64(b.N), "cpu-ns/write")
			b.ReportMetric(float64(u1-u0)/float64(b.N), "user-ns/write")
			b.ReportMetric(float64(s1-s0)/float64(b.N), "sys-ns/write")
		})
	}
}

// dialPairs opens n loopback TCP connections and returns their accepted
// ends; a goroutine per dialed end reads and discards until the benchmark
// ends and closes them.
func dialPairs(b *testing.B, n int) []net.Conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make([]net.Conn, 0, n)
	var readers sync.WaitGroup
	var dialed []net.Conn
	b.Cleanup(func() {
		for _, c := range accepted {
			c.Close()
		}
		for _, c := range dialed {
			c.Close()
		}
		readers.Wait()
	})
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatalf("dial %d of %d: %v", len(dialed)+1, n, err)
		}
		dialed = append(dialed, c)
		readers.Go(func() { _, _ = io.Copy(io.Discard, c) })
		a, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		accepted = append(accepted, a)
	}
	return accepted
}

// threadCPU returns the user and system CPU time of the calling OS thread.
func threadCPU(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
