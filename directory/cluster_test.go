package directory

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"go.uber.org/zap/zaptest"
)

// member is one ovsdb-server of a test cluster.
type member = ovstest.Member

// freePort returns a TCP port nothing listens on at ip right now.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// startCluster creates a Raft cluster of n members of the directory's
// schema, each member an ovsdb-server on its own loopback address
// 127.0.0.(11+i); they are killed when t ends.
func startCluster(t *testing.T, n int) []*member {
	t.Helper()
	return ovstest.StartCluster(t, n, DatabaseName, Schema(), 11)
}

func endpoints(ms []*member) []string { return ovstest.Endpoints(ms) }

// memberAt returns the member whose client endpoint is remote.
func memberAt(t *testing.T, ms []*member, remote string) *member {
	t.Helper()
	for _, m := range ms {
		if m.Remote == remote {
			return m
		}
	}
	t.Fatalf("no member at %q", remote)
	return nil
}

// open opens a Client of the cluster and waits until it is ready.
func open(t *testing.T, ms []*member, name string, onChange func(old, new *Endpoint)) *Client {
	t.Helper()
	c, err := Open(Options{Endpoints: endpoints(ms), Name: name, OnChange: onChange, Logger: zaptest.NewLogger(t).Named(name)})
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

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ep(vni uint32, i int, host string) Endpoint {
	return Endpoint{Key: Key{VNI: vni, MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)},
		Host: host, IPs: []string{fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)}, Kind: KindDeclared}
}

func TestClusterWriteSeenByAnotherMonitor(t *testing.T) {
	ms := startCluster(t, 3)
	changes := make(chan [2]*Endpoint, 16)
	a := open(t, ms, "ctl1", nil)
	b := open(t, ms, "ctl2", func(old, new *Endpoint) { changes <- [2]*Endpoint{old, new} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	e := ep(100, 1, "host1")
	e.IPs = []string{"10.1.1.3", "10.1.1.2"}
	if err := a.Write(ctx, e); err != nil {
		t.Fatal(err)
	}
	got := <-changes
	if got[0] != nil || got[1] == nil || got[1].Host != "host1" || got[1].Writer != "ctl1" || got[1].Kind != KindDeclared ||
		strings.Join(got[1].IPs, ",") != "10.1.1.2,10.1.1.3" || time.Since(got[1].Updated) > 10*time.Second {
		t.Fatalf("b saw %+v -> %+v", got[0], got[1])
	}
	// The same key again is an update, seen as one.
	e.Host = "host2"
	if err := a.Write(ctx, e); err != nil {
		t.Fatal(err)
	}
	got = <-changes
	if got[0] == nil || got[0].Host != "host1" || got[1] == nil || got[1].Host != "host2" {
		t.Fatalf("b saw %+v -> %+v", got[0], got[1])
	}
	waitFor(t, 2*time.Second, "a's cache", func() bool { x, ok := a.Endpoint(e.Key); return ok && x.Host == "host2" })
	if a.Len() != 1 || b.Len() != 1 {
		t.Errorf("caches hold %d and %d endpoints, want 1", a.Len(), b.Len())
	}
}

// failover writes, takes the leader away with sig, and checks that writes
// resume within 5 s and that another client sees them.
func failover(t *testing.T, sig syscall.Signal) {
	ms := startCluster(t, 3)
	a := open(t, ms, "ctl1", nil)
	b := open(t, ms, "ctl2", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Write(ctx, ep(100, 1, "host1")); err != nil {
		t.Fatal(err)
	}
	leader := memberAt(t, ms, a.Leader())
	if err := leader.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := a.Write(wctx, ep(100, 2, "host2")); err != nil {
		t.Fatalf("no write within 5 s of %v to the leader: %v", sig, err)
	}
	t.Logf("write resumed %v after %v, on %s (was %s)", time.Since(start), sig, a.Leader(), leader.Remote)
	if a.Leader() == leader.Remote {
		t.Errorf("still connected to the old leader %s", leader.Remote)
	}
	waitFor(t, 5*time.Second, "b sees both endpoints", func() bool { return b.Len() == 2 })
	if s := a.Stats(); s.Failovers == 0 {
		t.Errorf("stats %+v: no failover counted", s)
	}
}

func TestClusterLeaderKilled(t *testing.T)  { failover(t, syscall.SIGKILL) }
func TestClusterLeaderStopped(t *testing.T) { failover(t, syscall.SIGSTOP) }

func TestClusterLearnedEndpointsBatched(t *testing.T) {
	ms := startCluster(t, 3)
	a := open(t, ms, "ctl1", nil)
	b := open(t, ms, "ctl2", nil)
	const n = 500
	for i := range n {
		e := ep(200, i, "host1")
		e.Kind = KindDeclared // Learn makes it learned
		if !a.Learn(e) {
			t.Fatalf("endpoint %d dropped", i)
		}
	}
	waitFor(t, 10*time.Second, "b sees 500 endpoints", func() bool { return b.Len() == n })
	// b can see the last batch before a has read the reply to it and
	// counted it, so wait for a's count too.
	waitFor(t, 5*time.Second, "a counts 500 rows", func() bool { return a.Stats().Rows == n })
	s := a.Stats()
	t.Logf("%+v", s)
	if s.Rows != n || s.Transactions > 5 || s.Dropped != 0 {
		t.Errorf("stats %+v: want %d rows in at most 5 transactions, none dropped", s, n)
	}
	if x, _ := b.Endpoint(ep(200, 7, "").Key); x.Kind != KindLearned || x.Writer != "ctl1" {
		t.Errorf("endpoint 7 = %+v", x)
	}
}
