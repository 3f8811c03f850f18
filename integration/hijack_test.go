package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// TestHijack tries issue 9's identity attacks on the controller-mode lab,
// with pings crossing the overlay all along:
//
//   - ImpostorRefused: a second Open vSwitch on the underlay whose br-tun
//     claims host1's datapath ID (computable by anyone: a hash of the
//     topology's and host's names), with host1's advertisement and ports,
//     points at the controller and sends frames claiming vm2's declared MAC
//     and vm3's learned one. The controller must refuse it while host1's
//     switch answers, never replacing host1's session.
//   - DeclaredMACPinned: vm2 sends frames with vm1's declared MAC; the
//     controller must count a conflict and leave vm1 where it is.
//   - AwaySwitchImpersonated, the known limit of tcp: (and the proof that
//     the impostor is able): once host1's switch stops answering, the
//     impostor displaces it, is counted as such and gets host1's pipeline.
//
// Both fail on a controller without the defences: the newest connection
// claiming a datapath ID used to replace the session (no refusal counted,
// host1's session replaced), and a report of a declared MAC from another
// host used to move it (vm3's pings to vm1 then go to host2).
func TestHijack(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	l, ul := startHijackLab(t)
	imp := startImpostor(t, l, ul)
	t.Run("ImpostorRefused", func(t *testing.T) { checkImpostorRefused(t, l, ul, imp) })
	t.Run("DeclaredMACPinned", func(t *testing.T) { checkDeclaredMACPinned(t, l, ul) })
	t.Run("AwaySwitchImpersonated", func(t *testing.T) { checkAwaySwitchImpersonated(t, l, ul, imp) })
}

// startHijackLab brings up the controller-mode example under a name of its
// own, with a controller serving metrics, and warms up the pairs the
// subtests ping. It returns the lab and its underlay namespace.
func startHijackLab(t *testing.T) (*labEnv, string) {
	dir := filepath.Join(workDir, ctlExample+"-hijack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := copyExample(t, ctlExample, dir, "topology.yaml", func(s string) string {
		return strings.Replace(s, "\nname: "+namePrefix+"three-hosts-ctl\n", "\nname: "+namePrefix+"hijack\n", 1)
	})
	l := startLab(t, ctlExample, file)
	ul := lab.UnderlayNS(l.opts)
	killControllers(t, ul)
	startControllerIn(t, t, ul, file, l.topo.Controller, l.controllerLog(), "--metrics-listen", metricsAddr)
	waitServed(t, l, ul, 30*time.Second)
	vm1, vm2, vm3 := l.vmByPort(t, "vm1"), l.vmByPort(t, "vm2"), l.vmByPort(t, "vm3")
	for _, p := range [][2]vm{{vm2, vm3}, {vm3, vm2}, {vm3, vm1}, {vm1, vm3}} {
		l.warmUp(t, p[0], p[1].ip, 15*time.Second)
	}
	return l, ul
}

// waitServed waits until every switch is connected and the controller in
// ns has reconciled every br-tun and br-int (waitReconciled, with what was
// missing in the failure message).
func waitServed(t *testing.T, l *labEnv, ns string, d time.Duration) {
	t.Helper()
	n := float64(len(l.managedHosts()))
	var m map[string]float64
	var err error
	var connected bool
	if !within(d, func() bool {
		m, err = fetchMetrics(ns, metricsAddr)
		connected = l.allConnected(t)
		return err == nil && connected &&
			m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-tun"}`] >= n &&
			m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-int"}`] >= n
	}) {
		t.Fatalf("switches not all served within %v: all connected %v, metrics error %v, reconciles br-tun %v br-int %v; the controller log ends with:\n%s",
			d, connected, err, m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-tun"}`],
			m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-int"}`], logTail(l.controllerLog(), 30))
	}
}

// Series of the controller's metrics the subtests read.
const (
	refusedClaimedSeries = `ovs_vxctl_controller_switches_refused_total{reason="claimed"}`
	displacedMetric      = "ovs_vxctl_controller_switches_displaced_total"
	conflictsSeries      = "ovs_vxctl_controller_declared_mac_conflicts_total"
)

// mustMetrics reads the metrics of the controller in ns.
func mustMetrics(t testing.TB, ns string) map[string]float64 {
	t.Helper()
	m, err := fetchMetrics(ns, metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sessionLines counts the controller's log lines saying msg about host's
// bridge ("switch connected", "switch disconnected", ...).
func sessionLines(t testing.TB, l *labEnv, msg, host, bridge string) int {
	t.Helper()
	return len(logLines(t, l.controllerLog(), msg, `"`+host+`"`, `"`+bridge+`"`))
}

// checkImpostorRefused: while vm2 pings vm3 and vm3 pings vm1 (150 each,
// every 0.1 s), an impostor claims host1's br-tun; no ping may be lost,
// the claim must be refused and counted, and host1's session never
// replaced.
func checkImpostorRefused(t *testing.T, l *labEnv, ul string, imp *impostor) {
	vm1, vm2, vm3 := l.vmByPort(t, "vm1"), l.vmByPort(t, "vm2"), l.vmByPort(t, "vm3")
	m0 := mustMetrics(t, ul)
	const host, bridge = "host1", "br-tun"
	connected0, disconnected0 := sessionLines(t, l, "switch connected", host, bridge), sessionLines(t, l, "switch disconnected", host, bridge)
	displacedLog0 := len(logLines(t, l.controllerLog(), "displaced"))

	const count = 150
	pings := map[string]*bgPing{}
	for _, p := range [][2]vm{{vm2, vm3}, {vm3, vm1}} {
		pings[p[0].name()+" -> "+p[1].name()] = startPing(t, lab.VMNS(l.opts, p[0].host, p[0].port), "-n", "-q", "-c", fmt.Sprint(count), "-i", "0.1", "-W", "1", p[1].ip)
	}
	time.Sleep(time.Second)
	claimed := time.Now()
	dpid := imp.claim(t, l, host)
	took := eventually(t, 15*time.Second, "the impostor's claim refused", func() bool {
		m, err := fetchMetrics(ul, metricsAddr)
		return err == nil && m[refusedClaimedSeries] > m0[refusedClaimedSeries]
	})
	t.Logf("impostor (datapath ID %s, from %s) refused %v after its br-tun was pointed at the controller", dpid, impostorIP, took.Round(time.Millisecond))
	imp.sendClaims(t, l, host, []vm{vm2, vm3}, 5)
	for name, p := range pings {
		s := parsePing(p.wait(t, 60*time.Second))
		if s.sent != count || s.received != s.sent {
			t.Errorf("ping %s during the hijack attempt: %d of %d answered", name, s.received, s.sent)
		} else {
			t.Logf("ping %s during the hijack attempt: %d of %d answered, rtt %s", name, s.received, s.sent, s.rtt)
		}
	}
	m1 := mustMetrics(t, ul)
	t.Logf("claims refused in %v: %v; displaced: %v", time.Since(claimed).Round(time.Second),
		m1[refusedClaimedSeries]-m0[refusedClaimedSeries], metricSum(m1, displacedMetric)-metricSum(m0, displacedMetric))
	checkSessionKept(t, l, host, bridge, dpid, connected0, disconnected0, displacedLog0)
	if d := metricSum(m1, displacedMetric) - metricSum(m0, displacedMetric); d != 0 {
		t.Errorf("switches_displaced_total rose by %v: a connected switch was replaced", d)
	}
	if d := m1[conflictsSeries] - m0[conflictsSeries]; d != 0 {
		t.Errorf("declared_mac_conflicts_total rose by %v: the impostor's frames reached the controller", d)
	}
	imp.checkNothingInstalled(t)
}

// checkSessionKept checks the controller log: host's bridge never
// disconnected or connected again, nothing was displaced, and the refusal
// names the datapath ID and the reason.
func checkSessionKept(t *testing.T, l *labEnv, host, bridge, dpid string, connected0, disconnected0, displaced0 int) {
	t.Helper()
	if n := sessionLines(t, l, "switch connected", host, bridge); n != connected0 {
		t.Errorf("%s %s connected %d more times during the attempt: its session was replaced", host, bridge, n-connected0)
	}
	if n := sessionLines(t, l, "switch disconnected", host, bridge); n != disconnected0 {
		t.Errorf("%s %s disconnected %d times during the attempt", host, bridge, n-disconnected0)
	}
	if n := len(logLines(t, l.controllerLog(), "displaced")); n != displaced0 {
		t.Errorf("%d lines about displaced switches in the controller log:\n%s", n-displaced0, logTail(l.controllerLog(), 20))
	}
	refusals := logLines(t, l.controllerLog(), "switch refused", dpid, "answers")
	if len(refusals) == 0 {
		t.Errorf("no refusal of datapath ID %s saying %s %s answers in the controller log:\n%s", dpid, host, bridge, logTail(l.controllerLog(), 20))
	} else {
		t.Logf("controller: %s", refusals[0])
	}
	if c, status := l.bridgeController(t, host, bridge); !c {
		t.Errorf("%s %s is not connected to the controller after the attempt: %s", host, bridge, status)
	}
}

// checkDeclaredMACPinned: while vm3 pings vm1 (40 pings, every 0.1 s), vm2
// sends frames (to vm3) with vm1's declared MAC as source. The controller
// must count the conflict and keep vm1 on host1: no ping lost, and the
// other hosts' table-20 entries for vm1 unchanged.
func checkDeclaredMACPinned(t *testing.T, l *labEnv, ul string) {
	vm1, vm2, vm3 := l.vmByPort(t, "vm1"), l.vmByPort(t, "vm2"), l.vmByPort(t, "vm3")
	vni := l.vniOf(t, vm1.network)
	want := map[string]string{}
	for _, h := range []string{vm2.host, vm3.host} {
		want[h] = unicastEntry(l.portTag(t, h, l.portOn(t, h)), vm1.mac, vni, l.tunnelOfport(t, h, l.vtepOf(vm1.host)))
		if _, ok := l.table20(t, h)[want[h]]; !ok {
			t.Fatalf("%s has no table-20 entry for vm1 before the test: want %s", h, want[h])
		}
	}
	m0 := mustMetrics(t, ul)
	const count = 40
	ping := startPing(t, lab.VMNS(l.opts, vm3.host, vm3.port), "-n", "-q", "-c", fmt.Sprint(count), "-i", "0.1", "-W", "1", vm1.ip)
	time.Sleep(500 * time.Millisecond)
	frame := spoofedFrame(mustMAC(t, l.vmMAC(t, vm3)), mustMAC(t, vm1.mac))
	for i := 0; i < 10; i++ {
		sendFramesFrom(t, lab.VMNS(l.opts, vm2.host, vm2.port), lab.VMIf, frame)
		time.Sleep(200 * time.Millisecond)
	}
	took := eventually(t, 10*time.Second, "a declared-MAC conflict counted", func() bool {
		m, err := fetchMetrics(ul, metricsAddr)
		return err == nil && m[conflictsSeries] > m0[conflictsSeries]
	})
	s := parsePing(ping.wait(t, 30*time.Second))
	if s.sent != count || s.received != s.sent {
		t.Errorf("ping %s -> %s while %s sent frames as vm1's MAC: %d of %d answered", vm3.name(), vm1.name(), vm2.name(), s.received, s.sent)
	} else {
		t.Logf("ping %s -> %s while %s sent frames as vm1's MAC: %d of %d answered, rtt %s", vm3.name(), vm1.name(), vm2.name(), s.received, s.sent, s.rtt)
	}
	m1 := mustMetrics(t, ul)
	t.Logf("declared_mac_conflicts_total rose by %v (first within %v of the last frame)", m1[conflictsSeries]-m0[conflictsSeries], took.Round(time.Millisecond))
	for h, entry := range want {
		if _, ok := l.table20(t, h)[entry]; !ok {
			t.Errorf("%s lost its table-20 entry for vm1 on host1 (%s): the declared MAC moved", h, entry)
		}
	}
	if lines := logLines(t, l.controllerLog(), vm1.mac, vm2.host); len(lines) > 0 {
		t.Logf("controller: %s", lines[0])
	}
	l.ping(t, vm3, vm1.ip, "(after vm2 sent frames as vm1's MAC)")
}

// portOn is the VM port on host (the example has one per host).
func (l *labEnv) portOn(t testing.TB, host string) string {
	t.Helper()
	for _, v := range l.vms() {
		if v.host == host {
			return v.port
		}
	}
	t.Fatalf("no VM on %s", host)
	return ""
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	mac, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// spoofedFrame is a unicast frame from src to dst of a local experimental
// EtherType (no stack answers it), padded to the minimum frame size.
func spoofedFrame(dst, src net.HardwareAddr) []byte {
	b := append(append([]byte(nil), dst...), src...)
	b = binary.BigEndian.AppendUint16(b, 0x88b5)
	return append(b, make([]byte, 60-len(b))...)
}

// The impostor: a second Open vSwitch in a namespace of its own, wired to
// the lab's underlay bridge with a veth pair, as another machine on the
// management network would be.
const (
	impostorIP   = "192.168.50.200"
	impostorIf   = "imp0"            // its end of the veth pair
	impostorUL   = "h-impostor"      // the underlay's end, on the underlay bridge
	impostorPort = topology.PatchTun // an internal port at ofport 1, named as br-int's patch port
)

// impostor is the second Open vSwitch.
type impostor struct {
	inst    *ovsrun.Instance
	claimed bool // its br-tun claims a host's datapath ID (claim)
}

// startImpostor starts the impostor's OVS and wires it to the underlay
// namespace ul; it checks the controller's address answers.
func startImpostor(t *testing.T, l *labEnv, ul string) *impostor {
	t.Helper()
	inst := ovsruntest.Start(t, "hj")
	ns, mtu := inst.NetNS, fmt.Sprint(lab.UnderlayMTU)
	mustRun(t, "ip", "-n", ns, "link", "add", impostorIf, "mtu", mtu, "type", "veth", "peer", "name", impostorUL, "mtu", mtu, "netns", ul)
	mustRun(t, "ip", "-n", ul, "link", "set", impostorUL, "master", lab.UnderlayBridge, "up")
	mustRun(t, "ip", "-n", ul, "route", "add", impostorIP+"/32", "dev", lab.UnderlayBridge)
	mustRun(t, "ip", "-n", ns, "addr", "add", impostorIP+"/24", "dev", impostorIf)
	mustRun(t, "ip", "-n", ns, "link", "set", impostorIf, "up")
	mustRun(t, "ip", "netns", "exec", ns, "ethtool", "-K", impostorIf, "tx", "off")
	ctl, err := netip.ParseAddrPort(strings.TrimPrefix(l.topo.Controller, "tcp:"))
	if err != nil {
		t.Fatalf("controller address %q: %v", l.topo.Controller, err)
	}
	mustRun(t, "ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "2", ctl.Addr().String())
	return &impostor{inst: inst}
}

// claim makes the impostor's br-tun a copy of host's as far as the
// controller can tell — its datapath ID, a port at ofport 1, the tunnel
// ports' names, the allocation advertisement read from host — and points
// it at the controller. It returns the datapath ID claimed, in hex.
func (imp *impostor) claim(t *testing.T, l *labEnv, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dpid := fmt.Sprintf("%016x", topology.BridgeDatapathID(l.topo.Name, host, topology.BridgeTun))
	args := []string{"add-br", "br-tun", "--", "set", "Bridge", "br-tun", "datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure",
		"other_config:datapath-id=" + dpid, "other_config:disable-in-band=true",
		"--", "add-port", "br-tun", impostorPort, "--", "set", "Interface", impostorPort, "type=internal", "ofport_request=1"}
	for _, p := range l.topo.Peers(l.topo.Host(host)) {
		name := topology.TunnelPortName(p.Name)
		args = append(args, "--", "add-port", "br-tun", name, "--", "set", "Interface", name, "type=internal")
	}
	if out, err := imp.inst.Vsctl(ctx, args...); err != nil {
		t.Fatalf("impostor: creating br-tun: %v: %s", err, out)
	}
	var adv []string
	for _, f := range lines(l.ofctl(t, host, "dump-flows", "br-tun", "table=250", "--no-stats")) {
		if strings.Contains(f, "table=250") {
			adv = append(adv, f)
		}
	}
	file := filepath.Join(imp.inst.Dir, "advertisement.flows")
	if err := os.WriteFile(file, []byte(strings.Join(adv, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.inst.Ofctl(ctx, "add-flows", "br-tun", file); err != nil || len(adv) == 0 {
		t.Fatalf("impostor: copying %s's advertisement (%d flows): %v: %s", host, len(adv), err, out)
	}
	out, _ := imp.inst.Ofctl(ctx, "dump-flows", "br-tun", "--no-stats")
	t.Logf("impostor br-tun, a copy of %s's: %s", host, strings.Join(lines(out), "; "))
	mustRun(t, "ip", "-n", imp.inst.NetNS, "link", "set", impostorPort, "up")
	if out, err := imp.inst.Vsctl(ctx, "set-controller", "br-tun", l.topo.Controller); err != nil {
		t.Fatalf("impostor: set-controller: %v: %s", err, out)
	}
	imp.claimed = true
	return dpid
}

// sendClaims sends, rounds times a second apart, a broadcast ARP request
// from each VM's MAC into the impostor's br-tun at ofport 1, tagged with
// host's local VLAN of the VM's network, as br-int would hand it over: a
// served br-tun reports each to the controller as a source on host.
func (imp *impostor) sendClaims(t *testing.T, l *labEnv, host string, vms []vm, rounds int) {
	t.Helper()
	var frames [][]byte
	for _, v := range vms {
		vlan := uint16(l.portTag(t, host, l.portOn(t, host)))
		frames = append(frames, openflowtest.ARPRequest(mustMAC(t, l.vmMAC(t, v)), netip.MustParseAddr(v.ip), netip.MustParseAddr(l.vmByPort(t, "vm1").ip), vlan))
	}
	rx0 := imp.portRx(t)
	for i := 0; i < rounds; i++ {
		sendFramesFrom(t, imp.inst.NetNS, impostorPort, frames...)
		time.Sleep(time.Second)
	}
	// The frames reached the bridge: nothing but the controller's refusal
	// stopped them from being reported.
	if rx := imp.portRx(t) - rx0; rx < rounds*len(frames) {
		t.Fatalf("the impostor's br-tun received %d frames at ofport 1, want at least %d", rx, rounds*len(frames))
	}
}

var rxPktsRE = regexp.MustCompile(`rx pkts=(\d+)`)

// portRx is how many packets the impostor's br-tun received at ofport 1.
func (imp *impostor) portRx(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := imp.inst.Ofctl(ctx, "dump-ports", "br-tun", "1")
	m := rxPktsRE.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("impostor: dump-ports br-tun 1: %v: %q", err, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// within reports whether cond came true within d (polling every 20 ms).
func within(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// controllerFlows are the impostor's br-tun flows but the advertisement it
// was given: what a controller installed.
func (imp *impostor) controllerFlows(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := imp.inst.Ofctl(ctx, "dump-flows", "br-tun", "--no-stats")
	if err != nil {
		t.Fatalf("impostor: dump-flows: %v", err)
	}
	var got []string
	for _, f := range lines(out) {
		if !strings.Contains(f, "table=250") {
			got = append(got, f)
		}
	}
	return got
}

// checkNothingInstalled checks the impostor's br-tun holds only the
// advertisement it was given: the controller sent it nothing.
func (imp *impostor) checkNothingInstalled(t *testing.T) {
	t.Helper()
	if got := imp.controllerFlows(t); len(got) > 0 {
		t.Errorf("the impostor's br-tun got %d flows from the controller:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// checkAwaySwitchImpersonated: host1's underlay link goes down, so its
// br-tun stops answering; at its next retry the impostor displaces it and
// gets host1's pipeline — what tcp: cannot prevent (README). Once the link
// is back, host1's switch is the newcomer refused while the impostor
// answers; when the impostor lets go, host1's switch is served again and
// vm3 reaches vm1.
func checkAwaySwitchImpersonated(t *testing.T, l *labEnv, ul string, imp *impostor) {
	const host, bridge = "host1", "br-tun"
	if !imp.claimed {
		t.Skip("the impostor claims no datapath ID (ImpostorRefused stopped early)")
	}
	m0 := mustMetrics(t, ul)
	link := underlayIf(host)
	t.Cleanup(func() { run("ip", "-n", ul, "link", "set", link, "up") })
	mustRun(t, "ip", "-n", ul, "link", "set", link, "down")
	took := eventually(t, 30*time.Second, host+"'s unanswering switch displaced", func() bool {
		m, err := fetchMetrics(ul, metricsAddr)
		return err == nil && metricSum(m, displacedMetric) > metricSum(m0, displacedMetric)
	})
	if !within(15*time.Second, func() bool { return len(imp.controllerFlows(t)) > 0 }) {
		t.Fatalf("the impostor got none of %s's flows within 15s; the controller log ends with:\n%s", host, logTail(l.controllerLog(), 30))
	}
	t.Logf("%s's underlay link down: its switch displaced by the impostor after %v; the impostor holds %d of %s's flows",
		host, took.Round(time.Millisecond), len(imp.controllerFlows(t)), host)

	refused0 := mustMetrics(t, ul)[refusedClaimedSeries]
	mustRun(t, "ip", "-n", ul, "link", "set", link, "up")
	took = eventually(t, 30*time.Second, host+"'s switch, back, refused while the impostor answers", func() bool {
		m, err := fetchMetrics(ul, metricsAddr)
		return err == nil && m[refusedClaimedSeries] > refused0
	})
	t.Logf("link up: %s's own switch refused %v later", host, took.Round(time.Millisecond))

	connected := sessionLines(t, l, "switch connected", host, bridge)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := imp.inst.Vsctl(ctx, "del-controller", "br-tun"); err != nil {
		t.Fatalf("impostor: del-controller: %v: %s", err, out)
	}
	took = eventually(t, 30*time.Second, host+"'s switch served again", func() bool { return sessionLines(t, l, "switch connected", host, bridge) > connected })
	t.Logf("impostor gone: %s's switch served again %v later", host, took.Round(time.Millisecond))
	vm1, vm3 := l.vmByPort(t, "vm1"), l.vmByPort(t, "vm3")
	l.warmUp(t, vm3, vm1.ip, 20*time.Second)
	l.ping(t, vm3, vm1.ip, "(after the impostor let go)")
}

// sendFramesFrom sends raw Ethernet frames out of dev in network namespace
// ns, through a packet socket opened there by a thread that then comes
// back. sendFrames leaves its thread in ns for good; should that thread be
// the main one, which Go never ends, the whole test process would be in ns
// as /proc/PID/ns/net shows it, and `lab down` ends every process of the
// lab's namespaces.
func sendFramesFrom(t testing.TB, ns, dev string, frames ...[]byte) {
	t.Helper()
	fd, ifindex, err := packetSocketIn(ns, dev)
	if err != nil {
		t.Fatalf("opening a packet socket on %s in %s: %v", dev, ns, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_ALL)}
	for _, fr := range frames {
		if err := unix.Sendto(fd, fr, 0, to); err != nil {
			t.Fatalf("sending a frame on %s in %s: %v", dev, ns, err)
		}
	}
}

// packetSocketIn opens an AF_PACKET socket in namespace ns (a socket stays
// in the namespace it was made in) and returns it with dev's index there.
func packetSocketIn(ns, dev string) (fd, ifindex int, err error) {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return -1, 0, err
	}
	defer home.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return -1, 0, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return -1, 0, fmt.Errorf("entering the namespace: %w", err)
	}
	fd, ifindex, err = func() (int, int, error) {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return -1, 0, err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		return fd, ifi.Index, err
	}()
	if rerr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); rerr != nil {
		// Still locked: Go ends this thread when the goroutine does.
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, 0, fmt.Errorf("coming back from the namespace: %w", rerr)
	}
	runtime.UnlockOSThread()
	return fd, ifindex, err
}
