// Package backoff spaces the retries of a failing operation: the delay
// doubles after each failed attempt, from a first delay up to a bound, so
// that a long outage costs the other side a few requests a second, not a
// loop, and a short one is retried at once.
package backoff

import "time"

// Policy is the first delay between attempts and the bound of the delays.
type Policy struct {
	First, Max time.Duration
}

// Delay returns how long to wait after failed attempt n (1 for the first):
// First doubled n-1 times, at most Max.
func (p Policy) Delay(n int) time.Duration {
	d := p.First
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}
