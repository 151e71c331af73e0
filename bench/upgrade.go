package bench

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
)

// websocketGUID is the key suffix of the upgrade's accept hash (RFC 6455 §1.3).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgradeConn sends the WebSocket upgrade request of u, offering format's
// subprotocol and no extension, on conn, and reads and checks the 101 the
// benchmark's own connections (poll-read and non-reading ones) need. The
// reader it returns holds what came after the 101: the server's first
// frames, HELLO in the same segment. A refusal is a
// *client.HandshakeError, as client.Dial reports it.
func upgradeConn(conn net.Conn, u *neturl.URL, format codec.Format) (*bufio.Reader, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Protocol: " + format.String() + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &client.HandshakeError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return nil, errors.New("upgrade: the 101 does not upgrade to websocket")
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return nil, errors.New("upgrade: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != format.String():
		return nil, fmt.Errorf("upgrade: subprotocol %q, asked for %q", resp.Header.Get("Sec-WebSocket-Protocol"), format)
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return nil, errors.New("upgrade: an extension that was not offered")
	}
	return br, nil
}
