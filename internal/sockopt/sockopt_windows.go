//go:build windows

package sockopt

import (
	"syscall"
	"unsafe"
)

func setRecvBuffer(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

func sendBufferSize(fd uintptr) (int, error) {
	var n int32
	size := int32(unsafe.Sizeof(n))
	err := syscall.Getsockopt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, (*byte)(unsafe.Pointer(&n)), &size)
	return int(n), err
}
