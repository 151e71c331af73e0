// Package embedded runs an in-process Kafka-protocol broker on a loopback
// port, so that `tickstream serve` works out of the box and tests need no
// external Kafka. It is github.com/twmb/franz-go/pkg/kfake with an outage
// switch for demos and tests.
package embedded

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker is a running in-process broker.
type Broker struct {
	cluster *kfake.Cluster
	down    atomic.Bool
}

// Start starts a broker on a random loopback port with topic created with
// the given number of partitions.
func Start(topic string, partitions int) (*Broker, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(0),
		kfake.SeedTopics(int32(partitions), topic),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	b := &Broker{cluster: c}
	errDown := errors.New("embedded broker is down (outage simulation)")
	// A permanent control function: while the outage switch is on, every
	// request gets its connection closed, as with a broker that went away.
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		if !b.down.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		return nil, errDown, true
	})
	return b, nil
}

// Addrs returns the broker's host:port addresses.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// SetDown turns the outage simulation on or off: while down, the broker
// refuses every request.
func (b *Broker) SetDown(down bool) { b.down.Store(down) }

// Down reports whether the outage simulation is on.
func (b *Broker) Down() bool { return b.down.Load() }

// Close stops the broker.
func (b *Broker) Close() { b.cluster.Close() }
