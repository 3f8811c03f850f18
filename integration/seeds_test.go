package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The seeds' other systems: Linux-kernel VXLAN peers on port 8472 beside
// Open vSwitch hosts (examples/kernel-peer), in learn and in controller
// mode, and the first seed's routed gateways (examples/routed-gateways).

// TestKernelPeer runs examples/kernel-peer in learn mode: two OVS hosts and
// one Linux-kernel VTEP (managed: false, dst_port 8472).
func TestKernelPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	t.Parallel()
	l := upLab(t, "kernel-peer")
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("Port8472OnTheWire", func(t *testing.T) { checkKernelPeerPorts(t, l) })
	t.Run("LearnedEntries", func(t *testing.T) { checkLearned(t, l) })
	t.Run("BroadcastCopies", func(t *testing.T) { checkBroadcastCopies(t, l, "vm1", "vm3", "vm4") })
	t.Run("FlowsMatchCompiledAndGolden", func(t *testing.T) { checkFlowsMatch(t, l) })
	t.Run("ReapplyChangesNothing", func(t *testing.T) { checkReapply(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// TestKernelPeerController runs a copy of examples/kernel-peer in
// controller mode: the lab runs `ovs-vxctl controller`, which installs
// unicast entries for the declared MACs, the kernel VM's included.
func TestKernelPeerController(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	t.Parallel()
	l := upLabVariant(t, "kernel-peer", "-ctl", controllerMode)
	for _, h := range l.topo.ManagedHosts() {
		if h.Mode != topology.ModeController {
			t.Fatalf("the variant's host %s is in %s mode, want controller", h.Name, h.Mode)
		}
	}
	t.Run("ControllerEntriesForKernelMAC", func(t *testing.T) { checkControllerEntries(t, l, "vm3") })
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("Port8472OnTheWire", func(t *testing.T) { checkKernelPeerPorts(t, l) })
	t.Run("ARPForKernelVMStaysLocal", func(t *testing.T) { checkARPAnsweredLocally(t, l, "vm1", "vm3") })
	t.Run("BroadcastCopies", func(t *testing.T) { checkBroadcastCopies(t, l, "vm1", "vm3", "vm4") })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// TestRoutedGateways runs examples/routed-gateways: the first seed's two
// gateways, a server behind each, the transit network 1.1.1.0/24 on VNI 10
// over UDP 8472, static routes across it.
func TestRoutedGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	t.Parallel()
	l := upLab(t, "routed-gateways")
	t.Run("GatewaysForward", func(t *testing.T) { checkGatewaysForward(t, l) })
	t.Run("TwoRoutedHops", func(t *testing.T) { checkTwoRoutedHops(t, l) })
	t.Run("TransitOnTheWire", func(t *testing.T) { checkTransitOnTheWire(t, l) })
	t.Run("TCPAcrossTheTunnel", func(t *testing.T) { checkRoutedTCP(t, l) })
	t.Run("FlowsMatchCompiledAndGolden", func(t *testing.T) { checkFlowsMatch(t, l) })
	t.Run("ReapplyChangesNothing", func(t *testing.T) { checkReapply(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// checkKernelPeerPorts checks that every tunnel has its pair's port: in
// OVSDB (the OVS hosts' tunnel ports), in the kernel VTEP's vxlan device,
// and on the wire while the VMs ping each other: everything to or from the
// unmanaged host on UDP 8472 in both directions, OVS-to-OVS on the shared
// port.
func checkKernelPeerPorts(t *testing.T, l *labEnv) {
	var kern *topology.Host
	for _, h := range l.topo.Hosts {
		if !h.Managed {
			kern = h
		}
	}
	if kern == nil || !kern.DstPortSet {
		t.Fatalf("topology %s has no unmanaged host with its own dst_port", l.topo.Name)
	}
	kernPort := strconv.Itoa(int(kern.DstPort))

	// OVSDB: each managed host's tunnel to each peer has the pair's port.
	for _, h := range l.topo.ManagedHosts() {
		for _, peer := range l.topo.Peers(h) {
			out := l.vsctl(t, h.Name, "--bare", "--columns=name", "find", "Interface", "type=vxlan",
				fmt.Sprintf(`options:remote_ip="%s"`, peer.VTEP))
			if len(strings.Fields(out)) != 1 {
				t.Errorf("%s: want one VXLAN interface to %s (%s), got %q", h.Name, peer.Name, peer.VTEP, out)
				continue
			}
			got := strings.Trim(l.vsctl(t, h.Name, "get", "Interface", out, "options:dst_port"), `"`)
			want := strconv.Itoa(int(topology.PairDstPort(h, peer)))
			if got != want {
				t.Errorf("%s: tunnel %s to %s has dst_port %s, want %s", h.Name, out, peer.Name, got, want)
			} else {
				t.Logf("%s: tunnel %s to %s (%s) on dst_port %s", h.Name, out, peer.Name, peer.VTEP, got)
			}
		}
	}

	// The kernel VTEP's vxlan devices listen and send on its port.
	r := l.mustExec(t, kern.Name, "ip", "-d", "-j", "link", "show", "type", "vxlan")
	var devs []struct {
		IfName   string `json:"ifname"`
		LinkInfo struct {
			InfoData struct {
				ID   int `json:"id"`
				Port int `json:"port"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) == 0 {
		t.Fatalf("%s: no vxlan device: %v %s", kern.Name, err, r.stdout)
	}
	for _, d := range devs {
		if strconv.Itoa(d.LinkInfo.InfoData.Port) != kernPort {
			t.Errorf("%s: %s (VNI %d) on port %d, want %s", kern.Name, d.IfName, d.LinkInfo.InfoData.ID, d.LinkInfo.InfoData.Port, kernPort)
		}
	}

	// On the wire: capture the kernel host's and the first host's links
	// while every VM of the kernel VM's network pings across.
	host1 := l.topo.ManagedHosts()[0]
	ul := lab.UnderlayNS(l.opts)
	capKern := startCapture(t, ul, underlayIf(kern.Name), "udp", 2000, 60*time.Second)
	capHost1 := startCapture(t, ul, underlayIf(host1.Name), "udp", 2000, 60*time.Second)
	var kvm vm
	for _, v := range l.vms() {
		if v.host == kern.Name {
			kvm = v
			break
		}
	}
	for _, v := range l.vms() {
		if v.network != kvm.network || v == kvm {
			continue
		}
		l.warmUp(t, v, kvm.ip, 15*time.Second)
		l.ping(t, v, kvm.ip, "(kernel VM, captured)")
		l.warmUp(t, kvm, v.ip, 15*time.Second)
		l.ping(t, kvm, v.ip, "(from the kernel VM, captured)")
		for _, w := range l.vms() {
			if w.network == v.network && w != v && w != kvm && w.host != v.host && w.host != kern.Name {
				l.ping(t, v, w.ip, "(OVS to OVS, captured)")
			}
		}
	}
	fields := []string{"ip.src", "ip.dst", "udp.dstport", "vxlan.vni"}
	dir := func(src, dst string) string { return src + "->" + dst }
	hostOf := l.hostOfVTEP()
	check := func(pkts [][]string, link string, want map[string]string) {
		count := map[string]int{}
		for _, f := range pkts {
			src, dst, port, vni := first(f[0]), first(f[1]), f[2], f[3]
			d := dir(hostOf[src], hostOf[dst])
			wantPort, ok := want[d]
			if !ok {
				continue // the underlay bridge may flood others' packets here
			}
			if port != wantPort {
				t.Errorf("on %s: VXLAN %s (%s -> %s) on UDP %s, want %s: %q", link, d, src, dst, port, wantPort, f)
				continue
			}
			if vni == "" {
				t.Errorf("on %s: UDP %s packet %s not decoded as VXLAN: %q", link, port, d, f)
				continue
			}
			count[d]++
		}
		for d, port := range want {
			// Each ping run sends 3 requests one way and 3 replies back.
			if count[d] < 3 {
				t.Errorf("on %s: %d VXLAN packets %s on UDP %s, want at least 3 (counts: %v)", link, count[d], d, port, count)
			}
		}
		t.Logf("on %s: VXLAN packets by direction (UDP port): %s", link, describeCounts(count, want))
	}
	wantKern := map[string]string{}
	for _, h := range l.topo.ManagedHosts() {
		wantKern[dir(h.Name, kern.Name)] = kernPort
		wantKern[dir(kern.Name, h.Name)] = kernPort
	}
	check(capKern.decode(t, fields...), underlayIf(kern.Name), wantKern)
	wantHost1 := map[string]string{}
	for _, peer := range l.topo.Peers(host1) {
		p := strconv.Itoa(int(topology.PairDstPort(host1, peer)))
		wantHost1[dir(host1.Name, peer.Name)] = p
		wantHost1[dir(peer.Name, host1.Name)] = p
	}
	check(capHost1.decode(t, fields...), underlayIf(host1.Name), wantHost1)
}

func describeCounts(count map[string]int, ports map[string]string) string {
	var keys []string
	for k := range ports {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d (%s)", k, count[k], ports[k]))
	}
	return strings.Join(parts, ", ")
}

// broadcastResult is what one broadcast did on the underlay.
type broadcastResult struct {
	src      vm
	addr     string
	sent     map[copyKey]int // copies leaving the source host
	received map[string]int  // copies arriving on each other host's link
}

// checkBroadcastCopies sends, from each VM of ports, one broadcast frame (an
// ICMP echo to its subnet's broadcast address) and counts its VXLAN copies
// on every host's underlay link: the source host must send exactly one copy
// to each host of the network's flood list, on that pair's UDP port with
// the network's VNI, and none to any other host; each peer must receive
// exactly one, every other host none, and no host may re-flood it.
func checkBroadcastCopies(t *testing.T, l *labEnv, ports ...string) []broadcastResult {
	var results []broadcastResult
	for _, port := range ports {
		src := l.vmByPort(t, port)
		srcHost := l.topo.Host(src.host)
		n := l.network(t, src.network)
		p := l.port(t, src.host, src.port)
		addr := broadcastAddr(p.IP)
		vni := strconv.Itoa(int(n.VNI))
		want := map[copyKey]int{}
		peers := map[string]bool{}
		for _, peer := range l.topo.FloodPeers(srcHost, n) {
			want[copyKey{peer.VTEP.String(), strconv.Itoa(int(topology.PairDstPort(srcHost, peer))), vni}] = 1
			peers[peer.Name] = true
		}
		caps := map[string]*capture{}
		for _, h := range l.topo.Hosts {
			caps[h.Name] = startCapture(t, lab.UnderlayNS(l.opts), underlayIf(h.Name), "udp", 2000, 30*time.Second)
		}
		// No reply is expected (Linux ignores broadcast echoes): ping's
		// exit status says nothing.
		l.exec(src.name(), "ping", "-n", "-b", "-c", "1", "-W", "1", addr)
		time.Sleep(500 * time.Millisecond)
		res := broadcastResult{src: src, addr: addr, sent: map[copyKey]int{}, received: map[string]int{}}
		srcVTEP := srcHost.VTEP.String()
		for _, h := range l.topo.Hosts {
			pkts := caps[h.Name].decode(t, "ip.src", "ip.dst", "udp.dstport", "vxlan.vni", "eth.dst", "icmp.type")
			for _, f := range pkts {
				ipSrc, ipDst := strings.Split(f[0], ","), strings.Split(f[1], ",")
				// A copy: VXLAN around an ICMP echo request to the
				// broadcast address, sent to ff:ff:ff:ff:ff:ff.
				if f[3] == "" || len(ipDst) < 2 || ipDst[len(ipDst)-1] != addr || last(f[4]) != "ff:ff:ff:ff:ff:ff" || f[5] != "8" {
					continue
				}
				if ipSrc[0] != srcVTEP {
					t.Errorf("on %s: a copy of %s's broadcast sent by %s: re-flooded (%q)", underlayIf(h.Name), src.name(), ipSrc[0], f)
					continue
				}
				if h.Name == src.host {
					res.sent[copyKey{ipDst[0], f[2], f[3]}]++
				} else if ipDst[0] == h.VTEP.String() {
					res.received[h.Name]++
				}
			}
		}
		if !mapsEqual(res.sent, want) {
			t.Errorf("broadcast from %s (%s, VNI %s) to %s: copies sent on the underlay %v, want exactly one per flood peer %v",
				src.name(), src.network, vni, addr, res.sent, want)
		}
		for _, h := range l.topo.Hosts {
			if h.Name == src.host {
				continue
			}
			wantRecv := 0
			if peers[h.Name] {
				wantRecv = 1
			}
			if res.received[h.Name] != wantRecv {
				t.Errorf("broadcast from %s (%s): %s received %d copies, want %d", src.name(), src.network, h.Name, res.received[h.Name], wantRecv)
			}
		}
		total := 0
		var parts []string
		for k, c := range res.sent {
			total += c
			parts = append(parts, fmt.Sprintf("%s x%d", k, c))
		}
		slices.Sort(parts)
		var none []string
		for _, h := range l.topo.Hosts {
			if h.Name != src.host && !peers[h.Name] {
				none = append(none, fmt.Sprintf("%s %d", h.Name, res.received[h.Name]))
			}
		}
		t.Logf("broadcast from %s (%s, VNI %s, to %s): %d copies on the underlay [%s]; received by peers %v; by non-members: [%s]",
			src.name(), src.network, vni, addr, total, strings.Join(parts, ", "), res.received, strings.Join(none, ", "))
		results = append(results, res)
	}
	return results
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkControllerEntries waits for the controller's table 20 entry for the
// MAC of VM port on every managed host of its network (a unicast to that
// host's tunnel to the VM's host, cookie 0x767a…), before any traffic from
// the VM could have been learned.
func checkControllerEntries(t *testing.T, l *labEnv, port string) {
	v := l.vmByPort(t, port)
	n := l.network(t, v.network)
	owner := fmt.Sprintf("cookie=%#x", flows.CookieController>>48)
	for _, h := range l.topo.ManagedHosts() {
		if !n.HasPortOn(h) || h.Name == v.host {
			continue
		}
		ofport := l.tunnelOfport(t, h.Name, l.vtep(t, v.host))
		tunID := regexp.MustCompile(fmt.Sprintf(`(%#x->tun_id|%#x->NXM_NX_TUN_ID\[\])`, n.VNI, n.VNI))
		var table20 []string
		found := ""
		deadline := time.Now().Add(15 * time.Second)
		for found == "" && time.Now().Before(deadline) {
			table20 = nil
			for _, f := range l.dumpFlows(t, h.Name, "br-tun") {
				if !strings.Contains(f, "table=20,") {
					continue
				}
				table20 = append(table20, f)
				if strings.HasPrefix(f, owner) && strings.Contains(f, "dl_dst="+v.mac) &&
					tunID.MatchString(f) && regexp.MustCompile(`output:`+ofport+`\b`).MatchString(f) {
					found = f
				}
			}
			if found == "" {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if found == "" {
			b, _ := os.ReadFile(filepath.Join(l.report.Dir, lab.ControllerLog))
			conns := l.vsctl(t, h.Name, "--columns=target,is_connected", "list", "Controller")
			t.Errorf("%s: no controller entry (%s…) in table 20 for %s's MAC %s to tunnel ofport %s within 15s; table 20:\n%s\ncontrollers of %s:\n%s\ncontroller log (tail):\n%s",
				h.Name, owner, v.name(), v.mac, ofport, strings.Join(table20, "\n"), h.Name, conns, tail(b, 30))
			continue
		}
		t.Logf("%s: controller entry for %s: %s", h.Name, v.name(), found)
	}
}

// checkARPAnsweredLocally flushes src's neighbours and pings dst's VM
// while capturing src's host's underlay link: src must resolve dst's
// address to dst's declared MAC, and no ARP request for it may cross the
// underlay (the controller answers it on the host).
func checkARPAnsweredLocally(t *testing.T, l *labEnv, srcPort, dstPort string) {
	src, dst := l.vmByPort(t, srcPort), l.vmByPort(t, dstPort)
	c := startCapture(t, lab.UnderlayNS(l.opts), underlayIf(src.host), "udp", 2000, 30*time.Second)
	l.mustExec(t, src.name(), "ip", "neigh", "flush", "dev", lab.VMIf)
	l.ping(t, src, dst.ip, "(neighbours flushed)")
	neigh := l.mustExec(t, src.name(), "ip", "neigh", "show", dst.ip, "dev", lab.VMIf).stdout
	if !strings.Contains(strings.ToLower(neigh), "lladdr "+dst.mac) {
		t.Errorf("%s resolves %s to %q, want %s", src.name(), dst.ip, strings.TrimSpace(neigh), dst.mac)
	}
	requests, echoes := 0, 0
	for _, f := range c.decode(t, "arp.opcode", "arp.dst.proto_ipv4", "icmp.type", "vxlan.vni") {
		if f[0] == "1" && f[1] == dst.ip {
			requests++
		}
		if f[2] == "8" && f[3] != "" {
			echoes++
		}
	}
	if requests > 0 {
		t.Errorf("%d ARP requests for %s crossed the underlay from %s: the controller should answer them on the host", requests, dst.ip, src.host)
	}
	if echoes < 3 {
		t.Errorf("the capture on %s saw %d VXLAN echo requests, want 3: it would not have seen ARP either", underlayIf(src.host), echoes)
	}
	t.Logf("%s -> %s after a neighbour flush: %s; ARP requests on the underlay: %d, echo requests: %d", src.name(), dst.ip, strings.TrimSpace(neigh), requests, echoes)
}

// checkGatewaysForward checks that the lab turned IP forwarding on in the
// hosts that route (lab.Forwards), and that apply installed the routes.
func checkGatewaysForward(t *testing.T, l *labEnv) {
	for _, h := range l.topo.ManagedHosts() {
		if !lab.Forwards(l.topo, h) {
			t.Errorf("%s has routes or internal ports in several networks, but lab.Forwards says it does not route", h.Name)
		}
		if got := l.readSysctl(t, h.Name, "/proc/sys/net/ipv4/ip_forward"); got != "1" {
			t.Errorf("%s: net.ipv4.ip_forward = %s, want 1", h.Name, got)
		}
		routes := l.mustExec(t, h.Name, "ip", "-4", "route", "show").stdout
		for _, rt := range h.Routes {
			re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(rt.To.String()) + ` via ` + regexp.QuoteMeta(rt.Via.String()) + ` dev (\S+)`)
			m := re.FindStringSubmatch(routes)
			if m == nil {
				t.Errorf("%s: no route %s via %s:\n%s", h.Name, rt.To, rt.Via, routes)
				continue
			}
			t.Logf("%s: %s", h.Name, strings.TrimSpace(m[0]))
		}
	}
}

var (
	ttlRE      = regexp.MustCompile(`bytes from (\S+): icmp_seq=\d+ ttl=(\d+)`)
	exceededRE = regexp.MustCompile(`From (\S+) icmp_seq=\d+ Time to live exceeded`)
)

// serverPair returns the VMs of the routed example: one per gateway.
func serverPair(t *testing.T, l *labEnv) (vm, vm) {
	vms := l.vms()
	if len(vms) != 2 || vms[0].host == vms[1].host {
		t.Fatalf("topology %s: want two VMs on two hosts, have %v", l.topo.Name, vms)
	}
	return vms[0], vms[1]
}

// checkTwoRoutedHops pings from each server to the other, as the seed
// does: every reply must come back with ttl=62 (64 less the two gateways).
// TTL-limited probes then trace the path: TTL 1 expires at the local
// gateway's site address, TTL 2 at the far gateway's transit address, TTL 3
// reaches the server.
func checkTwoRoutedHops(t *testing.T, l *labEnv) {
	a, b := serverPair(t, l)
	for _, pair := range [][2]vm{{a, b}, {b, a}} {
		src, dst := pair[0], pair[1]
		l.warmUp(t, src, dst.ip, 20*time.Second)
		r := l.exec(src.name(), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", dst.ip)
		ms := ttlRE.FindAllStringSubmatch(r.stdout, -1)
		if r.code != 0 || len(ms) != 3 {
			t.Errorf("ping %s -> %s: want 3 replies: %v", src.name(), dst.ip, r)
		}
		for _, m := range ms {
			if m[1] != dst.ip || m[2] != "62" {
				t.Errorf("ping %s -> %s: reply %q, want from %s with ttl=62 (two routed hops)", src.name(), dst.ip, m[0], dst.ip)
			}
		}
		if len(ms) > 0 {
			t.Logf("ping %s -> %s: %s", src.name(), dst.ip, ms[0][0])
		}
		srcPort, dstPort := l.port(t, src.host, src.port), l.port(t, dst.host, dst.port)
		hops := []string{srcPort.Gateway.String(), l.nextHop(t, src.host, dstPort.IP.Masked().String()), dst.ip}
		var path []string
		for ttl, want := range hops {
			r := l.exec(src.name(), "ping", "-n", "-c", "1", "-W", "2", "-t", strconv.Itoa(ttl+1), dst.ip)
			got := ""
			if m := exceededRE.FindStringSubmatch(r.stdout); m != nil {
				got = m[1]
			} else if m := ttlRE.FindStringSubmatch(r.stdout); m != nil {
				got = m[1]
			}
			if got != want {
				t.Errorf("ping -t %d %s -> %s: answered by %q, want %s: %v", ttl+1, src.name(), dst.ip, got, want, r)
			}
			path = append(path, fmt.Sprintf("ttl %d: %s", ttl+1, got))
		}
		t.Logf("path %s -> %s: %s", src.name(), dst.ip, strings.Join(path, ", "))
	}
}

// nextHop is the via address of host's declared route to prefix: the far
// gateway's transit address.
func (l *labEnv) nextHop(t testing.TB, host, prefix string) string {
	t.Helper()
	for _, rt := range l.topo.Host(host).Routes {
		if rt.To.String() == prefix {
			return rt.Via.String()
		}
	}
	t.Fatalf("host %s has no route to %s", host, prefix)
	return ""
}

// checkTransitOnTheWire captures the first gateway's underlay link while
// the servers ping each other, and checks what the seed's captures show:
// VXLAN on UDP 8472 with VNI 10 between the VTEPs, the servers' addresses
// unchanged inside, the inner MACs those of the gateways' transit ports, the
// inner TTL decremented once (by the sending gateway); and nothing of the
// site networks on the underlay.
func checkTransitOnTheWire(t *testing.T, l *labEnv) {
	a, b := serverPair(t, l)
	transit := l.network(t, "transit")
	gw := map[string]struct{ mac, vtep string }{}
	for _, p := range transit.Ports {
		gw[p.Host.Name] = struct{ mac, vtep string }{l.linkMAC(t, p.Host.Name, p.Name), p.Host.VTEP.String()}
	}
	port := strconv.Itoa(int(topology.PairDstPort(l.topo.Host(a.host), l.topo.Host(b.host))))
	c := startCapture(t, lab.UnderlayNS(l.opts), underlayIf(a.host), "udp", 2000, 60*time.Second)
	l.ping(t, a, b.ip, "(captured)")
	l.ping(t, b, a.ip, "(captured)")
	pkts := c.decode(t, "ip.src", "ip.dst", "udp.dstport", "vxlan.vni", "eth.src", "eth.dst", "ip.ttl", "icmp.type")
	vnis := map[string]int{}
	echoes := 0
	for _, f := range pkts {
		if f[3] == "" {
			t.Errorf("non-VXLAN UDP on the underlay: %q", f)
			continue
		}
		vnis[f[3]]++
		if f[3] != strconv.Itoa(int(transit.VNI)) {
			t.Errorf("VNI %s on the underlay: only the transit network (VNI %d) may leave a gateway: %q", f[3], transit.VNI, f)
		}
		if f[2] != port {
			t.Errorf("VXLAN on UDP %s, want %s: %q", f[2], port, f)
		}
		ips, macs, ttls := strings.Split(f[0]+","+f[1], ","), strings.Split(f[4]+","+f[5], ","), strings.Split(f[6], ",")
		if f[7] != "8" && f[7] != "0" || len(ips) != 4 || len(macs) != 4 || len(ttls) != 2 {
			continue // not an echo (ARP, IPv6 neighbour discovery)
		}
		// ips: outer src, inner src, outer dst, inner dst.
		outerSrc, innerSrc, outerDst, innerDst := ips[0], ips[1], ips[2], ips[3]
		var from, to string
		switch {
		case innerSrc == a.ip && innerDst == b.ip:
			from, to = a.host, b.host
		case innerSrc == b.ip && innerDst == a.ip:
			from, to = b.host, a.host
		default:
			continue
		}
		echoes++
		if outerSrc != gw[from].vtep || outerDst != gw[to].vtep {
			t.Errorf("echo %s -> %s carried from VTEP %s to %s, want %s to %s", innerSrc, innerDst, outerSrc, outerDst, gw[from].vtep, gw[to].vtep)
		}
		if macs[1] != gw[from].mac || macs[3] != gw[to].mac {
			t.Errorf("echo %s -> %s: inner MACs %s -> %s, want the transit ports' %s -> %s", innerSrc, innerDst, macs[1], macs[3], gw[from].mac, gw[to].mac)
		}
		if ttls[1] != "63" {
			t.Errorf("echo %s -> %s: inner TTL %s on the underlay, want 63 (one routed hop before the tunnel)", innerSrc, innerDst, ttls[1])
		}
	}
	// Two ping runs: 3 requests and 3 replies each way.
	if echoes < 12 {
		t.Errorf("%d routed echo packets captured on %s, want 12 (%d packets, VNIs %v)", echoes, underlayIf(a.host), len(pkts), vnis)
	}
	t.Logf("underlay capture on %s: %d VXLAN packets on UDP %s, by VNI %v; %d routed echoes, inner MACs %s <-> %s, inner TTL 63",
		underlayIf(a.host), len(pkts), port, vnis, echoes, gw[a.host].mac, gw[b.host].mac)
}

// checkRoutedTCP runs one second of iperf3 from one server to the other:
// TCP through the gateways' internal ports (tap devices of the userspace
// datapath) and the tunnel.
func checkRoutedTCP(t *testing.T, l *labEnv) {
	a, b := serverPair(t, l)
	srv := l.exec(b.name(), "iperf3", "-s", "-1", "-D", "-p", "5201")
	if srv.code != 0 {
		t.Fatalf("starting iperf3 -s in %s: %v", b.name(), srv)
	}
	var r result
	for i := 0; i < 20; i++ {
		if r = l.exec(a.name(), "iperf3", "-c", b.ip, "-p", "5201", "-t", "1", "-J"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Connection refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.code != 0 {
		t.Fatalf("iperf3 %s -> %s: %v", a.name(), b.ip, r)
	}
	var rep struct {
		End struct {
			SumReceived struct {
				Bytes         int64   `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("iperf3 -J output: %v", err)
	}
	if rep.End.SumReceived.Bytes < 1<<20 {
		t.Errorf("iperf3 %s -> %s: only %d bytes received in 1 s", a.name(), b.ip, rep.End.SumReceived.Bytes)
	}
	t.Logf("TCP %s -> %s across both gateways: %.0f Mbit/s, %d bytes, %d retransmits",
		a.name(), b.ip, rep.End.SumReceived.BitsPerSecond/1e6, rep.End.SumReceived.Bytes, rep.End.SumSent.Retransmits)
}
