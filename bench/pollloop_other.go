//go:build !linux

package bench

import "log/slog"

// newConnPoller has no poller to offer but on Linux: every connection is a
// client.Conn, read by a goroutine of its own.
func newConnPoller(*slog.Logger) (connPoller, error) { return nil, nil }
