package fanout

import "slices"

// subSet is a client's subscriptions, sorted by symbol name. A sorted slice
// costs 8 bytes a subscription where a map by name cost about 40 (slots of
// a 16-byte key and an 8-byte value, at most 7 in 8 used): a connection's
// memory is mostly its subscriptions (issue 12, memory per connection).
// Lookups by name are only made for requests (SUB, UNSUB, SNAP), where a
// binary search is as fast as hashing the name.
type subSet []*subscription

// find returns where name is, or would be inserted, and whether it is there.
func (ss subSet) find(name string) (int, bool) {
	// A loop of its own rather than slices.BinarySearchFunc, whose closure
	// makes a name converted from the frame's bytes escape to the heap.
	lo, hi := 0, len(ss)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ss[m].sym.Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(ss) && ss[lo].sym.Name == name
}

// get returns the subscription to name, nil when there is none.
func (ss subSet) get(name string) *subscription {
	if i, ok := ss.find(name); ok {
		return ss[i]
	}
	return nil
}

// put adds s, which must not be in the set yet.
func (ss *subSet) put(s *subscription) {
	i, _ := ss.find(s.sym.Name)
	*ss = slices.Insert(*ss, i, s)
}

// remove takes the subscription to name out of the set, if it is there.
func (ss *subSet) remove(name string) {
	if i, ok := ss.find(name); ok {
		*ss = slices.Delete(*ss, i, i+1)
	}
}
