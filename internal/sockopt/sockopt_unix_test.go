//go:build unix

package sockopt

import (
	"net"
	"syscall"
	"testing"
)

// TestRecvBuffer dials with a small receive buffer and reads it back from
// the socket: well under the default, which is what the slow readers of the
// tests rely on.
func TestRecvBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	get := func(c net.Conn) int {
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var gerr error
		if err := rc.Control(func(fd uintptr) { n, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		return n
	}
	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	d := net.Dialer{Control: RecvBuffer(4096)}
	small, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if got, def := get(small), get(plain); got > 2*4096 || got >= def {
		t.Errorf("SO_RCVBUF %d with RecvBuffer(4096), %d without: want at most 8192 and below the default", got, def)
	}
}
