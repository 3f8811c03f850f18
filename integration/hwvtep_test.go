package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// TestHardwareVTEP runs examples/hardware-vtep in learn mode: two OVS hosts
// and tor1, a hardware VTEP built with OVS's emulator ovs-vtep, which
// ovs-vxctl configures through its hardware_vtep database only. Servers
// behind tor1's ports p0 (untagged) and p1 (VLAN 10) share tenant-a with the
// VMs.
func TestHardwareVTEP(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch, its VTEP emulator and network namespaces")
	}
	t.Parallel()
	l := upLab(t, "hardware-vtep")
	t.Run("SwitchConfigured", func(t *testing.T) { checkSwitchConfigured(t, l) })
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("VNIOnTheWire", func(t *testing.T) { checkServerVXLAN(t, l) })
	t.Run("SwitchLearnedAndOVSLearned", func(t *testing.T) { checkServersLearned(t, l) })
	t.Run("BroadcastCopies", func(t *testing.T) { checkBroadcastCopies(t, l, "vm1", "p0", "vm3") })
	t.Run("FlowsMatchCompiledAndGolden", func(t *testing.T) { checkFlowsMatch(t, l) })
	t.Run("ReapplyChangesNothing", func(t *testing.T) {
		checkReapply(t, l)
		checkSwitchReapply(t, l)
	})
	t.Run("DestroyLeavesTheSwitchsRows", func(t *testing.T) { checkSwitchDestroy(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

const torHost = "tor1"

// hwShow runs `show --host tor1 --format json` inside tor1's namespace,
// where its hardware_vtep database listens.
func (l *labEnv) hwShow(t testing.TB) hwvtep.State {
	t.Helper()
	r := l.hostVx(torHost, l.file, "show", "--format", "json")
	if r.code != 0 {
		t.Fatalf("show --host %s: %v", torHost, r)
	}
	var st hwvtep.State
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("show --format json: %v in %q", err, r.stdout)
	}
	return st
}

// vtepctl runs vtep-ctl against tor1's hardware_vtep database.
func (l *labEnv) vtepctl(t testing.TB, args ...string) string {
	t.Helper()
	argv := append([]string{"vtep-ctl", "--db=" + l.inst(torHost).DBEndpoint(), "--timeout=10"}, args...)
	return strings.TrimSpace(mustRun(t, argv...).stdout)
}

// checkSwitchConfigured checks what apply wrote: tenant-a as a logical
// switch with tunnel_key 100 and head-end replication, bound to p0 untagged
// and p1 VLAN 10, flooding to exactly the OVS hosts of tenant-a; tenant-b,
// which tor1 is not in, absent.
func checkSwitchConfigured(t *testing.T, l *labEnv) {
	st := l.hwShow(t)
	var ours []hwvtep.SwitchState
	for _, s := range st.Switches {
		if s.Ours {
			ours = append(ours, s)
		}
	}
	if len(ours) != 1 {
		t.Fatalf("tor1 holds %d logical switches of ours, want 1 (tenant-a): %+v", len(ours), st.Switches)
	}
	s := ours[0]
	if s.Name != "tenant-a" || s.Network != "tenant-a" || s.TunnelKey != 100 || s.ReplicationMode != "source_node" {
		t.Errorf("logical switch %s (network %s) tunnel_key %d replication %s; want tenant-a, 100, source_node", s.Name, s.Network, s.TunnelKey, s.ReplicationMode)
	}
	if want := []string{"p0 vlan 0", "p1 vlan 10"}; !slices.Equal(s.Bindings, want) {
		t.Errorf("bindings %v, want %v", s.Bindings, want)
	}
	if want := []string{"192.168.50.1", "192.168.50.2"}; !slices.Equal(s.Flood, want) {
		t.Errorf("unknown-dst locators %v, want %v", s.Flood, want)
	}
	if st.PhysicalSwitch != torHost || !slices.Equal(st.TunnelIPs, []string{"192.168.50.9"}) {
		t.Errorf("physical switch %s tunnel_ips %v", st.PhysicalSwitch, st.TunnelIPs)
	}
	t.Logf("tor1: %s tunnel_key %d %s, bindings %v, flood %v", s.Name, s.TunnelKey, s.ReplicationMode, s.Bindings, s.Flood)
}

// checkServerVXLAN captures tor1's underlay link while each server pings
// the VMs of tenant-a: every packet is VXLAN on 4789 with VNI 100, and
// tor1 sent to and received from both OVS hosts.
func checkServerVXLAN(t *testing.T, l *labEnv) {
	c := startCapture(t, lab.UnderlayNS(l.opts), underlayIf(torHost), "udp", 400, 30*time.Second)
	for _, server := range []string{"p0", "p1"} {
		src := l.vmByPort(t, server)
		for _, dst := range []string{"vm1", "vm2"} {
			l.ping(t, src, l.vmByPort(t, dst).ip, "(server to VM, captured on tor1's link)")
		}
	}
	pkts := c.decode(t, "udp.dstport", "vxlan.vni", "ip.src", "ip.dst")
	count := map[string]int{}
	for _, f := range pkts {
		if first(f[0]) != "4789" || f[1] != "100" {
			t.Errorf("packet on tor1's link that is not VXLAN 4789 with VNI 100: %q", f)
			continue
		}
		count[first(f[2])+">"+first(f[3])]++
	}
	for _, peer := range []string{"192.168.50.1", "192.168.50.2"} {
		// Two servers, three echo requests each, to each host.
		if count["192.168.50.9>"+peer] < 6 || count[peer+">192.168.50.9"] < 6 {
			t.Errorf("VXLAN VNI 100 between tor1 and %s: %d sent, %d received; want at least 6 each (%v)",
				peer, count["192.168.50.9>"+peer], count[peer+">192.168.50.9"], count)
		}
	}
	t.Logf("tor1's underlay link: %d VXLAN packets, all VNI 100 on 4789: %v", len(pkts), count)
}

// checkServersLearned: the switch reports the servers' MACs it learned
// (Ucast_Macs_Local, read through show), and host1 learned them, behind
// tor1, in table 20.
func checkServersLearned(t *testing.T, l *labEnv) {
	p0, p1 := l.vmByPort(t, "p0"), l.vmByPort(t, "p1")
	l.ping(t, p0, l.vmByPort(t, "vm1").ip, "(refresh)")
	l.ping(t, p1, l.vmByPort(t, "vm1").ip, "(refresh)")
	p1MAC := strings.ToLower(l.linkMAC(t, p1.name(), "eth0"))
	var local []string
	for _, s := range l.hwShow(t).Switches {
		if s.Name == "tenant-a" {
			for _, m := range s.LocalMACs {
				local = append(local, m.MAC+"@"+m.Locator)
			}
		}
	}
	for _, mac := range []string{p0.mac, p1MAC} {
		if !slices.Contains(local, mac+"@192.168.50.9") {
			t.Errorf("tor1's Ucast_Macs_Local of tenant-a lacks %s: %v", mac, local)
		}
	}
	r := l.hostVx("host1", l.file, "fdb", "--format", "json")
	if r.code != 0 {
		t.Fatalf("fdb on host1: %v", r)
	}
	var entries []struct {
		MAC, Peer, Origin string
		VNI               uint32
	}
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("fdb json: %v", err)
	}
	for _, mac := range []string{p0.mac, p1MAC} {
		if !slices.ContainsFunc(entries, func(e struct {
			MAC, Peer, Origin string
			VNI               uint32
		}) bool {
			return strings.EqualFold(e.MAC, mac) && e.Peer == torHost && e.VNI == 100
		}) {
			t.Errorf("host1 has no table 20 entry for server MAC %s behind tor1: %+v", mac, entries)
		}
	}
	t.Logf("tor1 learned %v; host1 learned the servers behind tor1", local)
}

// hwState is tor1's hardware_vtep database without what the switch itself
// rewrites (learned MACs, statistics, BFD state).
func (l *labEnv) hwState(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"Global", "Physical_Switch", "Physical_Port", "Logical_Switch", "Mcast_Macs_Remote",
		"Ucast_Macs_Remote", "Physical_Locator_Set", "Physical_Locator"} {
		r := mustRun(t, "ovsdb-client", "-f", "json", "dump", l.inst(torHost).DBEndpoint(), "hardware_vtep", table)
		if strings.Contains(r.stdout, `"data":[]`) {
			out = append(out, table+": empty") // parseDump wants rows
			continue
		}
		out = append(out, parseDump(t, r.stdout)...)
	}
	return out
}

// emulatorBridge waits until ovs-vtep has (present) or has no longer (not
// present) a bridge for logical switch ls, and returns how long that took.
func (l *labEnv) emulatorBridge(t testing.TB, ls string, present bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := l.vsctl(t, torHost, "--columns=name", "find", "Bridge", "external_ids:logical_switch_name="+ls) != ""
		if got == present {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("ovs-vtep did not %s the bridge of logical switch %s within 30s", map[bool]string{true: "create", false: "remove"}[present], ls)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSwitchReapply re-applies tor1: "nothing to change", database as it was.
func checkSwitchReapply(t *testing.T, l *labEnv) {
	before := l.hwState(t)
	for _, args := range [][]string{{"apply"}, {"apply", "--dry-run"}} {
		r := l.hostVx(torHost, l.file, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "nothing to change") {
			t.Errorf("tor1: %v of the unchanged file: want exit 0 and \"nothing to change\": %v", args, r)
		}
		t.Logf("tor1: %v took %v wall: %s", args, r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
	}
	if after := l.hwState(t); !slices.Equal(before, after) {
		t.Errorf("tor1's database changed on re-apply:\n%s", diffLines(before, after))
	}
}

// checkSwitchDestroy adds a logical switch of someone else's (bound to p0
// VLAN 99, with a local MAC), destroys tor1, and checks that only ours went:
// the physical switch, its ports and the other logical switch with its
// binding and MAC stay, and the servers are cut off. A second apply brings
// everything back.
func checkSwitchDestroy(t *testing.T, l *labEnv) {
	l.vtepctl(t, "add-ls", "theirs")
	l.vtepctl(t, "bind-ls", torHost, "p0", "99", "theirs")
	// ovs-vtep clears a logical switch's local MACs when it first sees it
	// bound, then reports its own unknown-dst: add ours after that.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(l.vtepctl(t, "list-local-macs", "theirs"), "unknown-dst"); {
		if time.Now().After(deadline) {
			t.Fatalf("ovs-vtep did not take up logical switch theirs within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.vtepctl(t, "add-ucast-local", "theirs", "00:00:5e:00:53:01", "192.168.50.9")
	psBefore := l.vtepctl(t, "--columns=_uuid,name,tunnel_ips,ports", "list", "Physical_Switch")
	portsBefore := l.vtepctl(t, "--columns=_uuid,name", "list", "Physical_Port")

	r := l.hostVx(torHost, l.file, "destroy")
	if r.code != 0 {
		t.Fatalf("destroy tor1: %v", r)
	}
	t.Logf("destroy tor1 (%v):\n%s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
	if got := l.vtepctl(t, "list-ls"); got != "theirs" {
		t.Errorf("logical switches after destroy: %q, want theirs only", got)
	}
	if got := l.vtepctl(t, "--columns=_uuid,name,tunnel_ips,ports", "list", "Physical_Switch"); got != psBefore {
		t.Errorf("Physical_Switch changed by destroy:\n%s\nwas\n%s", got, psBefore)
	}
	if got := l.vtepctl(t, "--columns=_uuid,name", "list", "Physical_Port"); got != portsBefore {
		t.Errorf("Physical_Port rows changed by destroy:\n%s\nwere\n%s", got, portsBefore)
	}
	if got := l.vtepctl(t, "list-bindings", torHost, "p0"); got != "0099 theirs" {
		t.Errorf("p0's bindings after destroy: %q, want only theirs on 99", got)
	}
	if got := l.vtepctl(t, "list-bindings", torHost, "p1"); got != "" {
		t.Errorf("p1's bindings after destroy: %q, want none", got)
	}
	if got := l.vtepctl(t, "list-local-macs", "theirs"); !strings.Contains(got, "00:00:5e:00:53:01") {
		t.Errorf("the switch's MAC of theirs went with destroy: %q", got)
	}
	if r := l.hostVx(torHost, l.file, "destroy"); r.code != 0 || !strings.Contains(r.stdout, "nothing to change") {
		t.Errorf("second destroy: %v", r)
	}
	p0, vm1 := l.vmByPort(t, "p0"), l.vmByPort(t, "vm1")
	// ovs-vtep polls its database (once a second, plus the time its
	// dozens of vtep-ctl and ovs-vsctl calls take on a loaded machine).
	t.Logf("ovs-vtep removed tenant-a's bridge %v after destroy", l.emulatorBridge(t, "tenant-a", false).Round(time.Millisecond))
	if r := l.exec(p0.name(), "ping", "-n", "-c", "2", "-W", "1", vm1.ip); r.code == 0 {
		t.Errorf("server p0 still reaches vm1 after destroy: %v", r)
	}

	start := time.Now()
	if r := l.hostVx(torHost, l.file, "apply"); r.code != 0 {
		t.Fatalf("apply after destroy: %v", r)
	}
	t.Logf("ovs-vtep created tenant-a's bridge %v after apply", l.emulatorBridge(t, "tenant-a", true).Round(time.Millisecond))
	l.warmUp(t, p0, vm1.ip, 20*time.Second)
	t.Logf("apply after destroy to the first answered ping p0 -> vm1: %v", time.Since(start).Round(time.Millisecond))
}

// TestHardwareVTEPController runs a copy of examples/hardware-vtep in
// controller mode: the controller tells tor1 where the VMs are
// (Ucast_Macs_Remote) and spreads what tor1 learned (Ucast_Macs_Local) to
// the OVS hosts as unicast entries, so known unicast between servers and
// VMs never floods.
func TestHardwareVTEPController(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch, its VTEP emulator and network namespaces")
	}
	t.Parallel()
	l := upLabVariant(t, "hardware-vtep", "-ctl", controllerMode)
	if h := l.topo.Host(torHost); h.Mode != topology.ModeController {
		t.Fatalf("the variant's tor1 is in %s mode, want controller", h.Mode)
	}
	t.Run("SwitchToldOfVMs", func(t *testing.T) { checkSwitchToldOfVMs(t, l) })
	t.Run("ServerMACReachesEveryHost", func(t *testing.T) { checkServerMACSpreads(t, l) })
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("KnownUnicastNeverFloods", func(t *testing.T) { checkNoFloodedUnicast(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// remoteMACs reads tor1's Ucast_Macs_Remote of tenant-a as "MAC@locator".
func (l *labEnv) remoteMACs(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, s := range l.hwShow(t).Switches {
		if s.Name == "tenant-a" {
			for _, m := range s.RemoteMACs {
				out = append(out, m.MAC+"@"+m.Locator)
			}
		}
	}
	return out
}

// checkSwitchToldOfVMs: the VMs' declared MACs reach tor1's
// Ucast_Macs_Remote, each behind its host's VTEP, and nothing else.
func checkSwitchToldOfVMs(t *testing.T, l *labEnv) {
	want := []string{l.vmByPort(t, "vm1").mac + "@192.168.50.1", l.vmByPort(t, "vm2").mac + "@192.168.50.2"}
	var got []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = l.remoteMACs(t); slices.Equal(got, want) {
			t.Logf("tor1's Ucast_Macs_Remote: %v", got)
			return
		}
	}
	t.Errorf("tor1's Ucast_Macs_Remote of tenant-a = %v, want %v", got, want)
}

// checkServerMACSpreads gives server p1 a MAC nobody has seen, sends one
// frame from it and measures the time until every OVS host has the
// controller's unicast entry for it, towards tor1.
func checkServerMACSpreads(t *testing.T, l *labEnv) {
	p1, vm1 := l.vmByPort(t, "p1"), l.vmByPort(t, "vm1")
	fresh := fmt.Sprintf("02:5e:%02x:%02x:%02x:%02x", time.Now().UnixNano()&0xff, 0x10, 0x20, 0x30)
	l.mustExec(t, p1.name(), "ip", "link", "set", "dev", "eth0", "address", fresh)
	owner := fmt.Sprintf("cookie=%#x", flows.CookieController>>48)
	start := time.Now()
	go l.exec(p1.name(), "ping", "-n", "-c", "1", "-W", "1", vm1.ip)
	reported := false
	for deadline := time.Now().Add(20 * time.Second); !reported && time.Now().Before(deadline); {
		for _, s := range l.hwShow(t).Switches {
			reported = reported || slices.ContainsFunc(s.LocalMACs, func(m hwvtep.MACEntry) bool { return m.MAC == fresh })
		}
	}
	if !reported {
		t.Fatalf("tor1 did not report server p1's MAC %s in Ucast_Macs_Local within 20s", fresh)
	}
	t.Logf("tor1 reported server p1's new MAC in Ucast_Macs_Local %v after its first frame", time.Since(start).Round(time.Millisecond))
	for _, h := range []string{"host1", "host2"} {
		ofport := l.tunnelOfport(t, h, "192.168.50.9")
		found := ""
		for deadline := time.Now().Add(20 * time.Second); found == "" && time.Now().Before(deadline); {
			for _, f := range l.dumpFlows(t, h, "br-tun") {
				if strings.HasPrefix(f, owner) && strings.Contains(f, "table=20,") && strings.Contains(f, "dl_dst="+fresh) &&
					strings.Contains(f, "output:"+ofport) {
					found = f
				}
			}
			if found == "" {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if found == "" {
			t.Errorf("%s: no controller entry for server p1's MAC %s towards tor1 (ofport %s) within 20s", h, fresh, ofport)
			continue
		}
		t.Logf("%s: unicast entry for server p1's new MAC %v after its first frame: %s", h, time.Since(start).Round(time.Millisecond), found)
	}
	if local := l.remoteMACs(t); slices.ContainsFunc(local, func(s string) bool { return strings.HasPrefix(s, fresh) }) {
		t.Errorf("tor1 was told of its own server's MAC: %v", local)
	}
}

// checkNoFloodedUnicast: after warm-up, vm1 and server p1 ping each other
// while host2's underlay link is captured: no frame for either of them
// reaches host2 (nothing floods), while host1's link carries them.
func checkNoFloodedUnicast(t *testing.T, l *labEnv) {
	vm1, p1 := l.vmByPort(t, "vm1"), l.vmByPort(t, "p1")
	l.warmUp(t, vm1, p1.ip, 15*time.Second)
	l.warmUp(t, p1, vm1.ip, 15*time.Second)
	p1MAC := strings.ToLower(l.linkMAC(t, p1.name(), "eth0"))
	c2 := startCapture(t, lab.UnderlayNS(l.opts), underlayIf("host2"), "udp", 400, 30*time.Second)
	c1 := startCapture(t, lab.UnderlayNS(l.opts), underlayIf("host1"), "udp", 400, 30*time.Second)
	l.ping(t, vm1, p1.ip, "(host2 captured)")
	l.ping(t, p1, vm1.ip, "(host2 captured)")
	time.Sleep(time.Second)
	count := func(c *capture) (n int) {
		for _, f := range c.decode(t, "eth.dst", "vxlan.vni") {
			if d := last(f[0]); f[1] != "" && (d == vm1.mac || d == p1MAC) {
				n++
			}
		}
		return n
	}
	on2, on1 := count(c2), count(c1)
	if on1 < 12 {
		t.Errorf("host1's link carried %d VXLAN frames to vm1 or p1, want at least 12: the capture proves nothing", on1)
	}
	if on2 != 0 {
		t.Errorf("%d VXLAN frames to vm1 or p1 reached host2: known unicast flooded", on2)
	}
	t.Logf("known unicast vm1 <-> p1: %d VXLAN frames on host1's link, %d on host2's", on1, on2)
}
