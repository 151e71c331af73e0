// Package sockopt sets socket options that the standard library only sets
// after a connection is made, on the socket before it connects: a receive
// buffer set then also bounds the TCP window the peer is offered, which is
// what a test of a client that reads slowly needs.
package sockopt

import "syscall"

// RecvBuffer returns a net.Dialer Control function that sets the socket's
// receive buffer (SO_RCVBUF) to n bytes before it connects. The kernel may
// round n (Linux doubles it for its bookkeeping).
func RecvBuffer(n int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setRecvBuffer(fd, n) }); err != nil {
			return err
		}
		return serr
	}
}

// SendBufferSize returns the socket's send buffer (SO_SNDBUF), as the
// kernel holds it (Linux reports twice what was asked for).
func SendBufferSize(c syscall.RawConn) (int, error) {
	var n int
	var gerr error
	if err := c.Control(func(fd uintptr) { n, gerr = sendBufferSize(fd) }); err != nil {
		return 0, err
	}
	return n, gerr
}
