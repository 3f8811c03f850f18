package controller

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Controller replicas against emulated switches and a fake directory
// (replica_fake_test.go): every switch dials two replicas, as apply points
// a bridge at every target of a controller list.

// replicaServer runs a replica named name of topo with dir on a loopback
// port.
func replicaServer(t *testing.T, topo *topology.Topology, name string, dir *fakeCluster) (*runningServer, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: name, OpenDirectory: dir.open,
		Grace: 100 * time.Millisecond})
	return srv, l.Addr().String()
}

// masterOf reports whether srv's session of dpid is its switch's master.
func masterOf(srv *Server, dpid uint64) bool {
	srv.mu.Lock()
	sess := srv.sessions[dpid]
	srv.mu.Unlock()
	return sess != nil && sess.rep != nil && sess.rep.isMaster()
}

// switchesOf are every emulated bridge of hosts.
func switchesOf(hosts []*emuHost) []*openflowtest.Switch {
	var out []*openflowtest.Switch
	for _, e := range hosts {
		out = append(out, e.tun, e.int)
	}
	return out
}

// oneMasterEach reports whether every switch has exactly one master and
// one slave connection, the master of srvs' synced and its other sessions
// not master.
func oneMasterEach(hosts []*emuHost, srvs ...*Server) bool {
	for _, sw := range switchesOf(hosts) {
		roles := map[ofcodec.Role]int{}
		for _, c := range sw.Conns() {
			roles[c.Role()]++
		}
		if roles[ofcodec.RoleMaster] != 1 || roles[ofcodec.RoleSlave] != len(srvs)-1 {
			return false
		}
		masters := 0
		for _, s := range srvs {
			if masterOf(s, sw.DatapathID()) {
				masters++
				if st, ok := stateOf(s, sw.DatapathID()); !ok || !st.Synced {
					return false
				}
			}
		}
		if masters != 1 {
			return false
		}
	}
	return true
}

func stateOf(srv *Server, dpid uint64) (SwitchState, bool) {
	for _, st := range srv.Switches() {
		if st.DatapathID == dpid {
			return st, true
		}
	}
	return SwitchState{}, false
}

// newReplica runs a replica named name (its directory joined) on a
// loopback port and returns it and its address.
type newReplica func(t *testing.T, name string) (*runningServer, string)

// TestReplicaFailoverEmulated: replicaFailover with a fake directory.
func TestReplicaFailoverEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	dir := newFakeCluster(time.Second)
	replicaFailover(t, topo, func(t *testing.T, name string) (*runningServer, string) {
		return replicaServer(t, topo, name, dir)
	})
}

// replicaFailover: two replicas share the switches, one master each; what
// a master learns reaches the other replica through the directory; when a
// master stops, the other takes its switches over within about
// ReplicaTimeout plus a check, without sending a flow-mod; when every
// replica restarts, nothing is re-learned or re-installed.
func replicaFailover(t *testing.T, topo *topology.Topology, start newReplica) {
	hosts := emulate(t, topo, nil)
	a, addrA := start(t, "ctl-a")
	b, addrB := start(t, "ctl-b")
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 20*time.Second, "one master per switch, programmed", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	checkEmulated(t, topo, hosts, a.Server)
	checkEmulated(t, topo, hosts, b.Server)
	mastered := map[string]int{}
	for _, sw := range switchesOf(hosts) {
		for _, r := range []*runningServer{a, b} {
			st, _ := stateOf(r.Server, sw.DatapathID())
			if masterOf(r.Server, sw.DatapathID()) {
				mastered[r.Name()]++
			} else if st.FlowMods != 0 || st.Bundles != 0 {
				t.Errorf("slave %s sent %d flow-mods to %016x", r.Name(), st.FlowMods, sw.DatapathID())
			}
		}
		// (The switch may have sent an error: a slave request whose
		// generation a racing master request made stale, retried.)
	}
	t.Logf("switches mastered: %v", mastered)

	// A MAC reported by h2's br-tun to its master reaches the other
	// replica's knowledge and, through each master, every switch.
	h2 := emuHostNamed(hosts, "h2")
	vm, ip := mac("52:54:00:00:02:02"), netip.MustParseAddr("10.1.0.2")
	frame := openflowtest.ARPRequest(vm, ip, netip.MustParseAddr("10.1.0.77"), h2.alloc.LocalVLAN[100])
	if n := h2.tun.SendPacketIn(openflowtest.UnknownSource(frame)); n != 1 {
		t.Fatalf("packet-in reached %d controllers, want 1 (the master)", n)
	}
	learned := func(r *runningServer) bool {
		e, ok := r.Knowledge().Lookup(key(100, vm.String()))
		return ok && e.Host == "h2" && slices.Contains(e.IPs, ip)
	}
	for _, r := range []*runningServer{a, b} {
		took := eventually(t, 10*time.Second, "MAC known to "+r.Name(), func() bool { return learned(r) })
		t.Logf("learned MAC known to %s after %s", r.Name(), took)
	}
	eventually(t, 10*time.Second, "learned MAC on every switch", func() bool {
		for _, e := range hosts {
			if e.h.Name != "h2" && !holds(t, e.tun, "table=20", "dl_dst="+vm.String()) {
				return false
			}
		}
		return true
	})
	checkEmulated(t, topo, hosts, a.Server)
	// Each replica's news coming back from the directory change nothing.
	va, vb := a.Knowledge().Version(), b.Knowledge().Version()
	time.Sleep(200 * time.Millisecond)
	if a.Knowledge().Version() != va || b.Knowledge().Version() != vb {
		t.Errorf("knowledge versions moved from %d, %d to %d, %d with nothing new", va, vb, a.Knowledge().Version(), b.Knowledge().Version())
	}

	// The replica mastering h2's br-tun stops; the other takes over.
	victim, heir := a, b
	if masterOf(b.Server, h2.tun.DatapathID()) {
		victim, heir = b, a
	}
	before := counters(hosts)
	heirMods := heir.Stats().FlowMods
	victim.stop()
	took := eventually(t, 10*time.Second, "the heir masters every switch", func() bool { return oneMasterEach(hosts, heir.Server) })
	t.Logf("new master of every switch %s after the stop", took)
	if took > 3*time.Second {
		t.Errorf("failover took %s, want within 3 s", took)
	}
	if got := heir.Stats().FlowMods - heirMods; got != 0 {
		t.Errorf("the heir sent %d flow-mods taking over, want 0", got)
	}
	if got := counters(hosts); !slices.Equal(got, before) {
		t.Errorf("switch counters after the failover %v, were %v", got, before)
	}
	for _, sw := range switchesOf(hosts) {
		if o, _ := heir.dir.Owner(sw.DatapathID()); o.Master != heir.Name() || o.Generation < 1 {
			t.Errorf("directory row of %016x: %+v", sw.DatapathID(), o)
		}
	}
	checkEmulated(t, topo, hosts, heir.Server)

	// Every replica restarts: the knowledge comes back from the
	// directory, nothing is learned or installed again.
	heir.stop()
	a, addrA2 := start(t, "ctl-a")
	b, addrB2 := start(t, "ctl-b")
	for _, e := range hosts {
		e.connect(t, addrA2)
		e.connect(t, addrB2)
	}
	eventually(t, 20*time.Second, "one master per switch after the restart", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	if !learned(a) || !learned(b) {
		t.Error("the learned MAC did not come back from the directory")
	}
	if got := counters(hosts); !slices.Equal(got, before) {
		t.Errorf("switch counters after restarting every replica %v, were %v", got, before)
	}
	if ma, mb := a.Stats().FlowMods, b.Stats().FlowMods; ma+mb != 0 {
		t.Errorf("restarted replicas sent %d + %d flow-mods, want none", ma, mb)
	}
	checkEmulated(t, topo, hosts, a.Server)
}

// TestReplicaDemotedEmulated: a replica stops programming a switch at once
// when the directory names another master, or when the switch says another
// controller became master (role status); it claims the switch again once
// that master is dead.
func TestReplicaDemotedEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	a, addrA := replicaServer(t, topo, "ctl-a", dir)
	for _, e := range hosts {
		e.connect(t, addrA)
	}
	eventually(t, 10*time.Second, "a masters every switch", func() bool { return oneMasterEach(hosts, a.Server) })
	h1 := emuHostNamed(hosts, "h1")
	dpid := h1.tun.DatapathID()
	row, _ := dir.owner(dpid)
	connRole := func() ofcodec.Role { return h1.tun.Conns()[0].Role() }
	slaves := metricOf(t, a.Server, "role_changes_total", "role", "slave")

	// The directory names a live ctl-x: a asks to be slave.
	dir.mu.Lock()
	dir.others["ctl-x"] = true
	x := SwitchOwner{DatapathID: dpid, Host: "h1", Bridge: topology.BridgeTun, Master: "ctl-x", Generation: row.Generation + 1}
	dir.switches[dpid] = x
	dir.notifyLocked(func(h DirectoryHooks) { h.OnSwitch(x) })
	dir.mu.Unlock()
	eventually(t, 5*time.Second, "a demoted by the directory", func() bool { return !masterOf(a.Server, dpid) && connRole() == ofcodec.RoleSlave })

	// ctl-x dies without ever taking the switch: a claims it again.
	dir.mu.Lock()
	delete(dir.others, "ctl-x")
	dir.mu.Unlock()
	took := eventually(t, 5*time.Second, "a master again", func() bool { return masterOf(a.Server, dpid) && connRole() == ofcodec.RoleMaster })
	t.Logf("master again %s after ctl-x died", took)
	if o, _ := dir.owner(dpid); o.Master != "ctl-a" || o.Generation != row.Generation+2 {
		t.Errorf("directory row %+v, want ctl-a with generation %d", o, row.Generation+2)
	}

	// Another controller takes the switch with a newer generation: the
	// switch's role status demotes a at once.
	intruder := h1.tun.Pipe()
	defer intruder.Close()
	dir.mu.Lock()
	dir.others["ctl-x"] = true
	dir.switches[dpid] = SwitchOwner{DatapathID: dpid, Host: "h1", Bridge: topology.BridgeTun, Master: "ctl-x", Generation: row.Generation + 3}
	dir.mu.Unlock()
	if err := takeMaster(intruder, row.Generation+3); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a demoted", func() bool { return !masterOf(a.Server, dpid) })
	before := h1.tun.Counters()
	time.Sleep(3 * masterCheckInterval)
	if masterOf(a.Server, dpid) {
		t.Fatal("a took the switch back from a live master")
	}
	if c := h1.tun.Counters(); c.FlowMods != before.FlowMods {
		t.Errorf("a demoted replica sent %d flow-mods", c.FlowMods-before.FlowMods)
	}
	if got := metricOf(t, a.Server, "role_changes_total", "role", "slave"); got != slaves+2 {
		t.Errorf("role changes to slave counted %v, want %v", got, slaves+2)
	}
}

// takeMaster asks for the master role over a raw connection to a switch
// (net.Pipe: writes wait for the reader, so they go from a goroutine).
func takeMaster(nc net.Conn, gen uint64) error {
	req, err := ofcodec.NewRoleRequest(ofcodec.RoleMaster, gen).MarshalBinary()
	if err != nil {
		return err
	}
	req[7] = 2 // xid
	written := make(chan error, 1)
	go func() {
		_, err := nc.Write(append([]byte{4, 0, 0, 8, 0, 0, 0, 1}, req...))
		written <- err
	}()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer nc.SetReadDeadline(time.Time{})
	for {
		f, err := ofconn.ReadFrame(nc)
		if err != nil {
			return err
		}
		if f[1] != ofcodec.TypeRoleReply {
			continue
		}
		if err := <-written; err != nil {
			return err
		}
		rep, err := ofcodec.DecodeRole(f)
		if err != nil {
			return err
		}
		if rep.Role != ofcodec.RoleMaster {
			return fmt.Errorf("intruder got role %s", rep.Role)
		}
		return nil
	}
}

// TestReplicaQuorumLostEmulated: while the directory has no quorum every
// replica keeps its roles, a master still learns and programs the switches
// it masters, and the other replica hears of it once the quorum is back.
func TestReplicaQuorumLostEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	a, addrA := replicaServer(t, topo, "ctl-a", dir)
	b, addrB := replicaServer(t, topo, "ctl-b", dir)
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 10*time.Second, "one master per switch", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	roles := func() map[uint64]bool {
		out := map[uint64]bool{}
		for _, sw := range switchesOf(hosts) {
			out[sw.DatapathID()] = masterOf(a.Server, sw.DatapathID())
		}
		return out
	}
	before := roles()
	dir.setDown(true)
	if got := metricOf(t, a.Server, "directory_connected"); got != 0 {
		t.Errorf("directory_connected %v while the quorum is lost", got)
	}
	h2 := emuHostNamed(hosts, "h2")
	master, other := a, b
	if masterOf(b.Server, h2.tun.DatapathID()) {
		master, other = b, a
	}
	vm := mac("52:54:00:00:02:09")
	frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.29"), netip.MustParseAddr("10.1.0.77"), h2.alloc.LocalVLAN[100])
	h2.tun.SendPacketIn(openflowtest.UnknownSource(frame))
	k := key(100, vm.String())
	eventually(t, 5*time.Second, "the master learns locally", func() bool { _, ok := master.Knowledge().Lookup(k); return ok })
	time.Sleep(4 * masterCheckInterval)
	if got := roles(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("roles changed while the quorum was lost: %v, were %v", got, before)
	}
	if _, ok := other.Knowledge().Lookup(k); ok {
		t.Error("the other replica heard of the MAC without a directory")
	}
	dir.setDown(false)
	eventually(t, 5*time.Second, "the other replica hears of it", func() bool { _, ok := other.Knowledge().Lookup(k); return ok })
	eventually(t, 5*time.Second, "every switch has it", func() bool {
		for _, e := range hosts {
			if e.h.Name != "h2" && !holds(t, e.tun, "table=20", "dl_dst="+vm.String()) {
				return false
			}
		}
		return true
	})
	if got := roles(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("roles changed after the quorum came back: %v, were %v", got, before)
	}
}
