package epoll

import (
	"net"
	"syscall"
	"testing"
)

// TestSet checks that a readable socket's event carries its 64-bit key,
// that a modified registration reports the new key, and that Wake ends a
// wait without end.
func TestSet(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rc, err := srv.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	const key = 0x1234_5678_9abc_def0
	var cerr error
	_ = rc.Control(func(fd uintptr) {
		cerr = s.Control(syscall.EPOLL_CTL_ADD, int(fd), syscall.EPOLLIN|syscall.EPOLLONESHOT, key)
	})
	if cerr != nil {
		t.Fatal(cerr)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	events := make([]syscall.EpollEvent, 4)
	wait := func(want uint64) {
		t.Helper()
		n, err := s.Wait(events, 5000)
		if err != nil || n != 1 || Key(&events[0]) != want {
			t.Fatalf("wait: %d events (%v), the first of key %#x; want one of %#x", n, err, Key(&events[0]), uint64(want))
		}
	}
	wait(key)
	_ = rc.Control(func(fd uintptr) {
		cerr = s.Control(syscall.EPOLL_CTL_MOD, int(fd), syscall.EPOLLIN|syscall.EPOLLONESHOT, key+1)
	})
	if cerr != nil {
		t.Fatal(cerr)
	}
	wait(key + 1)
	s.Wake()
	wait(WakeKey)
}
