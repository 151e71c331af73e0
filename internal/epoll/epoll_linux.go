//go:build linux

// Package epoll is an epoll set whose waiter a pipe can wake: what the
// server's connection poller (server/wspoll_linux.go) and the load
// benchmark's (bench/pollloop_linux.go) share. Each reads many sockets
// with a few goroutines; how they read and who holds a connection is
// their own.
package epoll

import (
	"errors"
	"fmt"
	"syscall"
)

// Set is an epoll set. An event carries a 64-bit key of the caller's,
// never the fd: fd numbers are reused as soon as a socket is closed, and
// an event read before a close may be handled after it.
type Set struct {
	fd   int
	wake [2]int // a pipe: a byte in it makes Wait return WakeKey
}

// WakeKey is the key of the event Wake causes; no other key may be it.
const WakeKey = ^uint64(0)

// New makes a set.
func New() (*Set, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	s := &Set{fd: fd}
	if err := syscall.Pipe2(s.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	if err := s.Control(syscall.EPOLL_CTL_ADD, s.wake[0], syscall.EPOLLIN, WakeKey); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Control adds (op EPOLL_CTL_ADD) fd to the set or changes (EPOLL_CTL_MOD)
// what it waits for: events, reported with key.
func (s *Set) Control(op, fd int, events uint32, key uint64) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
	if err := syscall.EpollCtl(s.fd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// Delete takes fd out of the set. Closing the fd does it too, when no
// other fd refers to its file.
func (s *Set) Delete(fd int) error {
	if err := syscall.EpollCtl(s.fd, syscall.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// Wait waits up to msec milliseconds (-1: without end) for events and
// returns how many it put in events; an interrupted wait returns none.
func (s *Set) Wait(events []syscall.EpollEvent, msec int) (int, error) {
	n, err := syscall.EpollWait(s.fd, events, msec)
	if errors.Is(err, syscall.EINTR) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("epoll_wait: %w", err)
	}
	return n, nil
}

// Key returns the key of an event Wait returned.
func Key(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Wake makes every Wait, now and later, return an event of WakeKey.
func (s *Set) Wake() {
	_, _ = syscall.Write(s.wake[1], []byte{1}) // one byte stays readable: nothing to handle
}

// Close closes the set. No Control, Delete or Wait may run meanwhile or
// after.
func (s *Set) Close() {
	syscall.Close(s.fd)
	syscall.Close(s.wake[0])
	syscall.Close(s.wake[1])
}
