package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// bigTransact inserts n Endpoint rows in one transaction on the member at
// endpoint ("tcp:IP:PORT") over a raw connection, as a hand-written tool
// would: no call timeout, so the leader is busy for as long as it takes.
func bigTransact(t *testing.T, endpoint string, n int) time.Duration {
	t.Helper()
	params := []any{"OVS_VXCTL_Directory"}
	for i := range n {
		params = append(params, map[string]any{"op": "insert", "table": "Endpoint", "row": map[string]any{
			"vni": 4000, "mac": fmt.Sprintf("02:bb:%02x:%02x:%02x:01", i>>16&0xff, i>>8&0xff, i&0xff),
			"host": "bulk", "kind": "learned", "writer": "bulk", "updated": 1}})
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp:"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := json.NewEncoder(conn).Encode(map[string]any{"method": "transact", "params": params, "id": 1}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(conn)
	for {
		var msg struct {
			ID     any               `json:"id"`
			Result []json.RawMessage `json:"result"`
			Error  any               `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			t.Fatalf("reading the big transaction's reply: %v", err)
		}
		if msg.ID != float64(1) {
			continue // an echo from the server
		}
		if msg.Error != nil || len(msg.Result) != n {
			t.Fatalf("big transaction: error %v, %d results for %d rows", msg.Error, len(msg.Result), n)
		}
		for _, r := range msg.Result {
			if strings.Contains(string(r), `"error"`) {
				t.Fatalf("big transaction: %s", r)
			}
		}
		return time.Since(start)
	}
}

// F3: one big hand-written transaction stalls the leader for seconds ahead
// of every replica's heartbeat, and may cut their sessions; they come back
// at different times. No replica may judge the other dead meanwhile, nor
// take its switch.
func TestClusterBigWriteNoFalseFailover(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	// b comes back later than a: a member that accepts and never answers
	// sits before the leader in any rotation, and costs it ConnectTimeout
	// (as a busy controller or a far member did in the lab).
	b := openSlowReconnect(t, ms, "ctl-b", 1500*time.Millisecond)
	bothAlive(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const dpid = 0xb16
	first, won, err := a.Claim(ctx, dpid, "host1", "br0")
	if err != nil || !won {
		t.Fatalf("a's claim: %+v won %v err %v", first, won, err)
	}
	var deaths atomic.Int32
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if !b.Alive("ctl-a") || !a.Alive("ctl-b") {
				deaths.Add(1)
			}
		}
	}()
	took := bigTransact(t, a.Leader(), 20000)
	// The grace after a reconnect ends at most 3 timeouts + 1 after it:
	// watch past it.
	time.Sleep(5 * time.Second)
	close(stop)
	<-watched
	sa, sb := a.Stats(), b.Stats()
	t.Logf("20,000 rows committed in %v; a: failovers %d, heartbeat failures %d; b: failovers %d, heartbeat failures %d",
		took, sa.Failovers, sa.HeartbeatFailures, sb.Failovers, sb.HeartbeatFailures)
	if n := deaths.Load(); n > 0 {
		t.Errorf("a replica was judged dead %d times (5 ms polls) during and after a big write", n)
	}
	got, won, err := b.Claim(ctx, dpid, "host1", "br0")
	if err != nil || won || got.Master != "ctl-a" {
		t.Errorf("b's claim after the big write: %+v won %v err %v; want a still master", got, won, err)
	}
}

// openSlowReconnect opens a replica with a silent extra member in its
// endpoints, tried for connect before it gets back to the leader.
func openSlowReconnect(t *testing.T, ms []*member, name string, connect time.Duration) *Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	o := Options{Endpoints: append(endpoints(ms), "tcp:"+l.Addr().String()), Name: name, Address: "tcp:127.0.0.1:6653",
		Logger: zaptest.NewLogger(t).Named(name), HeartbeatInterval: 100 * time.Millisecond, ReplicaTimeout: time.Second,
		ConnectTimeout: connect}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}
