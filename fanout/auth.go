package fanout

import (
	"slices"
	"time"
)

// renew handles AUTH: the transport's Authenticate makes the token the
// connection's credential, the subscriptions its grant no longer allows
// are dropped as by UNSUB and named in one ERROR 403, and AUTHED carries
// the new expiry. A token that does not hold gets ERROR 401 and changes
// nothing.
func (c *Client) renew(id uint64, token []byte) {
	var expires time.Time
	if c.authn != nil {
		var err error
		if expires, err = c.authn(token); err != nil {
			c.sendError(id, 401, err.Error(), nil)
			return
		}
	}
	var revoked []string
	if c.entitled != nil {
		c.mu.Lock()
		for _, s := range c.subs {
			if !c.entitled(s.sym.Name) {
				revoked = append(revoked, s.sym.Name)
			}
		}
		c.mu.Unlock()
	}
	if len(revoked) > 0 {
		slices.Sort(revoked)
		names := make([][]byte, len(revoked))
		for i, n := range revoked {
			names[i] = []byte(n)
		}
		c.unsubscribe(id, names)
	}
	var expiresUs int64
	if !expires.IsZero() {
		expiresUs = expires.UnixMicro()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if len(revoked) > 0 {
		c.queueError(id, 403, "not entitled", revoked)
	}
	c.scratch = c.format.AppendAuthed(c.scratch[:0], id, expiresUs)
	c.queue(c.scratch)
	c.wake()
}
