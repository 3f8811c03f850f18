package controller

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

func TestMastershipClaimWanted(t *testing.T) {
	alive := func(n string) bool { return n != "dead" }
	for _, c := range []struct {
		row  SwitchOwner
		has  bool
		want bool
	}{
		{SwitchOwner{}, false, true},                // nobody owns it
		{SwitchOwner{Master: "me"}, true, true},     // this replica, restarted
		{SwitchOwner{Master: "other"}, true, false}, // a live master
		{SwitchOwner{Master: "dead"}, true, true},   // a dead one
		{SwitchOwner{Master: ""}, true, true},       // released
	} {
		if got := claimWanted("me", c.row, c.has, alive); got != c.want {
			t.Errorf("claimWanted(%+v, %v) = %v, want %v", c.row, c.has, got, c.want)
		}
	}
}

// Every replica agrees on who claims first, and switches spread over the
// replicas.
func TestMastershipPreferredSpreads(t *testing.T) {
	live := []string{"ctl-a", "ctl-b", "ctl-c"}
	count := map[string]int{}
	for dpid := uint64(1); dpid <= 3000; dpid++ {
		p := preferredReplica(dpid, live, "ctl-a")
		for _, self := range live[1:] {
			if q := preferredReplica(dpid, live, self); q != p {
				t.Fatalf("dpid %d: %s prefers %s, ctl-a prefers %s", dpid, self, q, p)
			}
		}
		count[p]++
	}
	for _, n := range live {
		if count[n] < 800 || count[n] > 1200 {
			t.Errorf("preferred counts %v: uneven", count)
		}
	}
	// A replica not (yet) among the live ones still takes part.
	found := false
	for dpid := uint64(1); dpid <= 100 && !found; dpid++ {
		found = preferredReplica(dpid, []string{"ctl-b"}, "ctl-a") == "ctl-a"
	}
	if !found {
		t.Error("self never preferred when missing from the live list")
	}
}

func TestMastershipClaimTimer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var c claimTimer
	if c.due(t0, false, true) {
		t.Fatal("due while not wanted")
	}
	if !c.due(t0, true, true) {
		t.Fatal("the preferred replica must claim at once")
	}
	c = claimTimer{}
	if c.due(t0, true, false) || c.due(t0.Add(claimDelay-time.Millisecond), true, false) {
		t.Fatal("another replica claimed before claimDelay")
	}
	if !c.due(t0.Add(claimDelay), true, false) {
		t.Fatal("another replica not due after claimDelay")
	}
	// Not wanted in between: the delay starts over.
	c.due(t0.Add(time.Second), false, false)
	if c.due(t0.Add(time.Second+time.Millisecond), true, false) {
		t.Fatal("the delay did not start over")
	}
}

// Merge: another replica's news enter the knowledge without flap damping,
// declared MACs stay, and what is already known makes no event.
func TestReplicaMergeKnowledge(t *testing.T) {
	topo := parseTopo(t, testTopo)
	k := NewKnowledge(flows.DeclaredEndpoints(topo), Limits{MaxLearned: 2, FlapMoves: 1, FlapWindow: time.Hour, FlapHold: time.Hour})
	now := time.Unix(1000, 0)
	vm := key(100, "52:54:00:00:0a:01")
	ip := netip.MustParseAddr("10.1.0.50")
	ev, err := k.Merge(vm, "h1", []netip.Addr{ip}, now)
	if err != nil || fmt.Sprint(kinds(ev)) != fmt.Sprint([]EventKind{EventLearned, EventIPLearned}) {
		t.Fatalf("new MAC: %v %v", kinds(ev), err)
	}
	if ev, _ := k.Merge(vm, "h1", []netip.Addr{ip}, now); len(ev) != 0 {
		t.Errorf("the same news again: %v", kinds(ev))
	}
	for i, h := range []string{"h2", "h3", "h1"} { // beyond FlapMoves: no damping
		ev, err := k.Merge(vm, h, nil, now.Add(time.Duration(i)*time.Second))
		if err != nil || len(ev) != 1 || ev[0].Kind != EventMoved {
			t.Fatalf("move to %s: %v %v", h, kinds(ev), err)
		}
	}
	declared := key(100, "52:54:00:00:01:01")
	if ev, err := k.Merge(declared, "h3", nil, now); len(ev) != 0 || err != nil {
		t.Errorf("a declared MAC merged: %v %v", kinds(ev), err)
	}
	if e, _ := k.Lookup(declared); e.Host != "h1" {
		t.Errorf("declared MAC moved to %s", e.Host)
	}
	k.Merge(key(100, "52:54:00:00:0a:02"), "h2", nil, now)
	if _, err := k.Merge(key(100, "52:54:00:00:0a:03"), "h2", nil, now); err == nil {
		t.Error("a merge beyond MaxLearned succeeded")
	}
	// A merged MAC on a live host is not forgotten at once.
	if ev := k.Expire(now.Add(time.Second), time.Minute, func(string) bool { return true }); len(ev) != 0 {
		t.Errorf("merged MACs expired at once: %v", kinds(ev))
	}
}

// A switch released after a lost connection is left to the others for
// releaseHoldoff, then claimable again; old entries are dropped.
func TestMastershipReleaseHoldoff(t *testing.T) {
	var r releaseLog
	t0 := time.Unix(1000, 0)
	if r.holding(7, t0) {
		t.Fatal("holding a switch never released")
	}
	r.add(7, t0)
	if !r.holding(7, t0.Add(releaseHoldoff-time.Millisecond)) || r.holding(8, t0) {
		t.Error("not holding 7 within the holdoff, or holding 8")
	}
	if r.holding(7, t0.Add(releaseHoldoff)) {
		t.Error("still holding 7 after the holdoff")
	}
	r.add(8, t0.Add(2*releaseHoldoff))
	if len(r.at) != 1 {
		t.Errorf("%d entries kept, want 1 (7 expired)", len(r.at))
	}
}
