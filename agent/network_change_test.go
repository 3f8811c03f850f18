package agent

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Real-OVS tests of a network that changes (issue 10): tunnel ports that
// move or lose their number, foreign flows, OpenFlow 1.0, MTU, dry runs.

// threeHosts is host1..host3 sharing network tenant-a: vm1 on host1, vm2 on
// vm2Host (host2 or host3), so host1's one peer is vm2Host.
func threeHosts(vm2Host string) *topology.Topology {
	host := func(name, vtep string) *topology.Host {
		return &topology.Host{Name: name, VTEP: netip.MustParseAddr(vtep), Managed: true, Mode: topology.ModeLearn,
			DstPort: 4789, Datapath: topology.DatapathNetdev, LearnTimeout: 300}
	}
	hs := []*topology.Host{host("host1", "192.168.50.1"), host("host2", "192.168.50.2"), host("host3", "192.168.50.3")}
	t := &topology.Topology{Name: "agtest", Hosts: hs}
	n := &topology.Network{Name: "tenant-a", VNI: 100}
	n.Ports = []*topology.Port{
		{Network: n, Host: hs[0], Name: "vm1", Type: topology.PortVM},
		{Network: n, Host: t.Host(vm2Host), Name: "vm2", Type: topology.PortVM},
	}
	t.Networks = []*topology.Network{n}
	return t
}

// tunnelOFPort is what OVS gave the tunnel port to peer.
func (h *host) tunnelOFPort(peer string) string {
	h.t.Helper()
	return h.vsctl("get", "Interface", topology.TunnelPortName(peer), "ofport")
}

// checkFlowsName fails unless br-tun's flows send to and receive from
// the tunnel port only by port number ofport: table 0 classifies it,
// table 21 floods to it.
func (h *host) checkFlowsName(ofport string) {
	h.t.Helper()
	tun := h.ofctl("dump-flows", "br-tun", "--no-stats")
	in := regexp.MustCompile(`(?m)^ ?cookie=\S+ priority=\d+,in_port=` + ofport + ` actions=goto_table:2$`)
	flood := regexp.MustCompile(`(?m)table=21, priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x64->tun_id,output:` + ofport + `$`)
	if !in.MatchString(tun) || !flood.MatchString(tun) {
		h.t.Errorf("br-tun's flows do not name the tunnel port's ofport %s in tables 0 and 21:\n%s", ofport, tun)
	}
}

// checkClean fails unless diff-flows finds nothing to change or remove.
func (h *host) checkClean(o Options) {
	h.t.Helper()
	for _, bf := range h.diffFlows(o) {
		if !bf.Empty() {
			h.t.Errorf("diff-flows on %s: diff\n%sforeign %v", bf.Bridge, bf.Diff, bf.Foreign)
		}
	}
}

// Moving the only port of host2 to host3 replaces host1's tunnel: the new
// port never asks for the number the old one holds in the same transaction,
// so one apply converges, and the flows name the real number.
func TestPeerMoveConvergesInOneRun(t *testing.T) {
	h := newHost(t)
	h.mustApply(h.options(threeHosts("host2")))
	if of := h.tunnelOFPort("host2"); of != "10" {
		t.Fatalf("vx-host2 has ofport %s, want 10", of)
	}
	for _, step := range []struct{ from, to string }{{"host2", "host3"}, {"host3", "host2"}} {
		o := h.options(threeHosts(step.to))
		rep := h.mustApply(o)
		if !slices.Contains(rep.OVSDB, "- port br-tun "+topology.TunnelPortName(step.from)) {
			t.Errorf("moving vm2 to %s: OVSDB changes %q lack the removal of the tunnel to %s", step.to, rep.OVSDB, step.from)
		}
		of := h.tunnelOFPort(step.to)
		if req := h.vsctl("get", "Interface", topology.TunnelPortName(step.to), "ofport_request"); of != req {
			t.Errorf("%s got ofport %s, requested %s", topology.TunnelPortName(step.to), of, req)
		}
		h.checkFlowsName(of)
		h.checkClean(o)
		if rep := h.mustApply(o); rep.Changed() {
			t.Errorf("re-apply after moving vm2 to %s changed: %q %v", step.to, rep.OVSDB, rep.Flows)
		}
	}
}

// A tunnel port OVS could not give its requested number (another port
// holds it) keeps the one it got, and the flows name that one; once the
// number is free, apply moves the port to it and the flows follow.
func TestFlowsFollowTheRealOFPort(t *testing.T) {
	h := newHost(t)
	h.veth("vnet1")
	o := h.options(twoHosts(vmPort("vnet1")))
	h.mustApply(o)
	// vx-host2 moves away from 10, a port of someone else's takes 10,
	// vx-host2 asks for 10 again and stays at 12.
	h.vsctl("set", "Interface", "vx-host2", "ofport_request=12")
	h.vsctl("add-port", "br-tun", "squat", "--", "set", "Interface", "squat", "type=vxlan",
		"options:remote_ip=192.0.2.99", "ofport_request=10")
	h.vsctl("set", "Interface", "vx-host2", "ofport_request=10")
	if of := h.tunnelOFPort("host2"); of != "12" {
		t.Fatalf("setup: vx-host2 has ofport %s, want 12", of)
	}
	rep := h.mustApply(o)
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool {
		return strings.Contains(w, "tunnel port vx-host2 has ofport 12, not the requested 10")
	}) {
		t.Errorf("warnings %q lack vx-host2's ofport", rep.Warnings)
	}
	h.checkFlowsName("12")
	h.checkClean(o)

	// OVS 3.1 renumbers vx-host2 in the same transaction that frees 10,
	// so it cannot have 10 yet (it gets 2): apply makes ovs-vswitchd
	// reconfigure once more, which moves it.
	h.vsctl("del-port", "squat")
	t.Logf("vx-host2 has ofport %s once squat is gone", h.tunnelOFPort("host2"))
	rep = h.mustApply(o)
	if of := h.tunnelOFPort("host2"); of != "10" {
		t.Errorf("vx-host2 has ofport %s once 10 is free, want 10", of)
	}
	h.checkFlowsName("10")
	h.checkClean(o)
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings once 10 is free: %q", rep.Warnings)
	}
}

// Flows on br-tun and br-int that ovs-vxctl, its controller or learn() did
// not install are foreign: diff-flows and a dry run list them, apply
// removes them and says so; learned and controller entries stay.
func TestForeignFlowsAreRemoved(t *testing.T) {
	h := newHost(t)
	o := h.options(twoHosts())
	h.mustApply(o)
	blackhole := "priority=100,in_port=1 actions=drop"
	h.ofctl("add-flow", "br-tun", "table=0,priority=100,in_port=1,actions=drop")
	h.ofctl("add-flow", "br-int", "table=0,priority=50,actions=drop")
	kept := []string{
		fmt.Sprintf("cookie=%#x,table=20,priority=1,dl_vlan=1,dl_dst=52:54:00:00:00:78,actions=pop_vlan,set_field:0x64->tun_id,output:10", flows.CookieLearned|100),
		fmt.Sprintf("cookie=%#x,table=20,priority=2,dl_vlan=1,dl_dst=52:54:00:00:00:79,actions=pop_vlan,set_field:0x64->tun_id,output:10", flows.CookieController|100),
	}
	for _, f := range kept {
		h.ofctl("add-flow", "br-tun", f)
	}
	foreign := func(res []BridgeFlows) map[string][]string {
		out := map[string][]string{}
		for _, bf := range res {
			if !bf.Diff.Empty() {
				t.Errorf("%s: owned flows differ:\n%s", bf.Bridge, bf.Diff)
			}
			for _, f := range bf.Foreign {
				out[bf.Bridge] = append(out[bf.Bridge], strings.TrimSpace(f.String()))
			}
		}
		return out
	}
	want := map[string][]string{"br-tun": {blackhole}, "br-int": {"priority=50 actions=drop"}}
	if got := foreign(h.diffFlows(o)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff-flows foreign flows %q, want %q", got, want)
	}
	dry := o
	dry.DryRun = true
	if got := foreign(h.mustApply(dry).Flows); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dry run foreign flows %q, want %q", got, want)
	}
	if !strings.Contains(h.ofctl("dump-flows", "br-tun"), "in_port=1 actions=drop") {
		t.Error("the dry run removed the foreign flow")
	}
	rep := h.mustApply(o)
	if got := foreign(rep.Flows); fmt.Sprint(got) != fmt.Sprint(want) || !rep.Changed() {
		t.Errorf("apply reported foreign flows %q (changed %v), want %q", got, rep.Changed(), want)
	}
	tun := h.ofctl("dump-flows", "br-tun", "--no-stats")
	if strings.Contains(tun, "in_port=1 actions=drop") || strings.Contains(h.ofctl("dump-flows", "br-int"), "priority=50 actions=drop") {
		t.Errorf("foreign flows survived apply:\n%s", tun)
	}
	for _, mac := range []string{"52:54:00:00:00:78", "52:54:00:00:00:79"} {
		if !strings.Contains(tun, mac) {
			t.Errorf("apply removed the entry of %s (learned or the controller's):\n%s", mac, tun)
		}
	}
	h.checkClean(o)
	if rep := h.mustApply(o); rep.Changed() {
		t.Errorf("re-apply changed: %v", rep.Flows)
	}
}

// Both bridges speak OpenFlow 1.0 as well, so that plain ovs-ofctl works.
func TestBridgesSpeakOpenFlow10(t *testing.T) {
	h := newHost(t)
	h.mustApply(h.options(twoHosts()))
	for _, br := range []string{topology.BridgeInt, topology.BridgeTun} {
		if p := h.vsctl("get", "Bridge", br, "protocols"); p != "[OpenFlow10, OpenFlow13]" {
			t.Errorf("%s protocols %s", br, p)
		}
		out, err := h.ovs.Run(h.ctx, "ovs-ofctl", "dump-flows", "unix:"+h.ovs.MgmtSocket(br))
		if err != nil || !strings.Contains(out, "actions=") {
			t.Errorf("ovs-ofctl dump-flows %s without -O: %v\n%s", br, err, out)
		}
	}
}

// Internal ports get their network's MTU: the underlay's (the link holding
// the VTEP address) less 50 bytes, or the declared mtu; a vm interface
// larger than that is a warning naming it; show prints the MTU.
func TestMTU(t *testing.T) {
	h := newHost(t)
	h.veth("ul0")
	h.ip("link", "set", "ul0", "mtu", "1500")
	h.ip("addr", "add", "192.168.50.1/24", "dev", "ul0")
	h.veth("vnet1") // MTU 1500
	top := twoHosts(vmPort("vnet1"), internalPort("gw1", "10.1.1.1/24"))
	check := func(mtu string) {
		t.Helper()
		if got := h.vsctl("get", "Interface", "gw1", "mtu_request"); got != mtu {
			t.Errorf("gw1 mtu_request %s, want %s", got, mtu)
		}
		if out := h.ip("-o", "link", "show", "gw1"); !strings.Contains(out, " mtu "+mtu+" ") {
			t.Errorf("gw1's kernel MTU is not %s: %s", mtu, out)
		}
		st, err := Show(h.ctx, h.options(top))
		if err != nil || len(st.Networks) != 1 || fmt.Sprint(st.Networks[0].MTU) != mtu {
			t.Errorf("show: %+v %v, want network MTU %s", st, err, mtu)
		}
	}
	rep := h.mustApply(h.options(top))
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "vm port vnet1: interface vnet1 has MTU 1500, larger than the MTU 1450 of network tenant-a") {
		t.Errorf("warnings %q, want one naming vnet1's MTU", rep.Warnings)
	}
	check("1450")

	top.Networks[0].MTU = 1400
	h.ip("link", "set", "vnet1", "mtu", "1400")
	rep = h.mustApply(h.options(top))
	if !slices.Contains(rep.OVSDB, "~ port br-int gw1 mtu_request 1450 -> 1400") || len(rep.Warnings) != 0 {
		t.Errorf("declared mtu 1400: OVSDB changes %q, warnings %q", rep.OVSDB, rep.Warnings)
	}
	check("1400")
}

// A dry run lists every change the real run makes, the kernel's included:
// the address and link of an internal port OVS has not created yet, and
// routes; it changes nothing.
func TestDryRunListsKernelChanges(t *testing.T) {
	h := newHost(t)
	top := twoHosts(internalPort("gw1", "10.1.1.1/24"))
	top.Host("host1").Routes = []topology.Route{{To: netip.MustParsePrefix("10.9.9.0/24"), Via: netip.MustParseAddr("10.1.1.254")}}
	o := h.options(top)
	o.DryRun = true
	before := h.ovsdbState()
	dry := h.mustApply(o)
	want := []string{"+ address 10.1.1.1/24 on gw1", "~ link gw1 up", "+ route 10.9.9.0/24 via 10.1.1.254"}
	if !slices.Equal(dry.Kernel, want) {
		t.Errorf("dry run kernel changes %q, want %q", dry.Kernel, want)
	}
	if after := h.ovsdbState(); after != before {
		t.Errorf("the dry run changed OVSDB:\n%s\n->\n%s", before, after)
	}
	if out := h.ip("route", "show", "10.9.9.0/24"); strings.TrimSpace(out) != "" {
		t.Errorf("the dry run added a route: %s", out)
	}
	o.DryRun = false
	if real := h.mustApply(o); !slices.Equal(real.Kernel, dry.Kernel) {
		t.Errorf("the real run made kernel changes %q, the dry run listed %q", real.Kernel, dry.Kernel)
	}
}
