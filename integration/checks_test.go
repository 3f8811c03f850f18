package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// Checks shared by the tests of every example.

// checkAllPairsPing pings, in both directions, between every two VMs of the
// same network, after a warm-up, and logs the RTTs.
func checkAllPairsPing(t *testing.T, l *labEnv) {
	vms := l.vms()
	pairs := 0
	for _, a := range vms {
		for _, b := range vms {
			if a == b || a.network != b.network || a.ip == "" || b.ip == "" {
				continue
			}
			l.warmUp(t, a, b.ip, 15*time.Second)
			l.ping(t, a, b.ip, "("+b.name()+", "+b.network+")")
			pairs++
		}
	}
	if pairs == 0 {
		t.Fatalf("topology %s has no two VMs in one network to ping between", l.topo.Name)
	}
}

// underlayIf is the underlay namespace's end of host's veth: "h-<host>"
// (lab/names.go, ulHostIf). Every tunnelled packet to or from the host
// crosses it.
func underlayIf(host string) string { return "h-" + host }

// checkVXLANOnUnderlay captures the underlay traffic of the first host while
// its VMs ping every VM of their network on other hosts, and checks that each
// packet is VXLAN on UDP port 4789 whose VNI is that of the inner frame's
// network, that every expected VNI appears, and that packets went to every
// peer VTEP pinged.
func checkVXLANOnUnderlay(t *testing.T, l *labEnv) {
	host := l.topo.Hosts[0].Name
	vniOfNet := map[string]uint32{}
	for _, n := range l.topo.Networks {
		vniOfNet[n.Name] = n.VNI
	}
	vniOfMAC := map[string]uint32{}
	for _, v := range l.vms() {
		vniOfMAC[v.mac] = vniOfNet[v.network]
	}
	vtepOf := map[string]string{}
	for _, h := range l.topo.Hosts {
		vtepOf[h.Name] = h.VTEP.String()
	}
	type flowKey struct {
		vni uint32
		dst string
	}
	want := map[flowKey]bool{}
	var pings []func()
	for _, a := range l.vms() {
		if a.host != host {
			continue
		}
		for _, b := range l.vms() {
			if b.host == host || a.network != b.network || b.ip == "" {
				continue
			}
			want[flowKey{vniOfNet[a.network], vtepOf[b.host]}] = true
			pings = append(pings, func() { l.ping(t, a, b.ip, "(captured on the underlay)") })
		}
	}
	if len(pings) == 0 {
		t.Fatalf("host %s has no VM with a peer on another host", host)
	}
	// Only UDP, but any port: the assertion, not the filter, checks 4789.
	c := startCapture(t, lab.UnderlayNS(l.opts), underlayIf(host), "udp", 400, 30*time.Second)
	for _, p := range pings {
		p()
	}
	pkts := c.decode(t, "udp.dstport", "vxlan.vni", "ip.src", "ip.dst", "eth.src")
	seen := map[flowKey]int{}
	vnis := map[uint32]int{}
	for _, f := range pkts {
		if len(f) < 5 {
			t.Errorf("short tshark line %q", f)
			continue
		}
		dstport, vniText, ipDst := first(f[0]), f[1], first(f[3])
		if dstport != "4789" {
			t.Errorf("UDP packet to port %s on the underlay (want 4789): %q", dstport, f)
			continue
		}
		var vni uint32
		if _, err := fmt.Sscan(vniText, &vni); err != nil {
			t.Errorf("UDP packet to port 4789 not decoded as VXLAN (no vxlan.vni): %q", f)
			continue
		}
		inner := last(f[4])
		if want, ok := vniOfMAC[inner]; ok && want != vni {
			t.Errorf("frame from %s (VNI %d) carried with VNI %d: %q", inner, want, vni, f)
		}
		vnis[vni]++
		seen[flowKey{vni, ipDst}]++
	}
	// Each ping run sends 3 echo requests from the host's VM to the VTEP.
	for k := range want {
		if seen[k] < 3 {
			t.Errorf("%d VXLAN packets with VNI %d to VTEP %s captured on %s, want at least 3 (%d packets captured: %v)", seen[k], k.vni, k.dst, underlayIf(host), len(pkts), seen)
		}
	}
	t.Logf("underlay capture on %s: %d VXLAN packets, by VNI %v", underlayIf(host), len(pkts), vnis)
}

// first and last return the first and last of tshark's comma-joined
// occurrences (outer and inner header of a VXLAN packet).
func first(s string) string { x, _, _ := strings.Cut(s, ","); return x }
func last(s string) string  { return s[strings.LastIndex(s, ",")+1:] }

// golden reads examples/<example>/golden/<host>.<bridge>.flows.
func (l *labEnv) golden(t testing.TB, host, bridge string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples", l.example, "golden", host+"."+bridge+".flows"))
	if err != nil {
		t.Fatal(err)
	}
	return lines(string(b))
}

// checkFlowsMatch compares, on every host and for br-tun and br-int, the
// owned flows installed (cookie 0x7678…) with `ovs-vxctl flows` and the
// golden file, and requires `ovs-vxctl diff-flows` to exit 0.
func checkFlowsMatch(t *testing.T, l *labEnv) {
	for _, host := range l.managedHosts() {
		for _, br := range []string{"br-tun", "br-int"} {
			installed := sorted(withCookiePrefix(l.dumpFlows(t, host, br), "0x7678"))
			r := l.hostVx(host, l.file, "flows", "--bridge", br)
			if r.code != 0 {
				t.Errorf("%s: flows --bridge %s: %v", host, br, r)
				continue
			}
			compiled := sorted(lines(r.stdout))
			gold := sorted(l.golden(t, host, br))
			if len(installed) == 0 {
				t.Errorf("%s %s: no owned flow installed", host, br)
			}
			if !equalLines(installed, compiled) {
				t.Errorf("%s %s: installed owned flows (-) differ from `ovs-vxctl flows` (+):\n%s", host, br, diffLines(installed, compiled))
			}
			if !equalLines(installed, gold) {
				t.Errorf("%s %s: installed owned flows (-) differ from golden/%s.%s.flows (+):\n%s", host, br, host, br, diffLines(installed, gold))
			}
		}
		if r := l.hostVx(host, l.file, "diff-flows"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("%s: diff-flows on a freshly applied host: %v", host, r)
		}
	}
}

// checkReapply re-applies the unchanged file on every host: "nothing to
// change", exit 0, OVSDB and flows identical before and after; the same for
// --dry-run.
func checkReapply(t *testing.T, l *labEnv) {
	for _, host := range l.managedHosts() {
		before := l.snapshot(t, host)
		r := l.hostVx(host, l.file, "apply")
		if r.code != 0 || !strings.Contains(r.stdout, "nothing to change") {
			t.Errorf("%s: re-apply of the unchanged file: want exit 0 and \"nothing to change\": %v", host, r)
		}
		t.Logf("%s: re-apply (nothing to change) took %v wall: %s", host, r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
		sameState(t, host+": re-apply", before, l.snapshot(t, host))
		r = l.hostVx(host, l.file, "apply", "--dry-run")
		if r.code != 0 || !strings.Contains(r.stdout, "nothing to change") {
			t.Errorf("%s: apply --dry-run of the unchanged file: want exit 0 and \"nothing to change\": %v", host, r)
		}
		sameState(t, host+": apply --dry-run", before, l.snapshot(t, host))
	}
}

// checkLabDown runs `lab down` and checks that nothing of the lab is left:
// namespaces, OVS processes running from its directory, its directory, and
// links in the root namespace with names the lab uses.
func checkLabDown(t *testing.T, l *labEnv) {
	// Only names no other test on the machine uses: OVS instances that
	// other packages' tests run in the root namespace create br-int, br-tun
	// and ovs-netdev taps there at any time.
	candidates := map[string]bool{lab.UnderlayBridge: true, lab.UnderlayIf: true}
	for _, h := range l.topo.Hosts {
		candidates[underlayIf(h.Name)] = true
	}
	for _, v := range l.vms() {
		candidates[v.port] = true
	}
	newLinks := func() []string {
		was := map[string]bool{}
		for _, n := range l.rootLinks {
			was[n] = true
		}
		var out []string
		for _, n := range rootLinks(t) {
			if !was[n] && candidates[n] {
				out = append(out, n)
			}
		}
		return out
	}
	if leaked := newLinks(); len(leaked) > 0 {
		t.Errorf("while the lab is up, the root namespace has new links named as the lab's: %v", leaked)
	}
	if procs := processesWith(l.report.Dir + "/"); len(procs) == 0 {
		t.Errorf("no process runs from the lab's directory %s before lab down: the check below would prove nothing", l.report.Dir)
	}
	r := l.vx("lab", "down", "-f", l.file)
	if r.code != 0 {
		t.Fatalf("lab down: %v", r)
	}
	t.Logf("lab down took %v wall: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
	if nss := l.labNamespaces(t); len(nss) > 0 {
		t.Errorf("namespaces left after lab down: %v", nss)
	}
	if procs := processesWith(l.report.Dir + "/"); len(procs) > 0 {
		t.Errorf("processes left running from %s after lab down:\n%s", l.report.Dir, strings.Join(procs, "\n"))
	}
	if _, err := os.Stat(l.report.Dir); err == nil {
		t.Errorf("lab directory %s left after lab down", l.report.Dir)
	}
	if leaked := newLinks(); len(leaked) > 0 {
		t.Errorf("links left in the root namespace after lab down: %v", leaked)
	}
	if r := l.vx("lab", "status", "-f", l.file, "--format", "json"); r.code != 0 {
		t.Logf("lab status after down exits %d: %s", r.code, r.stderr)
	}
}
