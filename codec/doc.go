// Package codec encodes and decodes everything tickstream puts on a wire:
// the protocol v1 messages exchanged with clients (MessagePack binary frames
// and their JSON text twin) and the price-update records read from Kafka.
//
// The hot paths (server messages, update records) are hand-written append
// functions over caller-owned buffers, so that steady-state encoding and
// decoding allocate nothing. github.com/vmihailenco/msgpack/v5 serves as the
// reference implementation in the tests: every encoder here is checked by
// decoding its output with it, and every decoder by feeding it its output.
package codec
