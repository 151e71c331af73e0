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
// The client is built for three users at once: the `tickstream watch`
// terminal table, the load benchmark that holds thousands of connections in
// one process (one goroutine per connection, a Book that allocates nothing
// per binary SNAPSHOT or DELTA, a callback per decoded message), and the server's
// end-to-end tests, which read the rebuilt state and the violations.
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
