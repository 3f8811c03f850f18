package controller

// A replica that wins a claim in the directory but whose MASTER role
// request then fails because its connection to the switch dropped (and
// stays down) must release the row: it names a live replica, so no other
// replica would ever claim the switch, leaving it without a master.

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// cutProxy forwards TCP connections to target until cut.
type cutProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.cut {
				c.Close()
				u.Close()
				p.mu.Unlock()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close(); c.Close() }()
			go func() { io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// stop cuts every connection and refuses new ones (the link is down).
func (p *cutProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.l.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// cutAfterClaim is a Directory that cuts the proxy right after this
// replica wins the claim of target: the role request that follows fails.
type cutAfterClaim struct {
	Directory
	target uint64
	cut    func()
	once   sync.Once
}

func (d *cutAfterClaim) ClaimAbove(ctx context.Context, dpid uint64, host, bridge string, min uint64) (SwitchOwner, bool, error) {
	o, won, err := d.Directory.ClaimAbove(ctx, dpid, host, bridge, min)
	if won && dpid == d.target {
		d.once.Do(d.cut)
	}
	return o, won, err
}

func TestReplicaReleasesClaimWhoseRoleRequestFailed(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	// The target: a switch the hash gives to ctl-a, so a claims it first.
	var target uint64
	for _, sw := range switchesOf(hosts) {
		if preferredReplica(sw.DatapathID(), []string{"ctl-a", "ctl-b"}, "ctl-a") == "ctl-a" {
			target = sw.DatapathID()
			break
		}
	}
	if target == 0 {
		t.Skip("no switch preferred by ctl-a")
	}
	var proxy *cutProxy
	la, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := func(h DirectoryHooks) (Directory, error) {
		d, err := dir.open(h)
		return &cutAfterClaim{Directory: d, target: target, cut: func() { proxy.stop() }}, err
	}
	a := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{la}, Name: "ctl-a", OpenDirectory: open,
		Grace: 100 * time.Millisecond})
	_ = a
	proxy = newCutProxy(t, la.Addr().String())
	b, addrB := replicaServer(t, topo, "ctl-b", dir)
	_ = b
	for _, e := range hosts {
		e.connect(t, proxy.l.Addr().String())
		e.connect(t, addrB)
	}
	hasMaster := func() bool {
		for _, s := range switchesOf(hosts) {
			if s.DatapathID() != target {
				continue
			}
			for _, c := range s.Conns() {
				if c.Role() == ofcodec.RoleMaster {
					return true
				}
			}
		}
		return false
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !hasMaster() {
		time.Sleep(20 * time.Millisecond)
	}
	o, _ := dir.owner(target)
	if !hasMaster() {
		t.Fatalf("switch %016x has no master 15s after ctl-a's link to it failed; the directory row names %q (generation %d), alive, so ctl-b never claims it",
			target, o.Master, o.Generation)
	}
	t.Logf("switch %016x master row %+v", target, o)
}

func TestOrphansDueAfterGrace(t *testing.T) {
	var o orphans
	now := time.Unix(1000, 0)
	if o.due(1, true, now) {
		t.Fatal("due at once")
	}
	if o.due(1, true, now.Add(orphanGrace-time.Millisecond)) {
		t.Fatal("due before the grace")
	}
	if !o.due(1, true, now.Add(orphanGrace)) {
		t.Fatal("not due after the grace")
	}
	if o.due(1, false, now.Add(orphanGrace)) || o.due(1, true, now.Add(orphanGrace+time.Second)) {
		t.Fatal("a session in between did not restart the grace")
	}
}

// A row naming this replica for a switch it has no session of (a release
// that failed, its previous run's row) is released after orphanGrace, so
// that a replica connected to the switch claims it.
func TestReplicaReleasesOrphanedRow(t *testing.T) {
	topo := parseTopo(t, testTopo)
	dir := newFakeCluster(time.Second)
	dpid := topology.BridgeDatapathID(topo.Name, "h1", topology.BridgeTun)
	dir.mu.Lock()
	dir.switches[dpid] = SwitchOwner{DatapathID: dpid, Host: "h1", Bridge: topology.BridgeTun, Master: "ctl-a", Generation: 7}
	dir.mu.Unlock()
	replicaServer(t, topo, "ctl-a", dir)
	// At least orphanGrace by design (up to a sweep interval more); the
	// rest is slack for a loaded machine running -race, where this once
	// missed a 5 s margin.
	took := eventually(t, orphanGrace+orphanSweepInterval+20*time.Second, "the orphaned row released", func() bool {
		o, _ := dir.owner(dpid)
		return o.Master == "" && o.Generation == 7
	})
	// The first sweep may precede the wait's start by a little, not by
	// half the grace: a row is not released before its grace.
	if took < orphanGrace/2 {
		t.Fatalf("the row was released %s after start, before its grace %s", took, orphanGrace)
	}
}
