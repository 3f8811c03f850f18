package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
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
	t.Run("ARPForServersAnsweredOnTheHost", func(t *testing.T) { checkServerARP(t, l) })
	t.Run("ReloadStopsAndStartsDrivingTheSwitch", func(t *testing.T) { checkHardwareVTEPReload(t, l) })
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

// checkServerMACSpreads sends one frame from behind tor1's port p1 with a
// MAC nobody has seen (raw, so that it is that MAC's very first frame: a
// unicast UDP datagram to vm1, which tor1 knows from Ucast_Macs_Remote) and
// measures the time until every OVS host has the controller's unicast entry
// for it, towards tor1, and until tor1 reports it in Ucast_Macs_Local. The
// entries come from whichever the controller hears first: host1's report
// of the frame (table 2, from an unmanaged peer) or tor1's Ucast_Macs_Local.
func checkServerMACSpreads(t *testing.T, l *labEnv) {
	p1, vm1 := l.vmByPort(t, "p1"), l.vmByPort(t, "vm1")
	fresh := net.HardwareAddr{0x02, 0x5e, byte(time.Now().UnixNano()), 0x10, 0x20, 0x30}
	vm1MAC, _ := net.ParseMAC(vm1.mac)
	frame := udpFrame(fresh, vm1MAC, netip.MustParseAddr(p1.ip), netip.MustParseAddr(vm1.ip))
	owner := fmt.Sprintf("cookie=%#x", flows.CookieController>>48)
	ports := map[string]string{}
	for _, h := range []string{"host1", "host2"} {
		ports[h] = l.tunnelOfport(t, h, "192.168.50.9")
	}
	// The emulator builds its logical switch's bridge a while after apply.
	l.warmUp(t, p1, vm1.ip, 20*time.Second)
	reported := make(chan time.Duration, 1)
	start := time.Now()
	sendFrames(t, lab.VMNS(l.opts, torHost, p1.port), lab.VMIf, frame)
	go func() {
		for time.Since(start) < 20*time.Second {
			var st hwvtep.State
			if r := l.hostVx(torHost, l.file, "show", "--format", "json"); r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil &&
				slices.ContainsFunc(st.Switches, func(s hwvtep.SwitchState) bool {
					return slices.ContainsFunc(s.LocalMACs, func(m hwvtep.MACEntry) bool { return m.MAC == fresh.String() })
				}) {
				reported <- time.Since(start)
				return
			}
		}
		reported <- 0
	}()
	found := map[string]time.Duration{}
	for len(found) < len(ports) && time.Since(start) < 20*time.Second {
		for h, port := range ports {
			if _, ok := found[h]; ok {
				continue
			}
			for _, f := range lines(l.ofctl(t, h, "dump-flows", "br-tun", "table=20", "--no-stats")) {
				if strings.HasPrefix(f, owner) && strings.Contains(f, "dl_dst="+fresh.String()) && strings.Contains(f, "output:"+port) {
					found[h] = time.Since(start)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	for h := range ports {
		if d, ok := found[h]; ok {
			t.Logf("%s: unicast entry towards tor1 for the new server MAC %s %v after its first frame", h, fresh, d.Round(time.Millisecond))
		} else {
			t.Errorf("%s: no controller entry for the new server MAC %s towards tor1 (ofport %s) within 20s", h, fresh, ports[h])
		}
	}
	if d := <-reported; d == 0 {
		t.Errorf("tor1 did not report the new server MAC %s in Ucast_Macs_Local within 20s", fresh)
	} else {
		t.Logf("tor1 reported the new server MAC in Ucast_Macs_Local %v after its first frame (polled through show)", d.Round(time.Millisecond))
	}
	if local := l.remoteMACs(t); slices.ContainsFunc(local, func(s string) bool { return strings.HasPrefix(s, fresh.String()) }) {
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

// checkServerARP: after warm-up, a VM's ARP request for a server's IP is
// answered on its own OVS host and never crosses the underlay, for server
// p0 (MAC and IP declared) and for server p1 (IP declared, MAC learned by
// tor1): the controller learns p1's (MAC, IP) from p1's own ARP, which
// crosses to the OVS hosts. The other way round the emulator floods each
// server's broadcast ARP request to the OVS hosts of the network: it has no
// ARP suppression, although tor1's Ucast_Macs_Remote carries the IP of
// every VM (checked here), the schema's hook for a switch that has one.
// Those requests are counted and logged, not failed.
func checkServerARP(t *testing.T, l *labEnv) {
	vm1, p0, p1 := l.vmByPort(t, "vm1"), l.vmByPort(t, "p0"), l.vmByPort(t, "p1")
	// Warm-up: p1's ARP for vm1 crosses once, so the controller learns
	// p1's IP with the MAC tor1 reported.
	l.mustExec(t, p1.name(), "ip", "neigh", "flush", "all")
	l.warmUp(t, p1, vm1.ip, 15*time.Second)
	p1MAC := strings.ToLower(l.linkMAC(t, p1.name(), "eth0"))
	for _, h := range []string{"host1", "host2"} {
		for _, s := range []struct{ ip, mac string }{{p0.ip, p0.mac}, {p1.ip, p1MAC}} {
			took := l.answers(t, h, netip.MustParseAddr(s.ip), s.mac, 20*time.Second)
			t.Logf("%s answers ARP for %s with %s (%v after warm-up)", h, s.ip, s.mac, took.Round(time.Millisecond))
		}
	}
	checkRemoteIPs(t, l)

	for _, v := range []vm{vm1, p0, p1} {
		l.mustExec(t, v.name(), "ip", "neigh", "flush", "all")
	}
	ul := lab.UnderlayNS(l.opts)
	caps := map[string]*capture{}
	for _, h := range []string{"host1", "host2", torHost} {
		caps[h] = startCapture(t, ul, underlayIf(h), "udp port 4789", 2000, 60*time.Second)
	}
	for _, s := range []vm{p0, p1} {
		l.ping(t, vm1, s.ip, "(neighbours flushed, underlay captured)")
		l.ping(t, s, vm1.ip, "(neighbours flushed, underlay captured)")
	}
	time.Sleep(time.Second) // the last packets reach tcpdump
	fromVMs, fromServers, asked := 0, map[string]int{}, map[string]bool{}
	for h, c := range caps {
		for _, f := range c.decode(t, "ip.src", "ip.dst", "eth.src", "arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4") {
			// Each packet crosses two links: count it on its sender's.
			if first(f[0]) != l.vtepOf(h) || !slices.Contains(strings.Split(f[3], ","), "1") {
				continue
			}
			what := fmt.Sprintf("%s -> %s: who-has %s tell %s (%s)", h, first(f[1]), f[5], f[4], last(f[2]))
			if h == torHost {
				fromServers[what]++
				asked[f[4]+" asks for "+f[5]] = true
				continue
			}
			fromVMs++
			t.Errorf("an ARP request from the VMs' side crossed the underlay: %s", what)
		}
	}
	n := 0
	for what, c := range fromServers {
		n += c
		t.Logf("server ARP request on the underlay (x%d): %s", c, what)
	}
	t.Logf("after flushing the neighbours of vm1, p0 and p1 and pinging both ways: %d ARP requests from the OVS hosts; "+
		"%d broadcast ARP requests from the servers (%v), %d copies on tor1's link (the emulator floods them to every "+
		"unknown-dst locator; a switch with ARP suppression would answer them from Ucast_Macs_Remote's ipaddr)",
		fromVMs, len(asked), slices.Sorted(maps.Keys(asked)), n)
}

// checkRemoteIPs: every VM of tenant-a with an IP is in tor1's
// Ucast_Macs_Remote with that IP.
func checkRemoteIPs(t *testing.T, l *labEnv) {
	var remote []string
	for _, s := range l.hwShow(t).Switches {
		if s.Name == "tenant-a" {
			for _, m := range s.RemoteMACs {
				remote = append(remote, m.MAC+"/"+m.IP+"@"+m.Locator)
			}
		}
	}
	for _, v := range l.vms() {
		if v.network != "tenant-a" || v.host == torHost || v.ip == "" {
			continue
		}
		if want := v.mac + "/" + v.ip + "@" + l.vtepOf(v.host); !slices.Contains(remote, want) {
			t.Errorf("tor1's Ucast_Macs_Remote lacks %s (MAC/ipaddr@locator): %v", want, remote)
		}
	}
	t.Logf("tor1's Ucast_Macs_Remote (MAC/ipaddr@locator): %v", remote)
}

// checkHardwareVTEPReload puts tor1 in learn mode in the running
// controller's file: the controller stops driving it and empties its
// Ucast_Macs_Remote; the file put back, it drives tor1 again (a hardware
// VTEP added by a reload) and servers reach VMs. No restart either way.
func checkHardwareVTEPReload(t *testing.T, l *labEnv) {
	orig, err := os.ReadFile(l.file)
	if err != nil {
		t.Fatal(err)
	}
	const managed = "\n    managed: false"
	if !strings.Contains(string(orig), managed) {
		t.Fatalf("the lab's file has no %q line for tor1", managed)
	}
	defer replaceFile(t, l.file, string(orig))
	wait := func(what string, cond func([]string) bool) time.Duration {
		start := time.Now()
		var got []string
		for deadline := start.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = l.remoteMACs(t); cond(got) {
				return time.Since(start)
			}
		}
		t.Fatalf("%s: tor1's Ucast_Macs_Remote is %v after 20s; controller log:\n%s", what, got, logTail(l.controllerLog(), 15))
		return 0
	}
	replaceFile(t, l.file, strings.Replace(string(orig), managed, "\n    mode: learn"+managed, 1))
	took := wait("tor1 in learn mode", func(got []string) bool { return len(got) == 0 })
	t.Logf("tor1 put in learn mode: Ucast_Macs_Remote emptied %v after the file changed", took.Round(time.Millisecond))
	if got := logLines(t, l.controllerLog(), "hardware VTEPs driven by the reload", "stopped", torHost); len(got) == 0 {
		t.Errorf("no log line of the reload stopping tor1:\n%s", logTail(l.controllerLog(), 15))
	}

	replaceFile(t, l.file, string(orig))
	want := []string{l.vmByPort(t, "vm1").mac + "@192.168.50.1", l.vmByPort(t, "vm2").mac + "@192.168.50.2"}
	took = wait("tor1 back in controller mode", func(got []string) bool { return slices.Equal(got, want) })
	t.Logf("tor1 back in controller mode: Ucast_Macs_Remote %v again %v after the file changed", want, took.Round(time.Millisecond))
	l.warmUp(t, l.vmByPort(t, "p1"), l.vmByPort(t, "vm1").ip, 15*time.Second)
}
