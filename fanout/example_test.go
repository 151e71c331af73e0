package fanout_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/snapshot"
)

// printConn is a Transport that hands each JSON frame's messages to a
// channel, as a WebSocket client would read them.
type printConn struct{ msgs chan string }

func (p printConn) WriteFrame(frame []byte) error {
	for _, m := range bytes.Split(frame, []byte("\n")) {
		p.msgs <- string(m)
	}
	return nil
}

func (p printConn) Close(codec.CloseCode, string) {}

// A hub connected to a store: a client subscribes and gets HELLO, the ACK,
// the SNAPSHOT, and then a DELTA of only what each update changed.
func Example() {
	store := snapshot.New()
	hub, err := fanout.NewHub(store, fanout.Config{ServerID: "example", Heartbeat: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}

	u := &codec.Update{Sym: []byte("AAPL")}
	u.Set(codec.FieldTS, 1764072000123456)
	u.Set(codec.FieldBid, 187.23)
	u.Set(codec.FieldAsk, 187.25)
	store.Apply(u)

	conn := printConn{msgs: make(chan string, 16)}
	client := hub.Register(conn, fanout.ClientOptions{Format: codec.JSON})
	client.HandleFrame([]byte(`[1,7,["AAPL"],{"fields":["ts","bid","ask"]}]`))
	for range 3 {
		fmt.Println(<-conn.msgs)
	}

	u.Reset()
	u.Sym = []byte("AAPL")
	u.Set(codec.FieldTS, 1764072000124789)
	u.Set(codec.FieldBid, 187.24)
	store.Apply(u)
	fmt.Println(<-conn.msgs)

	hub.Close(codec.CloseGoingAway, "example over")
	// Output:
	// [20,1,"example",3600000,["ts","bid","bidSize","ask","askSize","last","lastSize","volume","open","high","low","prevClose"]]
	// [21,7,[["AAPL",1]]]
	// [22,1,1,{"0":1764072000123456,"1":187.23,"3":187.25}]
	// [23,1,2,{"0":1764072000124789,"1":187.24}]
}
