package controller

// /readyz must not count a slave session as ready unless another replica
// is its master: with the directory down from the start, no replica claims
// anything and nothing programs the switches.

import (
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

func TestReplicaNotReadyWithoutAnyMaster(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	dir.setDown(true) // the directory has no quorum from the start
	a, addrA := replicaServer(t, topo, "ctl-a", dir)
	for _, e := range hosts {
		e.connect(t, addrA)
	}
	eventually(t, 10*time.Second, "every switch connected", func() bool { return len(a.Switches()) == len(switchesOf(hosts)) })
	time.Sleep(2 * time.Second)
	masters := 0
	for _, sw := range switchesOf(hosts) {
		for _, c := range sw.Conns() {
			if c.Role() == ofcodec.RoleMaster {
				masters++
			}
		}
	}
	if masters != 0 {
		t.Fatalf("%d master connections with the directory down from the start", masters)
	}
	nr := a.NotReady()
	if len(nr) == 0 || !strings.Contains(strings.Join(nr, "\n"), "slave, no live master") {
		t.Fatalf("no switch has a master (nothing programs them), yet NotReady() = %q", nr)
	}
	// The directory back: ctl-a masters every switch and is ready.
	dir.setDown(false)
	eventually(t, 15*time.Second, "ctl-a ready once the directory is back", func() bool { return len(a.NotReady()) == 0 })
}

// A slave whose switch another live replica masters is ready: both
// replicas are, with the switches split between them.
func TestReplicaReadyAsSlaveOfLiveMaster(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	a, addrA := replicaServer(t, topo, "ctl-a", dir)
	b, addrB := replicaServer(t, topo, "ctl-b", dir)
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 15*time.Second, "both replicas ready", func() bool { return len(a.NotReady()) == 0 && len(b.NotReady()) == 0 })
	slaves := 0
	for _, sw := range a.Switches() {
		if sw.Role == ofcodec.RoleSlave.String() {
			slaves++
		}
	}
	for _, sw := range b.Switches() {
		if sw.Role == ofcodec.RoleSlave.String() {
			slaves++
		}
	}
	if want := len(switchesOf(hosts)); slaves != want {
		t.Fatalf("%d slave sessions over both replicas, want %d (one per switch)", slaves, want)
	}
}
