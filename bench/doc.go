// Package bench is the engine of `tickstream bench`, the load benchmark: it
// drives a running tickstream server with many WebSocket connections while
// it feeds the server's Kafka topic at a chosen rate, and measures what the
// connections receive.
//
// Every connection is a client.Conn, whose Book checks the protocol's
// ordering contract as the messages arrive, and tells when the connection
// has all its snapshots (Ready) and how many seqs its DELTAs skipped
// (conflation); the benchmark keeps no per-symbol record of its own. A
// light per-message callback counts deliveries and the latency from each
// update's event time (its ts, stamped by the market simulator that feeds
// the topic) to its receipt, into HDR histograms. After the feed stops, each
// connection's rebuilt state is compared with the server's own: an update
// lost, rather than merged into a later DELTA, shows there.
//
// A run has a connection phase (optionally ramped, its time measured), then
// one step per rate: a warm-up that is not counted, an optional reconnection
// storm, and a measured window. A find-max run steps the rate up until the
// p99 latency passes its limit or deliveries fall behind. Every loop and wait
// is bounded; Run returns a Result with every figure, which WriteSummary,
// WriteJSON and WritePlot present.
package bench
