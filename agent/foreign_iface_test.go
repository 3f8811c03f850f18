package agent

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// An interface that carries the host's addresses never becomes a vm port:
// attaching eth0 to br-int would cut the host off 203.0.113.5.
func TestApplyRefusesAddressedInterfaceAsVMPort(t *testing.T) {
	h := newHost(t)
	h.veth("eth0")
	h.ip("addr", "add", "203.0.113.5/24", "dev", "eth0")

	h.refused(h.options(twoHosts(vmPort("eth0"))), "vm port eth0", "eth0 (veth, with 203.0.113.5/24)", "carries IP addresses", "nothing was changed")
	if !h.hasAddr("eth0", "203.0.113.5/24") {
		t.Error("eth0 lost 203.0.113.5/24")
	}

	// The same on a host already applied: the new port is refused, the
	// rest stays as it was.
	h.mustApply(h.options(twoHosts(vmPort("vnet1"))))
	h.refused(h.options(twoHosts(vmPort("vnet1"), vmPort("eth0"))), "vm port eth0", "carries IP addresses")
	if ports := h.vsctl("list-ports", "br-int"); strings.Contains(ports, "eth0") {
		t.Errorf("eth0 attached to br-int: %s", ports)
	}
}

// A vm port is refused on the VTEP's device (here the device the route to
// the peer goes through) and on an interface enslaved to a Linux bridge;
// one error names both.
func TestApplyRefusesVTEPDeviceAndBridgedInterface(t *testing.T) {
	h := newHost(t)
	h.veth("ul0")
	h.ip("route", "add", "192.168.50.2/32", "dev", "ul0")
	h.veth("vb0")
	h.ip("link", "add", "lbr0", "type", "bridge")
	h.ip("link", "set", "vb0", "master", "lbr0")

	h.refused(h.options(twoHosts(vmPort("ul0"), vmPort("vb0"))),
		"vm port ul0", "VTEP's device", "peer host2's VTEP 192.168.50.2",
		"vm port vb0", "already belongs to bridge lbr0")
}

// An internal port named like an existing interface that is not OVS's is
// refused before anything changes: OVS could not create it, and apply used
// to strip that interface of its addresses.
func TestApplyRefusesInternalPortOnForeignInterface(t *testing.T) {
	h := newHost(t)
	h.veth("eth0")
	h.ip("addr", "add", "203.0.113.5/24", "dev", "eth0")

	h.refused(h.options(twoHosts(internalPort("eth0", "10.1.1.1/24"))),
		"internal port eth0", "held by interface eth0 (veth, with 203.0.113.5/24)", "not an OVS internal port")
	if !h.hasAddr("eth0", "203.0.113.5/24") {
		t.Error("eth0 lost 203.0.113.5/24")
	}
	if h.hasAddr("eth0", "10.1.1.1/24") {
		t.Error("eth0 got the internal port's address")
	}
}

// lo as an internal port used to cost the host its VTEP address on lo.
func TestApplyRefusesLoopbackAsInternalPort(t *testing.T) {
	h := newHost(t)
	h.ip("addr", "add", "192.168.50.1/32", "dev", "lo")

	h.refused(h.options(twoHosts(internalPort("lo", "10.1.1.1/24"))), "internal port lo", "lo (loopback")
	if !h.hasAddr("lo", "192.168.50.1/32") {
		t.Error("lo lost the VTEP address 192.168.50.1/32")
	}
	// Without an address of its own, lo is refused just the same.
	h.refused(h.options(twoHosts(internalPort("lo", ""))), "internal port lo")
}

// Our own internal port still gets its address, and a re-apply changes
// nothing: the checks do not refuse what apply itself created.
func TestApplyKeepsManagingItsOwnInternalPort(t *testing.T) {
	h := newHost(t)
	o := h.options(twoHosts(internalPort("int1", "10.1.1.1/24")))
	rep := h.mustApply(o)
	if !slices.Contains(rep.Kernel, "+ address 10.1.1.1/24 on int1") || !h.hasAddr("int1", "10.1.1.1/24") {
		t.Fatalf("int1 did not get its address: kernel changes %q", rep.Kernel)
	}
	if rep := h.mustApply(o); rep.Changed() {
		t.Errorf("re-apply changed something: %+v", rep)
	}
}

// A vm interface that does not exist yet is a warning, not an error, and
// OVS attaches it when it appears.
func TestApplyAttachesMissingVMInterfaceWhenItAppears(t *testing.T) {
	h := newHost(t)
	o := h.options(twoHosts(vmPort("late1")))
	rep := h.mustApply(o)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "late1 does not exist yet") {
		t.Fatalf("warnings %q, want one saying late1 does not exist yet", rep.Warnings)
	}
	if rep := h.mustApply(o); rep.Changed() || len(rep.Warnings) != 1 {
		t.Errorf("re-apply: changed %v, warnings %q; want no change and the same warning", rep.Changed(), rep.Warnings)
	}

	h.veth("late1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := strconv.Atoi(h.vsctl("get", "Interface", "late1", "ofport"))
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late1 not attached 10 s after it appeared: ofport %d, error %s", n, h.vsctl("get", "Interface", "late1", "error"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rep := h.mustApply(o); rep.Changed() || len(rep.Warnings) != 0 {
		t.Errorf("apply once late1 exists: changed %v, warnings %q; want neither", rep.Changed(), rep.Warnings)
	}
}

// After the transaction, an interface OVS could not attach fails apply,
// naming the port and OVS's message.
func TestApplyFailsOnInterfaceError(t *testing.T) {
	h := newHost(t)
	o := h.options(twoHosts(vmPort("vnet1")))
	h.mustApply(o)

	// ovs-netdev is the userspace datapath's own device: OVS sets ofport -1
	// and no error when asked to attach it.
	_, err := h.apply(h.options(twoHosts(vmPort("vnet1"), vmPort("ovs-netdev"))))
	wantErrParts(t, "vm port ovs-netdev", err, "port ovs-netdev", "could not attach")

	// A foreign bridge's tunnel with the same endpoints as ours: OVS refuses
	// ours with "File exists".
	h.vsctl("del-br", "br-tun")
	h.vsctl("add-br", "br-x", "--", "set", "Bridge", "br-x", "datapath_type=netdev",
		"--", "add-port", "br-x", "fx", "--", "set", "Interface", "fx", "type=vxlan",
		"options:remote_ip=192.168.50.2", "options:key=flow", "options:dst_port=4789")
	_, err = h.apply(o)
	wantErrParts(t, "tunnel port", err, "port vx-host2", "File exists")
}

// A declared route over a route ovs-vxctl did not install is refused
// before anything changes, not after OVSDB and the flows were committed;
// the admin's route stays.
func TestApplyRefusesRouteOverForeignRouteFirst(t *testing.T) {
	h := newHost(t)
	h.veth("up0")
	h.ip("addr", "add", "10.9.0.1/24", "dev", "up0")
	h.ip("route", "add", "10.1.8.0/24", "via", "10.9.0.3")
	topo := twoHosts(vmPort("vnet1"))
	topo.Host("host1").Routes = []topology.Route{{To: netip.MustParsePrefix("10.1.8.0/24"), Via: netip.MustParseAddr("10.9.0.2")}}

	h.refused(h.options(topo), "route 10.1.8.0/24", "ovs-vxctl did not install", "nothing was changed")
	if out := h.ip("route", "show", "10.1.8.0/24"); !strings.Contains(out, "via 10.9.0.3") {
		t.Errorf("the admin's route changed: %q", out)
	}
}
