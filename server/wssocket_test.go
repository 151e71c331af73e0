package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/lxzan/gws"

	"github.com/tickstream/tickstream/fanout"
)

// TestWriteFrameHeader holds writeFrame's headers to RFC 6455 §5.2: FIN and
// the opcode, then the payload length in 7 bits, in 16 after 126, or in 64
// after 127, no mask; the payload follows unchanged.
func TestWriteFrameHeader(t *testing.T) {
	tests := []struct {
		opcode gws.Opcode
		n      int
		header []byte
	}{
		{gws.OpcodeBinary, 0, []byte{0x82, 0}},
		{gws.OpcodeText, 1, []byte{0x81, 1}},
		{gws.OpcodeBinary, 125, []byte{0x82, 125}},
		{gws.OpcodeBinary, 126, []byte{0x82, 126, 0, 126}},
		{gws.OpcodeText, 65535, []byte{0x81, 126, 0xff, 0xff}},
		{gws.OpcodeBinary, 65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{gws.OpcodeBinary, 70000, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	}
	for _, tt := range tests {
		payload := bytes.Repeat([]byte{'x'}, tt.n)
		p := append(make([]byte, fanout.MaxFrameRoom), payload...)
		got := writeOne(t, func(s *wsSocket) error { return s.writeFrame(tt.opcode, p) })
		if want := append(bytes.Clone(tt.header), payload...); !bytes.Equal(got, want) {
			t.Errorf("opcode %d, %d bytes: wrote % x…, want % x…", tt.opcode, tt.n, got[:min(len(got), 12)], want[:min(len(want), 12)])
		}
	}
}

// TestNoDataFrameAfterClose checks that once a close frame went out through
// the socket, writeFrame refuses to put a data frame behind it.
func TestNoDataFrameAfterClose(t *testing.T) {
	got := writeOne(t, func(s *wsSocket) error {
		if _, err := s.Write(closeNormalFrame); err != nil {
			return err
		}
		p := append(make([]byte, fanout.MaxFrameRoom), "late"...)
		if err := s.writeFrame(gws.OpcodeBinary, p); !errors.Is(err, net.ErrClosed) {
			t.Errorf("a data frame after the close frame: %v, want net.ErrClosed", err)
		}
		return nil
	})
	if !bytes.Equal(got, closeNormalFrame) {
		t.Errorf("wrote % x, want only the close frame % x", got, closeNormalFrame)
	}
}

// TestUpgradeResponseIsNotAClose checks that the upgrade's HTTP response,
// which gws writes through the same socket, does not pass for a close frame
// ('H' is 0x48: opcode 8 in its low bits).
func TestUpgradeResponseIsNotAClose(t *testing.T) {
	response := []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")
	frame := append(make([]byte, fanout.MaxFrameRoom), "hello"...)
	got := writeOne(t, func(s *wsSocket) error {
		if _, err := s.Write(response); err != nil {
			return err
		}
		return s.writeFrame(gws.OpcodeBinary, frame)
	})
	if want := append(bytes.Clone(response), 0x82, 5, 'h', 'e', 'l', 'l', 'o'); !bytes.Equal(got, want) {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// writeOne runs write on a socket over a pipe and returns what it wrote.
func writeOne(t *testing.T, write func(*wsSocket) error) []byte {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan []byte)
	go func() {
		got, _ := io.ReadAll(b)
		done <- got
	}()
	s := &wsSocket{Conn: a}
	if err := write(s); err != nil {
		t.Fatal(err)
	}
	a.Close()
	return <-done
}
