// Package codec encodes and decodes everything tickstream puts on a wire:
// the protocol v1 messages exchanged with clients (MessagePack binary frames
// and their JSON text twin) and the price-update records read from Kafka.
//
// The hot paths (server messages, update records) are hand-written append
// functions over caller-owned buffers, so that steady-state encoding and
// decoding allocate nothing. github.com/vmihailenco/msgpack/v5 serves as the
// reference implementation in the tests: every encoder here is checked by
// decoding its output with it, and every decoder by feeding it its output.
//
// # How decoding is organised
//
// One reader type walks a byte slice without allocating (except to unescape
// a JSON string): its MessagePack methods are in mp.go, its JSON methods in
// json.go, a strict RFC 8259 tokenizer that nests at most 32 deep, keeps
// numbers as their text until asked for a value, and unescapes strings
// (surrogate pairs included) only when they hold an escape. encoding/json is
// not used.
//
// Protocol messages are decoded once for both formats: Format.splitMessages
// cuts a frame into its messages (checking the syntax of each), and
// decodeCommand and decodeMessage read one message through the reader's value
// methods (reader.go: array and map length, unsigned integer, number, raw
// number, string, boolean, nil, skip), each of which calls the MessagePack or
// the JSON method by the reader's json flag. JSON has no length prefix, so
// the JSON side counts an array's or object's elements by scanning it before
// its first element is read.
//
// Kafka records keep one decoder per format (record.go), on purpose: they are
// ingest's hot path. Read through the value methods, a JSON record costs two
// more scans (the syntax check and the member count), 1.9 times the time of
// the dedicated decoder, and even the flag test in each value method made the
// MessagePack record decoder 12 % slower (docs/BENCHMARKS.md). So the record
// decoders call the MessagePack and the JSON methods directly.
package codec
