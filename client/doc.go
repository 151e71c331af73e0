// Package client is a Go client of the tickstream protocol v1: it connects,
// subscribes, and rebuilds each symbol's state from SNAPSHOT and DELTA
// messages, checking the ordering guarantees as it goes.
//
// A [Book] holds the rebuilt state and the record of every contract
// violation; it works on its own, fed with frames by the caller, so that tests
// can drive it without a network. [Dial] opens a WebSocket connection whose
// read goroutine feeds a Book; the connection's requests ([Conn.Subscribe],
// [Conn.Unsubscribe], [Conn.Snap], [Conn.Ping]) tell the Book what to expect.
//
// The bodies of the REST API ([SnapshotResponse], [SymbolsResponse],
// [ReadyResponse]) are defined here too, and the server encodes these very
// types; [FetchSnapshot] reads a server's state for comparison with a Book's.
//
// # A probe, not an application client
//
// The Go client is the project's contract checker: one connection, every
// message checked, nothing healed. A [Conn] does not reconnect, resubscribe
// or send SNAP after a violation; when the connection ends, it reports how
// ([Conn.CloseCode], [Conn.CloseReason]) and its Book keeps what it saw. An
// application that must ride out restarts uses the TypeScript SDK (web/src/sdk),
// which reconnects with backoff and resyncs, or does the same around Dial.
// That is deliberate: each of its users needs to see every close and every
// breach, not have them repaired —
//
//   - the load benchmark holds thousands of connections in one process (one
//     goroutine per connection, a Book that allocates nothing per binary
//     SNAPSHOT or DELTA, a callback per decoded message), asks the Book
//     whether a connection has its snapshots ([Book.Ready]) and how much was
//     conflated ([Book.Skipped]), counts closes as failures and reconnects
//     itself in its storm;
//   - the fanout engine's tests feed a Book frames without a network, and
//     the server's end-to-end tests read the rebuilt state and the
//     violations;
//   - `tickstream watch` keeps its own short reconnect loop around Dial, with
//     a new Book per connection.
//
// The SDK checks the same contract in its own language, against the wire
// examples of docs/PROTOCOL.md that codec's tests check byte for byte.
//
// # Assumptions beyond the contract
//
// The client assumes that the server handles a connection's requests in the
// order they were sent and answers them in that order, behind every data
// message it queued before: a reply (ACK, PONG or ERROR) to request n
// proves that every request before n was processed. This is how the Book
// learns that an UNSUB took effect (UNSUB has no reply of its own): until
// then, messages for the symbol are expected and ignored; after it, they are
// violations.
package client
