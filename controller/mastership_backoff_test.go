package controller

import (
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

func TestClaimBackoffDoublesAndResets(t *testing.T) {
	var b claimBackoff
	now := time.Unix(1000, 0)
	if b.holding(now) {
		t.Fatal("a fresh backoff holds claims")
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if d := b.demoted(now); d != w {
			t.Fatalf("demotion %d: wait %v, want %v", i+1, d, w)
		}
		if !b.holding(now.Add(w-time.Millisecond)) || b.holding(now.Add(w)) {
			t.Fatalf("demotion %d: holding is wrong around %v", i+1, w)
		}
	}
	b.mastered(now, now.Add(time.Second))
	if b.delay != backoffMax {
		t.Fatal("a short master part reset the backoff")
	}
	b.mastered(now, now.Add(backoffMax))
	if b.holding(now) || b.delay != 0 {
		t.Fatal("a master part of backoffMax did not reset the backoff")
	}
}

// A controller that is not a replica keeps taking the switch: the replica
// the directory names backs off instead of claiming it back every check.
func TestMasterBacksOffFromAnotherController(t *testing.T) {
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
	intruder := h1.tun.Pipe()
	defer intruder.Close()
	go func() { // drain: the switch's writes wait for a reader
		for {
			if _, err := ofconn.ReadFrame(intruder); err != nil {
				return
			}
		}
	}()
	write := func(b []byte) bool { _, err := intruder.Write(b); return err == nil }
	if !write([]byte{4, 0, 0, 8, 0, 0, 0, 1}) { // hello
		t.Fatal("hello to the switch failed")
	}
	masters := metricOf(t, a.Server, "role_changes_total", "role", "master")
	// For 4 s the intruder takes the switch every 100 ms, each time with
	// a generation above anything a could have claimed.
	for i := range 40 {
		req, err := ofcodec.NewRoleRequest(ofcodec.RoleMaster, 1<<40+uint64(i)<<20).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !write(req) {
			t.Fatal("role request to the switch failed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := metricOf(t, a.Server, "role_changes_total", "role", "master") - masters
	t.Logf("a took the switch back %v times in 4 s", got)
	if got > 4 {
		t.Fatalf("a took the switch back %v times in 4 s: it claims again at every check instead of backing off", got)
	}
	if o, _ := dir.owner(dpid); o.Master != "ctl-a" {
		t.Fatalf("directory row %+v: want ctl-a still named", o)
	}
}

// A role status arriving between the switch's grant of the MASTER role and
// the start of the master part is not lost: the master part never starts.
func TestDemotionWhileMasterRequestInFlight(t *testing.T) {
	m := newMastership()
	m.arm()
	m.demoteBy("the switch made this connection slave", true)
	m.mu.Lock()
	armed, why, bySwitch := m.armed, m.why, m.bySwitch
	m.mu.Unlock()
	if armed || why == "" || !bySwitch {
		t.Fatalf("after a demotion in flight: armed %v, why %q, by switch %v; want disarmed with the reason kept", armed, why, bySwitch)
	}
	m.arm()
	m.disarm()
	m.demote("late")
	if m.isMaster() {
		t.Fatal("master after a disarmed request")
	}
}
