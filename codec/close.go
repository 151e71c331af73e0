package codec

import "strconv"

// CloseCode is a WebSocket close code of protocol v1 (docs/PROTOCOL.md §12).
// The server, the Go client, watch, bench and the TypeScript SDK all take
// the codes, their names and what a client should do after each from here.
type CloseCode uint16

// The close codes of protocol v1.
const (
	CloseNormal             CloseCode = 1000
	CloseGoingAway          CloseCode = 1001
	CloseProtocolError      CloseCode = 1002
	CloseNoStatus           CloseCode = 1005 // none given (never sent)
	CloseAbnormal           CloseCode = 1006 // dropped without a close frame (never sent)
	CloseInvalidData        CloseCode = 1007
	ClosePolicy             CloseCode = 1008
	CloseTooBig             CloseCode = 1009
	CloseInternal           CloseCode = 1011
	CloseNotAuthenticated   CloseCode = 4001
	CloseNotEntitled        CloseCode = 4003 // in the contract; this server refuses per symbol instead
	CloseSlowConsumer       CloseCode = 4008
	CloseTooManyConnections CloseCode = 4029
)

var closeNames = map[CloseCode]string{
	CloseNormal:             "normal",
	CloseGoingAway:          "going away",
	CloseProtocolError:      "protocol error",
	CloseNoStatus:           "no status",
	CloseAbnormal:           "dropped",
	CloseInvalidData:        "invalid data",
	ClosePolicy:             "policy",
	CloseTooBig:             "message too big",
	CloseInternal:           "internal error",
	CloseNotAuthenticated:   "not authenticated",
	CloseNotEntitled:        "not entitled",
	CloseSlowConsumer:       "slow consumer",
	CloseTooManyConnections: "too many connections",
}

// String returns the code's name, "slow consumer", or "close 4123" for a
// code protocol v1 does not define.
func (c CloseCode) String() string {
	if n, ok := closeNames[c]; ok {
		return n
	}
	return "close " + strconv.Itoa(int(c))
}

// Reconnect is what a client should do after a close.
type Reconnect uint8

// The reconnect rules of protocol v1.
const (
	// ReconnectBackoff: reconnect, with backoff (and asking for less after
	// 4008).
	ReconnectBackoff Reconnect = iota
	// ReconnectNewCredentials: reconnect only with a new token.
	ReconnectNewCredentials
	// ReconnectNever: the same client would be refused again (its origin,
	// its entitlement, or a bug in it): final.
	ReconnectNever
)

// String returns the rule as docs/PROTOCOL.md §12 names it.
func (r Reconnect) String() string {
	switch r {
	case ReconnectNewCredentials:
		return "new credentials"
	case ReconnectNever:
		return "final"
	}
	return "backoff"
}

// Reconnect returns what a client should do after a close with c. A code
// protocol v1 does not define is taken as a passing failure.
func (c CloseCode) Reconnect() Reconnect {
	switch c {
	case CloseNotAuthenticated:
		return ReconnectNewCredentials
	case CloseProtocolError, CloseInvalidData, ClosePolicy, CloseTooBig, CloseNotEntitled:
		return ReconnectNever
	}
	return ReconnectBackoff
}
