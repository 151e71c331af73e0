package fanout

import (
	"container/list"
	"errors"

	"github.com/tickstream/tickstream/snapshot"
)

// heldName is a name without data that a client holds in the store
// (snapshot.Store.Reserve): one it subscribes, or one it unsubscribed and
// still remembers, so that a later SUB of it gets the same sid, as the
// protocol promises for the life of the connection.
type heldName struct {
	sym *snapshot.Symbol
	// idle is the name's place in Client.idle while no subscription of
	// the client uses it, nil while one does.
	idle *list.Element
}

// errHeldFull refuses a name without data past Config.MaxReserved.
var errHeldFull = errors.New("fanout: too many symbols without data")

// holdLocked returns the symbol a new subscription of name follows when
// the feed has no data for it: the one the client already holds, else a
// new reservation. Past Config.MaxReserved names it first forgets names the
// feed has taken over (a sweep of every held name, so once per request:
// *swept), then the client's oldest unsubscribed name; it returns
// errHeldFull when every held name is subscribed, and
// snapshot.ErrReservedFull when the store holds its maximum. c.mu is held.
func (c *Client) holdLocked(name []byte, swept *bool) (*snapshot.Symbol, error) {
	if h := c.held[string(name)]; h != nil {
		if h.idle != nil {
			c.idle.Remove(h.idle)
			h.idle = nil
		}
		return h.sym, nil
	}
	if len(c.held) >= c.hub.cfg.MaxReserved && !*swept {
		c.forgetTakenOverLocked()
		*swept = true
	}
	if len(c.held) >= c.hub.cfg.MaxReserved && !c.forgetOldestLocked() {
		return nil, errHeldFull
	}
	sym, reserved, err := c.hub.store.Reserve(name)
	if errors.Is(err, snapshot.ErrReservedFull) && c.forgetOldestLocked() {
		sym, reserved, err = c.hub.store.Reserve(name)
	}
	if err != nil {
		return nil, err
	}
	if reserved {
		if c.held == nil {
			c.held = map[string]*heldName{} // most clients never hold a name
		}
		c.held[sym.Name] = &heldName{sym: sym}
	}
	return sym, nil
}

// idleLocked notes that no subscription of the client uses name any more:
// a held name stays held, as the oldest to forget. c.mu is held.
func (c *Client) idleLocked(name string) {
	if h := c.held[name]; h != nil && h.idle == nil {
		h.idle = c.idle.PushBack(h)
	}
}

// forgetTakenOverLocked forgets the held names the feed has sent data for
// since: they are the feed's symbols now, whose sid never changes, and the
// store has nothing to release. c.mu is held.
func (c *Client) forgetTakenOverLocked() {
	for name, h := range c.held {
		if h.sym.Load().Seq > 0 {
			if h.idle != nil {
				c.idle.Remove(h.idle)
			}
			delete(c.held, name)
		}
	}
}

// forgetOldestLocked releases the client's oldest unsubscribed held name,
// and reports whether there was one. c.mu is held.
func (c *Client) forgetOldestLocked() bool {
	e := c.idle.Front()
	if e == nil {
		return false
	}
	h := c.idle.Remove(e).(*heldName)
	delete(c.held, h.sym.Name)
	c.hub.store.Release(h.sym)
	return true
}
