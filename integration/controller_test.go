package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// ctlExample is the controller-mode example: three hosts, vm1 and vm2 with
// declared MACs, vm3 without (the controller learns it).
const ctlExample = "three-hosts-controller"

// TestController runs the controller-mode example through the lab, whose
// controller (`ovs-vxctl controller` in the underlay namespace) fills br-tun's
// table 20 and ARP responders. Subtests share the lab and run in order.
//
// Not parallel on purpose: it measures packet loss, reconnect and
// convergence times, which other labs running at the same time on a 2-core
// machine would distort. Go runs it before the parallel tests start.
func TestController(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	l := upLab(t, ctlExample)
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("FlowsMatchCompiledAndGolden", func(t *testing.T) { checkFlowsMatch(t, l) })
	t.Run("NoARPOnUnderlay", func(t *testing.T) { checkNoARPOnUnderlay(t, l) })
	t.Run("ControllerRestartLosesNothing", func(st *testing.T) { checkControllerRestart(st, t, l) })
	t.Run("VswitchdRestartRecovers", func(t *testing.T) { checkVswitchdRestart(t, l) })
	t.Run("NewMACConverges", func(t *testing.T) { checkNewMAC(t, l) })
	t.Run("MovedMACReachable", func(t *testing.T) { checkMACMove(t, l) })
	t.Run("UnknownDatapathRefused", func(t *testing.T) { checkRogueSwitch(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// checkNoARPOnUnderlay flushes every VM's neighbours and pings all pairs
// again while capturing every host's underlay link: the controller's ARP
// responders must answer every ARP request locally, so no inner ARP request
// crosses the underlay, while the ICMP does. Then table 20 of every host must
// hold the controller's entry for each remote VM (vm3's learned MAC too), and
// `ovs-vxctl fdb` must list them as installed.
func checkNoARPOnUnderlay(t *testing.T, l *labEnv) {
	vms := l.vms()
	for _, v := range vms {
		l.mustExec(t, v.name(), "ip", "neigh", "flush", "all")
	}
	ul := lab.UnderlayNS(l.opts)
	caps := map[string]*capture{}
	for _, h := range l.managedHosts() {
		caps[h] = startCapture(t, ul, underlayIf(h), "udp port 4789", 5000, 60*time.Second)
	}
	type pair struct{ src, dst string } // VTEPs
	want := map[pair]bool{}
	for _, a := range vms {
		for _, b := range vms {
			if a == b || a.network != b.network || a.host == b.host {
				continue
			}
			want[pair{l.vtepOf(a.host), l.vtepOf(b.host)}] = true
			l.ping(t, a, b.ip, "(neighbours flushed, underlay captured)")
		}
	}
	arpRequests := 0
	echo := map[pair]int{}
	for _, h := range l.managedHosts() {
		vtep := l.vtepOf(h)
		pkts := caps[h].decode(t, "ip.src", "ip.dst", "vxlan.vni", "eth.src", "arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4", "icmp.type")
		n := 0
		for _, f := range pkts {
			if len(f) < 8 {
				t.Errorf("short tshark line %q", f)
				continue
			}
			if f[2] == "" {
				t.Errorf("a UDP/4789 packet on %s not decoded as VXLAN: %q", underlayIf(h), f)
				continue
			}
			// Each packet crosses two host links: count it on its sender's.
			if first(f[0]) != vtep {
				continue
			}
			n++
			for _, op := range strings.Split(f[4], ",") {
				if op == "1" {
					arpRequests++
					t.Errorf("ARP request crossed the underlay from %s (VNI %s, inner source %s): who-has %s tell %s",
						h, f[2], last(f[3]), f[6], f[5])
				}
			}
			for _, typ := range strings.Split(f[7], ",") {
				if typ == "8" {
					echo[pair{first(f[0]), first(f[1])}]++
				}
			}
		}
		t.Logf("underlay capture on %s: %d VXLAN packets sent by %s", underlayIf(h), n, h)
	}
	for p := range want {
		if echo[p] < 3 {
			t.Errorf("%d ICMP echo requests from VTEP %s to VTEP %s on the underlay, want at least 3 (the pings must cross it): %v", echo[p], p.src, p.dst, echo)
		}
	}
	t.Logf("after flushing the VMs' neighbours and pinging all pairs: %d ARP requests on the underlay, echo requests by VTEP pair %v", arpRequests, echo)

	// Table 20 and fdb: every host has the controller's entry for every
	// remote VM of its network.
	for _, h := range l.managedHosts() {
		t20 := l.table20(t, h)
		fdb := l.fdb(t, h)
		for _, local := range vms {
			if local.host != h {
				continue
			}
			vlan := l.portTag(t, h, local.port)
			vni := l.vniOf(t, local.network)
			for _, remote := range vms {
				if remote.host == h || remote.network != local.network {
					continue
				}
				mac := l.vmMAC(t, remote)
				vtep := l.vtepOf(remote.host)
				port := l.tunnelOfport(t, h, vtep)
				entry := unicastEntry(vlan, mac, vni, port)
				if cookie, ok := t20[entry]; !ok {
					t.Errorf("%s br-tun table 20 lacks the controller's entry for %s (%s):\n want %s\n have:\n%s", h, remote.name(), mac, entry, strings.Join(sorted(keys(t20)), "\n"))
				} else if !strings.HasPrefix(cookie, "0x767a") {
					t.Errorf("%s table 20 entry for %s has cookie %s, want the controller's 0x767a…", h, remote.name(), cookie)
				}
				found := false
				for _, e := range fdb {
					if strings.EqualFold(e.MAC, mac) {
						found = true
						if e.Origin != "installed" || e.VNI != vni || e.LocalVLAN != vlan || e.RemoteVTEP != vtep || e.Peer != remote.host || fmt.Sprint(e.OFPort) != port {
							t.Errorf("`ovs-vxctl fdb` on %s lists %s as %+v, want origin installed, VNI %d, local VLAN %d, peer %s, VTEP %s, ofport %s",
								h, remote.name(), e, vni, vlan, remote.host, vtep, port)
						} else {
							t.Logf("fdb on %s: %+v", h, e)
						}
					}
				}
				if !found {
					t.Errorf("`ovs-vxctl fdb` on %s has no entry for %s (%s): %+v", h, remote.name(), mac, fdb)
				}
			}
		}
	}
}

// keys returns the keys of m.
func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkControllerRestart kills the lab's controller (SIGKILL, as a crash)
// while vm1 pings vm3 every 50 ms, starts it again as the lab does (plus a
// metrics listener), and waits until every switch has reconnected and been
// reconciled. No ping may be lost, the flows and OVSDB of every host must be
// what they were, and the new controller must have sent no flow-mod.
// The new controller serves the later subtests: owner (the parent test)
// stops it in its cleanup, if `lab down` has not already.
func checkControllerRestart(t *testing.T, owner testing.TB, l *labEnv) {
	ul := lab.UnderlayNS(l.opts)
	pids := controllerPids(t, ul)
	if len(pids) != 1 {
		t.Fatalf("want exactly one controller process in %s, found %v", ul, pids)
	}
	if !l.allConnected(t) {
		t.Fatalf("not every switch is connected to the controller before the restart")
	}
	before := map[string]hostState{}
	for _, h := range l.managedHosts() {
		before[h] = l.snapshot(t, h)
	}
	vm1, vm3 := l.vmByPort(t, "vm1"), l.vmByPort(t, "vm3")
	// 160 pings, one every 50 ms: 8 s, which must cover the whole restart
	// (checked below).
	const count, interval = 160, 50 * time.Millisecond
	ping := startPing(t, lab.VMNS(l.opts, vm1.host, vm1.port), "-n", "-q", "-c", fmt.Sprint(count), "-i", fmt.Sprint(interval.Seconds()), "-W", "1", vm3.ip)
	time.Sleep(time.Second)

	killed := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatalf("killing controller %d: %v", pids[0], err)
	}
	waitGone(t, pids[0], 5*time.Second)
	restarted := time.Now()
	startControllerIn(t, owner, ul, l.file, l.topo.Controller, l.controllerLog(), "--metrics-listen", metricsAddr)
	listening := time.Now()
	var reconnected time.Time
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l.allConnected(t) {
			reconnected = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the switches did not all reconnect within 20s of the restart; controller log:\n%s", logTail(l.controllerLog(), 30))
		}
	}
	// Every switch reconciled by the new process: only then does "no
	// flow-mod" mean something.
	var m map[string]float64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		m, err = fetchMetrics(ul, metricsAddr)
		n := len(l.managedHosts())
		if err == nil && m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-tun"}`] >= float64(n) &&
			m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-int"}`] >= float64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted controller did not reconcile all %d br-tun and br-int within 15s (metrics error %v, samples %v); log:\n%s",
				n, err, m, logTail(l.controllerLog(), 30))
		}
	}
	reconciled := time.Now()
	out := ping.wait(t, 30*time.Second)
	if ping.exited.Before(reconciled) {
		t.Errorf("the ping ended (%v) before every switch was reconciled (%v): it did not cover the restart", ping.exited.Format(time.StampMilli), reconciled.Format(time.StampMilli))
	}
	s := parsePing(out)
	t.Logf("controller restart: old process gone %v after SIGKILL, new one listening %v after the kill; switches reconnected %v after it listened (%v after the kill), reconciled %v after the kill",
		restarted.Sub(killed).Round(time.Millisecond), listening.Sub(killed).Round(time.Millisecond), reconnected.Sub(listening).Round(time.Millisecond),
		reconnected.Sub(killed).Round(time.Millisecond), reconciled.Sub(killed).Round(time.Millisecond))
	t.Logf("ping vm1 -> vm3 every %v across the restart: %d sent, %d received, loss %.1f%%, rtt %s",
		interval, s.sent, s.received, 100*float64(s.sent-s.received)/float64(max(s.sent, 1)), s.rtt)
	if s.sent != count || s.received != s.sent {
		t.Errorf("ping across the controller restart lost packets: %d sent, %d received:\n%s", s.sent, s.received, out)
	}
	// Read the counters again now that the ping is over: a late flow-mod
	// counts too. (checkVswitchdRestart shows that these counters do count
	// when the controller has something to send.)
	if m2, err := fetchMetrics(ul, metricsAddr); err != nil {
		t.Errorf("reading the restarted controller's metrics after the ping: %v", err)
	} else {
		m = m2
	}
	mods := metricSum(m, "ovs_vxctl_controller_flow_mods_sent_total")
	bundles := metricSum(m, "ovs_vxctl_controller_bundles_sent_total")
	t.Logf("restarted controller: %v flow-mods, %v bundles sent; adopted %v MACs; connected %v br-tun, %v br-int",
		mods, bundles, m[`ovs_vxctl_controller_mac_events_total{kind="adopted"}`],
		m[`ovs_vxctl_controller_switches_connected{bridge="br-tun"}`], m[`ovs_vxctl_controller_switches_connected{bridge="br-int"}`])
	if mods != 0 || bundles != 0 {
		t.Errorf("the restarted controller sent %v flow-mods in %v bundles to switches that already had the right flows", mods, bundles)
	}
	for _, h := range l.managedHosts() {
		sameState(t, h+": across the controller restart", before[h], l.snapshot(t, h))
	}
}

// checkVswitchdRestart kills host2's ovs-vswitchd (its flows are gone with
// it), starts it again and waits until br-int and br-tun hold exactly what
// they held before (the controller puts them back), then pings host2's VM.
func checkVswitchdRestart(t *testing.T, l *labEnv) {
	const host = "host2"
	inst := l.inst(host)
	dump := func() map[string][]string {
		out := map[string][]string{}
		for _, br := range []string{"br-int", "br-tun"} {
			r := run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "unix:"+inst.MgmtSocket(br), "--no-stats")
			if r.code != 0 {
				return nil
			}
			out[br] = sorted(withoutCookiePrefix(lines(r.stdout), "0x7679"))
		}
		return out
	}
	before := dump()
	if before == nil || len(before["br-tun"]) == 0 || len(before["br-int"]) == 0 {
		t.Fatalf("%s has no flows to compare with before the restart: %v", host, before)
	}
	// The controller restarted by checkControllerRestart serves metrics:
	// its flow-mod counter must show the flows it puts back (which also
	// proves that its "0 flow-mods" after the restart was not vacuous).
	ul := lab.UnderlayNS(l.opts)
	modsOf := func() (float64, error) {
		m, err := fetchMetrics(ul, metricsAddr)
		if err != nil {
			return 0, err
		}
		var sum float64
		for _, br := range []string{"br-int", "br-tun"} {
			sum += m[fmt.Sprintf(`ovs_vxctl_controller_flow_mods_sent_total{bridge="%s",host="%s"}`, br, host)]
		}
		return sum, nil
	}
	modsBefore, metricsErr := modsOf()
	killed := time.Now()
	if err := inst.StopVswitchd(); err != nil {
		t.Fatalf("stopping ovs-vswitchd on %s: %v", host, err)
	}
	if inst.Running("ovs-vswitchd") {
		t.Fatalf("ovs-vswitchd of %s still running after StopVswitchd", host)
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := inst.StartVswitchd(ctx); err != nil {
		t.Fatalf("starting ovs-vswitchd on %s: %v", host, err)
	}
	up := time.Now()
	var after map[string][]string
	var recovered time.Time
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = dump()
		if after != nil && equalLines(after["br-tun"], before["br-tun"]) && equalLines(after["br-int"], before["br-int"]) {
			recovered = time.Now()
			break
		}
		if time.Now().After(deadline) {
			for _, br := range []string{"br-int", "br-tun"} {
				t.Errorf("%s %s 20s after ovs-vswitchd restarted, before (-) and now (+):\n%s", host, br, diffLines(before[br], after[br]))
			}
			t.Fatalf("flows not recovered; controller log:\n%s", logTail(l.controllerLog(), 30))
		}
	}
	t.Logf("ovs-vswitchd restart on %s: killed in %v, started in %v, flows back %v after the start (%v after the kill); %d br-tun + %d br-int flows",
		host, started.Sub(killed).Round(time.Millisecond), up.Sub(started).Round(time.Millisecond),
		recovered.Sub(started).Round(time.Millisecond), recovered.Sub(killed).Round(time.Millisecond), len(after["br-tun"]), len(after["br-int"]))
	if metricsErr != nil {
		t.Errorf("the controller's metrics (served since checkControllerRestart): %v", metricsErr)
	} else if modsAfter, err := modsOf(); err != nil {
		t.Errorf("the controller's metrics after the ovs-vswitchd restart: %v", err)
	} else {
		// The allocation advertisement (cookie 0x767b…) is put back
		// outside the reconcile the counter follows: leave it out.
		restored := len(withoutCookiePrefix(after["br-tun"], "0x767b")) + len(after["br-int"])
		t.Logf("the controller counted %v flow-mods to %s restoring its %d reconciled flows (plus %d advertisement flows)",
			modsAfter-modsBefore, host, restored, len(withCookiePrefix(after["br-tun"], "0x767b")))
		if modsAfter-modsBefore < float64(restored) {
			t.Errorf("the controller's flow-mod counter for %s grew by %v while it put back %d flows", host, modsAfter-modsBefore, restored)
		}
	}
	vm2 := l.vmByPort(t, "vm2")
	for _, other := range l.vms() {
		if other.host == host {
			continue
		}
		l.warmUp(t, vm2, other.ip, 15*time.Second)
		l.ping(t, vm2, other.ip, "(after ovs-vswitchd restart)")
		l.ping(t, other, vm2.ip, "(after ovs-vswitchd restart)")
	}
}

// checkNewMAC adds a VM with a MAC the controller has never seen to host2,
// sends one ping from it and measures, with `ovs-ofctl monitor` on the other
// hosts' br-tun, how long after that first frame their table 20 hold its
// entry; then pings it from every other VM.
func checkNewMAC(t *testing.T, l *labEnv) {
	const host, mac, cidr = "host2", "52:54:00:00:01:99", "10.1.1.99/24"
	vm2 := l.vmByPort(t, "vm2")
	vni := l.vniOf(t, vm2.network)
	v := l.addVM(t, host, "vmnew", mac, cidr, l.portTag(t, host, vm2.port))
	want, others := l.entriesFor(t, host, vm2.network, mac, vni)
	w := l.watchEntries(t, want)
	start := time.Now()
	w.setStart(start)
	r := run("ip", "netns", "exec", v.ns, "ping", "-n", "-c", "1", "-W", "2", vm2.ip)
	seen, early := w.waitFor(others, 5*time.Second)
	w.stop()
	if r.code != 0 {
		t.Errorf("first ping from the new VM to %s: %v", vm2.ip, r)
	}
	for _, h := range others {
		d, ok := seen[h]
		switch {
		case early[h]:
			t.Errorf("%s had the entry of MAC %s before the new VM sent anything", h, mac)
		case !ok:
			t.Errorf("%s br-tun table 20 did not get %q within 5s of the new MAC's first frame; it has:\n%s\ncontroller log:\n%s",
				h, want[h], strings.Join(sorted(keys(l.table20(t, h))), "\n"), logTail(l.controllerLog(), 15))
		default:
			t.Logf("convergence: new MAC %s on %s -> entry in %s's table 20 %v after the ping started", mac, host, h, d.Round(100*time.Microsecond))
			if d > 2*time.Second {
				t.Errorf("%s got the new MAC's entry only %v after its first frame", h, d)
			}
		}
	}
	for _, other := range l.vms() {
		if other.network != vm2.network || other.host == host {
			continue
		}
		l.ping(t, other, v.ip, "(the new VM on "+host+")")
	}
}

// entriesFor returns, for every managed host but onHost, the table-20 entry
// (as `ovs-ofctl monitor` prints it) that sends mac of network to onHost's
// tunnel, and the list of those hosts.
func (l *labEnv) entriesFor(t testing.TB, onHost, network, mac string, vni uint32) (map[string]string, []string) {
	t.Helper()
	want := map[string]string{}
	var hosts []string
	for _, h := range l.managedHosts() {
		if h == onHost {
			continue
		}
		vlan := l.portTag(t, h, l.localVM(t, h, network).port)
		want[h] = monitorEntry(vlan, mac, vni, l.tunnelOfport(t, h, l.vtepOf(onHost)))
		hosts = append(hosts, h)
	}
	return want, hosts
}

// localVM is a VM of network on host.
func (l *labEnv) localVM(t testing.TB, host, network string) vm {
	t.Helper()
	for _, v := range l.vms() {
		if v.host == host && v.network == network {
			return v
		}
	}
	t.Fatalf("no VM of network %s on %s", network, host)
	return vm{}
}

// checkMACMove moves vm3 (MAC and address) from host3 to host1: its veth on
// host3 goes, a new VM with the same MAC and address comes up on host1 and
// pings vm2. vm2, pinging vm3's address every 20 ms meanwhile, must get an
// answer within a second of that first frame, and table 20 of host2 (and of
// host3, which the MAC left) must then point at host1's tunnel.
func checkMACMove(t *testing.T, l *labEnv) {
	const newHost = "host1"
	vm2, vm3 := l.vmByPort(t, "vm2"), l.vmByPort(t, "vm3")
	mac := l.vmMAC(t, vm3)
	vni := l.vniOf(t, vm3.network)
	cidr := ""
	for _, n := range l.topo.Networks {
		for _, p := range n.Ports {
			if p.Name == vm3.port {
				cidr = p.IP.String()
			}
		}
	}
	// vm2 gets a fresh neighbour entry for vm3, so that during the move
	// it sends to vm3's MAC at once (no ARP of its own in the way).
	l.mustExec(t, vm2.name(), "ip", "neigh", "flush", "all")
	l.ping(t, vm2, vm3.ip, "(before the move)")

	l.mustExec(t, vm3.host, "ip", "link", "del", vm3.port)
	moved := l.addVM(t, newHost, "vm3moved", mac, cidr, l.portTag(t, newHost, l.localVM(t, newHost, vm3.network).port))
	want, others := l.entriesFor(t, newHost, vm3.network, mac, vni)
	w := l.watchEntries(t, want)

	ping := startPing(t, lab.VMNS(l.opts, vm2.host, vm2.port), "-n", "-D", "-c", "150", "-i", "0.02", "-W", "1", vm3.ip)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	w.setStart(start)
	r := run("ip", "netns", "exec", moved.ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", vm2.ip)
	seen, early := w.waitFor(others, 5*time.Second)
	w.stop()
	out := ping.wait(t, 30*time.Second)
	if r.code != 0 {
		t.Errorf("ping from the moved vm3 on %s to vm2: %v", newHost, r)
	}
	first, before, ok := firstReplyAfter(out, start)
	if before > 0 {
		t.Errorf("vm2 got %d replies from vm3's address after its veth was deleted and before the move: something else answers", before)
	}
	if !ok {
		t.Errorf("vm2 never reached vm3's address on %s (pinging for 3 s):\n%s\ncontroller log:\n%s", newHost, out, logTail(l.controllerLog(), 15))
	} else {
		took := first.Sub(start)
		t.Logf("MAC move: vm2 reached vm3 on %s %v after vm3's first ping there started (vm2 pinging every 20 ms)", newHost, took.Round(time.Millisecond))
		if took >= time.Second {
			t.Errorf("vm2 reached the moved vm3 only %v after its first frame on %s, want < 1s", took, newHost)
		}
	}
	for _, h := range others {
		if d, ok := seen[h]; ok {
			t.Logf("MAC move: %s table 20 points vm3's MAC at %s's tunnel %v after the first ping started", h, newHost, d.Round(100*time.Microsecond))
		} else {
			t.Errorf("%s br-tun table 20 did not point vm3's MAC at %s's tunnel (early=%v): want %q; have:\n%s", h, newHost, early[h], want[h],
				strings.Join(sorted(keys(l.table20(t, h))), "\n"))
		}
	}
}

// checkRogueSwitch adds to host1 a bridge whose datapath ID is no switch of
// the topology, pointed at the controller: it must get no flow and no
// connection, and the controller must log the refusal with its datapath ID.
func checkRogueSwitch(t *testing.T, l *labEnv) {
	const host, br, dpid = "host1", "br-rogue", "00000000000000aa"
	db := "--db=" + l.inst(host).DBEndpoint()
	t.Cleanup(func() { run("ovs-vsctl", db, "--timeout=10", "--if-exists", "del-br", br) })
	created := time.Now()
	l.vsctl(t, host, "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure",
		"other_config:datapath-id="+dpid, "other_config:disable-in-band=true", "--", "set-controller", br, l.topo.Controller)
	var refusals []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if refusals = logLines(t, l.controllerLog(), "refused", dpid); len(refusals) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal naming datapath ID %s in the controller log within 15s; it ends with:\n%s", dpid, logTail(l.controllerLog(), 20))
		}
	}
	t.Logf("refused %v after the bridge was created: %s", time.Since(created).Round(time.Millisecond), refusals[0])
	// Give it a few seconds (and OVS its reconnection attempts) to get
	// anything at all.
	if d := 3*time.Second - time.Since(created); d > 0 {
		time.Sleep(d)
	}
	for i := 0; i < 3; i++ {
		if connected, status := l.bridgeController(t, host, br); connected {
			t.Errorf("%s's controller connection is up (status %s)", br, status)
		} else if i == 2 {
			t.Logf("%s controller: is_connected=false, %s", br, status)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if fl := lines(l.ofctl(t, host, "dump-flows", br, "--no-stats")); len(fl) > 0 {
		t.Errorf("%s got flows:\n%s", br, strings.Join(fl, "\n"))
	}
	refusals = logLines(t, l.controllerLog(), "refused", dpid)
	t.Logf("%d refusals of %s logged within %v", len(refusals), dpid, time.Since(created).Round(time.Millisecond))
	if !l.allConnected(t) {
		t.Errorf("the topology's switches lost their controller while a rogue switch was refused")
	}
}

// TestControllerTLS runs the controller on ssl: with certificates from
// ovs-pki: host1, applied with a certificate signed by the switch CA and
// naming it (CN "host1 id:…"),
// connects and gets its flows; host2, applied with a self-signed
// certificate, is refused and gets nothing. The lab is built without apply
// (the lab passes no TLS files to apply), and the test applies and runs the
// controller itself.
func TestControllerTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	if _, err := exec.LookPath("ovs-pki"); err != nil {
		t.Fatalf("ovs-pki (Debian: openvswitch-common) is needed to make the certificates: %v", err)
	}
	dir := filepath.Join(workDir, ctlExample+"-tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := copyExample(t, ctlExample, dir, "topology.yaml", func(s string) string {
		// Topology names have at most 20 characters.
		s = strings.Replace(s, "\nname: "+namePrefix+"three-hosts-ctl\n", "\nname: "+namePrefix+"ctl-tls\n", 1)
		return strings.Replace(s, "\ncontroller: tcp:", "\ncontroller: ssl:", 1)
	})
	pkiStart := time.Now()
	pki := filepath.Join(dir, "pki")
	for _, args := range [][]string{
		{"--dir=" + pki, "--log=" + filepath.Join(dir, "ovs-pki.log"), "init", "--force"},
		{"--dir=" + pki, "--log=" + filepath.Join(dir, "ovs-pki.log"), "--force", "req+sign", "ctl", "controller"},
		{"--dir=" + pki, "--log=" + filepath.Join(dir, "ovs-pki.log"), "--force", "req+sign", "host1", "switch"}, // CN "host1 id:…": names the host
		{"--log=" + filepath.Join(dir, "ovs-pki.log"), "--force", "req", "rogue"},
		{"--log=" + filepath.Join(dir, "ovs-pki.log"), "--force", "self-sign", "rogue"},
	} {
		cmd := exec.Command("ovs-pki", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovs-pki %v: %v: %s", args, err, out)
		}
	}
	t.Logf("PKI made in %v", time.Since(pkiStart).Round(time.Millisecond))
	pem := func(name string) string { return filepath.Join(dir, name) }

	l := upLabNoApply(t, ctlExample, file)
	if !strings.HasPrefix(l.topo.Controller, "ssl:") {
		t.Fatalf("the TLS copy's controller is %q, want ssl:…", l.topo.Controller)
	}
	logPath := filepath.Join(l.report.Dir, lab.ControllerLog)
	startControllerIn(t, t, lab.UnderlayNS(l.opts), file, l.topo.Controller, logPath,
		"--private-key", pem("ctl-privkey.pem"), "--certificate", pem("ctl-cert.pem"),
		"--ca-cert", filepath.Join(pki, "switchca", "cacert.pem"))

	apply := func(host, key, cert string) {
		r := l.hostVx(host, file, "apply", "--private-key", key, "--certificate", cert,
			"--ca-cert", filepath.Join(pki, "controllerca", "cacert.pem"))
		if r.code != 0 {
			t.Fatalf("%s: apply with TLS files: %v", host, r)
		}
		t.Logf("%s: apply (%v wall):\n%s", host, r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
	}
	applied := time.Now()
	apply("host1", pem("host1-privkey.pem"), pem("host1-cert.pem"))
	apply("host2", pem("rogue-privkey.pem"), pem("rogue-cert.pem"))

	// host1: both bridges connected, br-tun with the compiled pipeline and
	// the controller's flows, br-int with its NORMAL flow.
	compiled := map[string][]string{}
	for _, br := range []string{"br-int", "br-tun"} {
		r := l.hostVx("host1", file, "flows", "--bridge", br)
		if r.code != 0 {
			t.Fatalf("host1: flows --bridge %s: %v", br, r)
		}
		compiled[br] = sorted(lines(r.stdout))
	}
	synced := func() bool {
		for _, br := range []string{"br-int", "br-tun"} {
			if c, _ := l.bridgeController(t, "host1", br); !c {
				return false
			}
			owned := sorted(withCookiePrefix(l.dumpFlows(t, "host1", br), "0x7678"))
			if !equalLines(owned, compiled[br]) {
				return false
			}
		}
		return len(withCookiePrefix(l.dumpFlows(t, "host1", "br-tun"), "0x767a")) > 0
	}
	for deadline := time.Now().Add(30 * time.Second); !synced(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			for _, br := range []string{"br-int", "br-tun"} {
				c, status := l.bridgeController(t, "host1", br)
				t.Errorf("host1 %s: is_connected=%v status %s; owned flows installed (-) vs compiled (+):\n%s", br, c, status,
					diffLines(sorted(withCookiePrefix(l.dumpFlows(t, "host1", br), "0x7678")), compiled[br]))
			}
			t.Fatalf("host1 did not connect over TLS and get its flows within 30s; controller log:\n%s", logTail(logPath, 30))
		}
	}
	t.Logf("host1 connected over TLS and got its flows %v after apply (the first reconcile waits out the controller's grace period: host2 is refused, host3 not applied)", time.Since(applied).Round(time.Millisecond))
	for _, f := range withCookiePrefix(l.dumpFlows(t, "host1", "br-tun"), "0x767a") {
		t.Logf("host1 br-tun controller flow: %s", f)
	}

	// host2: refused for its certificate, no flows from the controller.
	var refusals []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		refusals = logLines(t, logPath, "refused", "192.168.50.2:")
		if len(refusals) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal of host2 (192.168.50.2) in the controller log within 20s; it ends with:\n%s", logTail(logPath, 30))
		}
	}
	t.Logf("host2 refused: %s", refusals[0])
	if !strings.Contains(refusals[0], "TLS") || !strings.Contains(refusals[0], "certificate") {
		t.Errorf("the refusal of host2 does not say it is about its TLS certificate: %s", refusals[0])
	}
	time.Sleep(time.Second)
	for _, br := range []string{"br-int", "br-tun"} {
		if c, status := l.bridgeController(t, "host2", br); c {
			t.Errorf("host2 %s connected to the controller with a self-signed certificate (status %s)", br, status)
		} else {
			t.Logf("host2 %s controller: is_connected=false, %s", br, status)
		}
	}
	// Apply installs only br-int's NORMAL flow and br-tun's allocation
	// advertisement; br-tun's pipeline and the controller's flows come
	// from the controller, so host2 must have none of them.
	if fl := l.dumpFlows(t, "host2", "br-tun"); len(withCookiePrefix(fl, "0x7678")) > 0 || len(withCookiePrefix(fl, "0x767a")) > 0 {
		t.Errorf("host2 br-tun got flows from the controller with a self-signed certificate:\n%s", strings.Join(fl, "\n"))
	}
	if fl := withCookiePrefix(l.dumpFlows(t, "host2", "br-int"), "0x767a"); len(fl) > 0 {
		t.Errorf("host2 br-int got controller flows with a self-signed certificate:\n%s", strings.Join(fl, "\n"))
	}
	for _, line := range logLines(t, logPath, "switch connected") {
		if strings.Contains(line, `"host": "host2"`) {
			t.Errorf("the controller logged a connection of host2: %s", line)
		}
	}
}
