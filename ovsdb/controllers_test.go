package ovsdb

import (
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// controllersOf returns the targets of bridge br's controllers, sorted, and
// their row UUIDs by target.
func (l *lab) controllersOf(br string) ([]string, map[string]string) {
	l.t.Helper()
	rows := map[string]string{}
	var targets []string
	for _, u := range strings.Split(strings.Trim(l.get("bridge", br, "controller"), "[]"), ", ") {
		if u == "" {
			continue
		}
		target := strings.Trim(l.get("controller", u, "target"), `"`)
		targets = append(targets, target)
		rows[target] = u
	}
	slices.Sort(targets)
	return targets, rows
}

// TestControllerReplicas: every bridge gets one Controller row per replica
// target; dropping a replica removes its rows only, keeps the others (same
// rows) and leaves a controller ovs-vxctl did not set, and every other row,
// alone.
func TestControllerReplicas(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeController)
	const a, b = "tcp:127.0.0.1:6653", "tcp:127.0.0.1:6655"
	tp.Controllers = []string{a, b}
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)
	wantChanges(t, l.planOnly(tp, h))
	first := map[string]map[string]string{}
	for _, br := range []string{"br-int", "br-tun"} {
		targets, rows := l.controllersOf(br)
		wantEqual(t, br+" targets", strings.Join(targets, " "), a+" "+b)
		for _, u := range rows {
			wantEqual(t, br+" marks", l.get("controller", u, "external_ids"), `{ovs-vxctl-host=host1, ovs-vxctl-owner=hxtest}`)
			wantEqual(t, br+" inactivity_probe", l.get("controller", u, "inactivity_probe"), "5000")
		}
		first[br] = rows
	}

	// Someone else's controller on br-int, and the state of every other row.
	l.vsctl("--", "--id=@c", "create", "controller", "target=tcp\\:127.0.0.1\\:7777",
		"--", "add", "bridge", "br-int", "controller", "@c")
	others := func() string {
		return l.vsctl("--columns=_uuid,name,ports,other_config,external_ids,fail_mode,protocols", "list", "bridge") +
			l.vsctl("--columns=_uuid,name,tag,interfaces,external_ids", "list", "port")
	}
	before := others()

	// The same set in another order is no change.
	tp.Controllers = []string{b, a}
	tp.Controller = b
	wantChanges(t, l.planOnly(tp, h))

	// Back to one replica: its rows stay as they are, the other's go.
	tp.Controllers, tp.Controller = []string{a}, a
	wantChanges(t, l.reconcile(tp, h), "- controller br-int "+b, "- controller br-tun "+b)
	wantChanges(t, l.planOnly(tp, h))
	for _, br := range []string{"br-int", "br-tun"} {
		targets, rows := l.controllersOf(br)
		want := a
		if br == "br-int" {
			want += " tcp:127.0.0.1:7777"
		}
		wantEqual(t, br+" targets", strings.Join(targets, " "), want)
		wantEqual(t, br+" row kept", rows[a], first[br][a])
	}
	wantEqual(t, "other rows", others(), before)
	all := strings.Fields(l.vsctl("--columns=target", "--data=bare", "--no-headings", "list", "controller"))
	slices.Sort(all)
	wantEqual(t, "controller rows", strings.Join(all, " "), a+" "+a+" tcp:127.0.0.1:7777")

	// A replica replacing another retargets its row rather than replacing it.
	const c = "tcp:127.0.0.1:6656"
	tp.Controllers, tp.Controller = []string{c}, c
	wantChanges(t, l.reconcile(tp, h),
		"~ controller br-int target "+a+" -> "+c, "~ controller br-tun target "+a+" -> "+c)
	for _, br := range []string{"br-int", "br-tun"} {
		_, rows := l.controllersOf(br)
		wantEqual(t, br+" row retargeted", rows[c], first[br][a])
	}
}
