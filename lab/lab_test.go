package lab

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// needRoot skips tests that need root, iproute2 and Open vSwitch.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-OVS test: skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "bridge", "ethtool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// labDir is a short state root under /tmp (socket paths must stay short).
func labDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "labt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "s")
}

// mustRun runs argv and fails the test with its output on error.
func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// upForTest brings the lab up and registers a Down for the end of the test
// in case an assertion stops it early.
func upForTest(t *testing.T, o Options) *Report {
	t.Helper()
	// A lab left by an aborted earlier run would make Up refuse.
	if err := Down(context.Background(), o); err != nil {
		t.Fatalf("clearing an old lab: %v", err)
	}
	t.Cleanup(func() { Down(context.Background(), o) })
	rep, err := Up(context.Background(), o)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("\n%s", rep)
	return rep
}

// assertGone checks that nothing of the lab is left: namespaces, daemons,
// state, and no stray links in the root namespace.
func assertGone(t *testing.T, o Options, rootLinksBefore []string) {
	t.Helper()
	out := mustRun(t, "ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && isLabNS(o.Topology.Name, f[0]) {
			t.Errorf("namespace %s left behind", f[0])
		}
	}
	if pids := labDaemons(o.dir()); len(pids) > 0 {
		t.Errorf("OVS daemons of the lab still run: %v", pids)
	}
	if _, err := os.Stat(o.dir()); err == nil {
		t.Errorf("state directory %s left behind", o.dir())
	}
	for _, l := range rootLinks(t) {
		if !slices.Contains(rootLinksBefore, l) {
			t.Errorf("link %s appeared in the root namespace", l)
		}
	}
}

func rootLinks(t *testing.T) []string {
	t.Helper()
	var links []struct {
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "ip", "-j", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.IfName)
	}
	return names
}

// labTopo is three managed hosts with VTEPs in three different subnets, a
// Linux-kernel peer on dst_port 8472, a port name used on two hosts and an
// internal port (which the lab leaves to apply).
func labTopo(t *testing.T) *topology.Topology {
	return newTopo("labt").
		host("h1", "10.250.1.1", true, 0).
		host("h2", "10.250.2.1", true, 0).
		host("h3", "10.251.0.3", true, 0).
		host("k1", "10.252.0.4", false, 8472).
		network("net-a", 100).
		port(t, "h1", "vm1", topology.PortVM, "52:54:00:00:01:01", "10.1.1.11/24", "10.1.1.1").
		port(t, "h2", "vm2", topology.PortVM, "", "10.1.1.12/24", "").
		port(t, "h2", "gw-a", topology.PortInternal, "", "10.1.1.1/24", "").
		port(t, "h3", "vm3", topology.PortVM, "52:54:00:00:01:03", "10.1.1.13/24", "").
		port(t, "k1", "kvm1", topology.PortVM, "52:54:00:00:01:04", "10.1.1.14/24", "").
		network("net-b", 200).
		port(t, "h2", "web", topology.PortVM, "52:54:00:00:02:02", "10.2.2.12/24", "").
		port(t, "h3", "web", topology.PortVM, "52:54:00:00:02:03", "10.2.2.13/24", "").
		network("net-c", 300).
		port(t, "h1", "vm4", topology.PortVM, "52:54:00:00:03:01", "10.3.3.11/24", "").
		port(t, "k1", "kvm4", topology.PortVM, "52:54:00:00:03:04", "10.3.3.14/24", "").
		t
}

func TestLabUpDown(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	before := rootLinks(t)
	topo := labTopo(t)
	o := Options{Topology: topo, Dir: labDir(t), Log: zaptest.NewLogger(t), SkipApply: true}
	upForTest(t, o)

	st, err := Status(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", st)
	if !st.Complete() || len(st.Stray) > 0 {
		t.Errorf("status after up is not complete:\n%s", st)
	}

	for _, h := range topo.Hosts {
		ns := HostNS(o, h.Name)
		if !nsExists(ns) {
			t.Fatalf("namespace %s missing", ns)
		}
		if h.Managed {
			inst := HostInstance(o, h.Name)
			if !inst.Running("ovsdb-server") || !inst.Running("ovs-vswitchd") {
				t.Errorf("%s: daemons not running", h.Name)
			}
			ext, err := inst.Vsctl(ctx, "get", "Bridge", PhyBridge, "external_ids:"+MarkKey, "datapath_type")
			if err != nil || strings.Fields(ext)[0] != `labt` || strings.Fields(ext)[1] != "netdev" {
				t.Errorf("%s: br-phy mark/datapath = %q, %v", h.Name, ext, err)
			}
			ports, _ := inst.Vsctl(ctx, "list-ports", PhyBridge)
			if strings.TrimSpace(ports) != UnderlayIf {
				t.Errorf("%s: br-phy ports = %q", h.Name, ports)
			}
		}
		dev := UnderlayIf
		if h.Managed {
			dev = PhyBridge
		}
		// 10.250.1.1, 10.250.2.1, 10.251.0.3 and 10.252.0.4 share 13 bits.
		addrs := mustRun(t, "ip", "-n", ns, "-br", "-4", "addr", "show", "dev", dev)
		if !strings.Contains(addrs, h.VTEP.String()+"/13") {
			t.Errorf("%s: %s lacks the VTEP %s/13: %s", h.Name, dev, h.VTEP, addrs)
		}
		if off := mustRun(t, "ip", "netns", "exec", ns, "ethtool", "-k", UnderlayIf); !strings.Contains(off, "tx-checksumming: off") {
			t.Errorf("%s: tx checksum offload still on on %s", h.Name, UnderlayIf)
		}
	}

	// Every VTEP reaches every other across the underlay.
	for _, a := range topo.Hosts {
		for _, b := range topo.Hosts {
			if a != b {
				mustRun(t, "ip", "netns", "exec", HostNS(o, a.Name), "ping", "-c1", "-W2", b.VTEP.String())
			}
		}
	}
	// ... and each managed host's OVS has learned tunnel routes to the others.
	for _, h := range topo.ManagedHosts() {
		out, err := HostInstance(o, h.Name).Appctl(ctx, "ovs/route/show")
		if err != nil {
			t.Fatal(err)
		}
		for _, peer := range topo.Hosts {
			if peer != h && !strings.Contains(out, peer.VTEP.String()+"/32 dev br-phy") {
				t.Errorf("%s: ovs/route/show lacks %s:\n%s", h.Name, peer.VTEP, out)
			}
		}
	}

	// VM namespaces: eth0 with MAC, address, MTU, offload off; host side named after the port.
	for _, n := range topo.Networks {
		for _, p := range n.Ports {
			if p.Type != topology.PortVM {
				if nsExists(VMNS(o, p.Host.Name, p.Name)) {
					t.Errorf("internal port %s got a VM namespace", p.Name)
				}
				continue
			}
			ns := VMNS(o, p.Host.Name, p.Name)
			var links []ipLink
			if err := json.Unmarshal([]byte(mustRun(t, "ip", "-n", ns, "-j", "addr", "show", "dev", "eth0")), &links); err != nil || len(links) != 1 {
				t.Fatalf("%s: %v", ns, err)
			}
			l := links[0]
			if want := PortMAC(topo.Name, p).String(); l.Address != want {
				t.Errorf("%s: MAC %s, want %s", ns, l.Address, want)
			}
			if l.MTU != VMMTUOf(p) || !slices.Contains(l.Flags, "UP") {
				t.Errorf("%s: mtu %d flags %v, want mtu %d", ns, l.MTU, l.Flags, VMMTUOf(p))
			}
			if !strings.Contains(mustRun(t, "ip", "-n", ns, "-br", "addr", "show", "dev", "eth0"), p.IP.String()) {
				t.Errorf("%s: address %s missing", ns, p.IP)
			}
			if p.Gateway.IsValid() && !strings.Contains(mustRun(t, "ip", "-n", ns, "route", "show", "default"), "via "+p.Gateway.String()) {
				t.Errorf("%s: no default route via %s", ns, p.Gateway)
			}
			if off := mustRun(t, "ip", "netns", "exec", ns, "ethtool", "-k", "eth0"); !strings.Contains(off, "tx-checksumming: off") {
				t.Errorf("%s: tx checksum offload still on", ns)
			}
			if up := mustRun(t, "ip", "-n", HostNS(o, p.Host.Name), "-br", "link", "show", "dev", p.Name); !strings.Contains(up, "UP") {
				t.Errorf("%s: host side %s not up: %s", p.Host.Name, p.Name, up)
			}
		}
	}

	// Command: hosts get their OVS environment; ports resolve, ambiguity is refused.
	cmd, err := Command(ctx, o, "h1", []string{"ovs-vsctl", "list-br"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != PhyBridge {
		t.Errorf("lab exec h1 ovs-vsctl list-br = %q, %v", out, err)
	}
	cmd, err = Command(ctx, o, "h3/web", []string{"ip", "-br", "link", "show", "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "52:54:00:00:02:03") {
		t.Errorf("lab exec h3/web = %q, %v", out, err)
	}
	if _, err := Command(ctx, o, "web", []string{"true"}); err == nil || !strings.Contains(err.Error(), "h2/web, h3/web") {
		t.Errorf("ambiguous port: %v", err)
	}

	// The lab carries userspace VXLAN: a hand-made br-int on h1 tunnels to
	// the kernel peer k1 (dst_port 8472, VNI 300), and h2 and h3 tunnel to
	// each other (VNI 200); pings and a TCP transfer cross them.
	tunnel := func(host, port, peer string, vni, dstPort int) {
		inst := HostInstance(o, host)
		if _, err := inst.Vsctl(ctx, "--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
			"--", "add-port", "br-int", port,
			"--", "add-port", "br-int", "tun-"+peer, "--", "set", "Interface", "tun-"+peer, "type=vxlan",
			"options:remote_ip="+topo.Host(peer).VTEP.String(), "options:key="+itoa(vni), "options:dst_port="+itoa(dstPort)); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
	}
	tunnel("h1", "vm4", "k1", 300, 8472)
	tunnel("h2", "web", "h3", 200, 4789)
	tunnel("h3", "web", "h2", 200, 4789)
	mustRun(t, "ip", "netns", "exec", VMNS(o, "h1", "vm4"), "ping", "-c2", "-W3", "10.3.3.14")
	mustRun(t, "ip", "netns", "exec", VMNS(o, "k1", "kvm4"), "ping", "-c2", "-W3", "10.3.3.11")
	mustRun(t, "ip", "netns", "exec", VMNS(o, "h2", "web"), "ping", "-c2", "-W3", "10.2.2.13")
	if _, err := exec.LookPath("iperf3"); err == nil {
		srv := exec.Command("ip", "netns", "exec", VMNS(o, "h3", "web"), "iperf3", "-s", "-1", "-B", "10.2.2.13")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer srv.Process.Kill()
		var out string
		for i := 0; i < 50; i++ { // until the server listens
			o, err := exec.Command("ip", "netns", "exec", VMNS(o, "h2", "web"), "iperf3", "-c", "10.2.2.13", "-n", "4M", "--connect-timeout", "2000").CombinedOutput()
			if out = string(o); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(out, "receiver") {
			t.Errorf("TCP across the tunnel failed:\n%s", out)
		}
		srv.Wait()
	}

	// A process left in a VM namespace must not keep the lab alive.
	sleeper, err := Command(ctx, o, "vm1", []string{"sleep", "300"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	sleepDone := make(chan error, 1)
	go func() { sleepDone <- sleeper.Wait() }()

	// Up again refuses and leaves the running lab alone.
	if _, err := Up(ctx, o); err == nil || !strings.Contains(err.Error(), "lab down") {
		t.Errorf("second up: %v", err)
	}
	if st, _ := Status(ctx, o); !st.Complete() {
		t.Errorf("second up damaged the lab:\n%s", st)
	}

	start := time.Now()
	if err := Down(ctx, o); err != nil {
		t.Fatalf("lab down: %v", err)
	}
	t.Logf("lab down took %v", time.Since(start))
	assertGone(t, o, before)
	select {
	case <-sleepDone:
	case <-time.After(5 * time.Second):
		t.Errorf("the process in a VM namespace survived lab down")
		sleeper.Process.Kill()
	}
	if st, _ := Status(ctx, o); !st.Empty() {
		t.Errorf("status after down is not empty:\n%s", st)
	}
	// Down is idempotent.
	if err := Down(ctx, o); err != nil {
		t.Errorf("second down: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestKernelPeers builds two Linux-kernel VTEPs and checks their devices,
// head-end replication entries and the overlay between them.
func TestKernelPeers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	before := rootLinks(t)
	topo := newTopo("labk").
		host("k1", "10.253.0.1", false, 8472).
		host("k2", "10.253.0.2", false, 8472).
		network("n7", 7).
		port(t, "k1", "a", topology.PortVM, "02:00:00:00:07:01", "10.7.0.1/24", "10.7.0.254").
		port(t, "k2", "b", topology.PortVM, "02:00:00:00:07:02", "10.7.0.2/24", "").
		port(t, "k2", "gw7", topology.PortInternal, "02:00:00:00:07:fe", "10.7.0.254/24", "").
		network("n9", 16777215).
		port(t, "k1", "c", topology.PortVM, "02:00:00:00:09:01", "10.9.0.1/24", "").
		t
	o := Options{Topology: topo, Dir: labDir(t), Log: zaptest.NewLogger(t), SkipApply: true}
	upForTest(t, o)

	type vxInfo struct {
		LinkInfo struct {
			InfoKind string `json:"info_kind"`
			InfoData struct {
				ID       int    `json:"id"`
				Port     int    `json:"port"`
				Local    string `json:"local"`
				Learning bool   `json:"learning"`
			} `json:"info_data"`
		} `json:"linkinfo"`
		Master string `json:"master"`
	}
	checkVX := func(host, dev string, vni, port int, local, master string) {
		var info []vxInfo
		out := mustRun(t, "ip", "-n", HostNS(o, host), "-d", "-j", "link", "show", "dev", dev)
		if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
			t.Fatalf("%s %s: %v: %s", host, dev, err, out)
		}
		d := info[0].LinkInfo.InfoData
		if info[0].LinkInfo.InfoKind != "vxlan" || d.ID != vni || d.Port != port || d.Local != local || !d.Learning || info[0].Master != master {
			t.Errorf("%s %s: %+v", host, dev, info[0])
		}
	}
	checkVX("k1", "vx7", 7, 8472, "10.253.0.1", "br7")
	checkVX("k2", "vx7", 7, 8472, "10.253.0.2", "br7")
	checkVX("k1", "vx16777215", 16777215, 8472, "10.253.0.1", "br16777215")

	// Head-end replication to the other host of the network.
	fdb := func(host, dev string) string {
		return mustRun(t, "bridge", "-n", HostNS(o, host), "fdb", "show", "dev", dev)
	}
	if out := fdb("k1", "vx7"); !strings.Contains(out, "00:00:00:00:00:00 dst 10.253.0.2 self permanent") {
		t.Errorf("k1 vx7 fdb:\n%s", out)
	}
	if out := fdb("k2", "vx7"); !strings.Contains(out, "00:00:00:00:00:00 dst 10.253.0.1 self permanent") {
		t.Errorf("k2 vx7 fdb:\n%s", out)
	}
	if out := fdb("k1", "vx16777215"); strings.Contains(out, "dst ") {
		t.Errorf("a network on one host must not flood anywhere:\n%s", out)
	}
	// VM ports sit on the network's bridge; the internal port is k2's br7.
	if out := mustRun(t, "ip", "-n", HostNS(o, "k1"), "-br", "link", "show", "master", "br7"); !strings.Contains(out, "a@") || !strings.Contains(out, "vx7") {
		t.Errorf("k1 br7 ports:\n%s", out)
	}
	if out := mustRun(t, "ip", "-n", HostNS(o, "k2"), "-br", "addr", "show", "dev", "br7"); !strings.Contains(out, "10.7.0.254/24") {
		t.Errorf("k2 br7 address:\n%s", out)
	}
	if out := mustRun(t, "ip", "netns", "exec", HostNS(o, "k1"), "ethtool", "-k", UnderlayIf); !strings.Contains(out, "tx-checksumming: off") {
		t.Errorf("k1: tx checksum offload still on on %s", UnderlayIf)
	}

	// The overlay works: VM to VM and VM to the internal address.
	mustRun(t, "ip", "netns", "exec", VMNS(o, "k1", "a"), "ping", "-c2", "-W3", "10.7.0.2")
	mustRun(t, "ip", "netns", "exec", VMNS(o, "k1", "a"), "ping", "-c1", "-W3", "10.7.0.254")
	cmd, err := Command(ctx, o, "gw7", []string{"ip", "neigh", "show", "10.7.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "02:00:00:00:07:01") {
		t.Errorf("k2 did not learn VM a's MAC: %q, %v", out, err)
	}
	if out := fdb("k2", "vx7"); !strings.Contains(out, "02:00:00:00:07:01 dst 10.253.0.1") {
		t.Errorf("k2's vxlan device did not learn a's MAC:\n%s", out)
	}

	if err := Down(ctx, o); err != nil {
		t.Fatal(err)
	}
	assertGone(t, o, before)
}

// fakeApply writes a stand-in for ovs-vxctl that records how apply was run
// (arguments, OVS environment, namespace) and fails for host failHost.
func fakeApply(t *testing.T, rec, failHost string) string {
	t.Helper()
	script := filepath.Join(filepath.Dir(rec), "fake-ovs-vxctl-"+failHost)
	body := `#!/bin/sh
host=$5
{ echo "args: $*"; echo "rundir: $OVS_RUNDIR"; echo "netns: $(ip netns identify)"; } > ` + rec + `/$host
if [ "$host" = "` + failHost + `" ]; then echo "apply refused on purpose for $host" >&2; exit 3; fi
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// TestApplyAndFailures runs apply through a stand-in binary: a failing apply
// makes Up fail with its stderr and remove everything; a lab left half dead
// (a crashed ovs-vswitchd, a stray namespace) still goes down completely.
func TestApplyAndFailures(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	before := rootLinks(t)
	topo := newTopo("labf").
		host("h1", "10.254.0.1", true, 0).
		host("h2", "10.254.0.2", true, 0).
		network("n", 5).
		port(t, "h1", "v1", topology.PortVM, "", "10.5.0.1/24", "").
		port(t, "h2", "v2", topology.PortVM, "", "10.5.0.2/24", "").t
	dir := labDir(t)
	rec := filepath.Join(filepath.Dir(dir), "rec")
	if err := os.Mkdir(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(filepath.Dir(dir), "labf.yaml")
	o := Options{Topology: topo, Dir: dir, File: file, Log: zaptest.NewLogger(t), Self: fakeApply(t, rec, "h2")}
	if err := Down(ctx, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Down(context.Background(), o) })

	// A namespace of an older version of the topology blocks Up.
	mustRun(t, "ip", "netns", "add", "vx-labf.gone")
	if _, err := Up(ctx, o); err == nil || !strings.Contains(err.Error(), "vx-labf.gone") || !strings.Contains(err.Error(), "lab down") {
		t.Fatalf("up beside a stray namespace: %v", err)
	}
	if !nsExists("vx-labf.gone") {
		t.Fatalf("a refused up must not touch anything")
	}
	if err := Down(ctx, o); err != nil {
		t.Fatal(err)
	}
	assertGone(t, o, before)

	// apply fails on h2: Up reports its stderr and leaves nothing.
	_, err := Up(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "host h2") || !strings.Contains(err.Error(), "apply refused on purpose for h2") {
		t.Fatalf("up with a failing apply: %v", err)
	}
	assertGone(t, o, before)
	got, err := os.ReadFile(filepath.Join(rec, "h1"))
	if err != nil {
		t.Fatalf("apply did not run on h1: %v", err)
	}
	inst := HostInstance(o, "h1")
	for _, want := range []string{
		"args: apply -f " + file + " --host h1 --db " + inst.DBEndpoint(),
		"rundir: " + inst.Dir,
		"netns: " + HostNS(o, "h1"),
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("apply on h1 ran with:\n%s\nwant a line %q", got, want)
		}
	}

	// apply succeeds: the report times it per host.
	o.Self = fakeApply(t, rec, "none")
	rep, err := Up(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if len(rep.Steps) != 3 || rep.Steps[2].Name != "apply" {
		t.Errorf("steps: %+v", rep.Steps)
	}
	for _, h := range rep.Hosts {
		if h.Apply <= 0 || h.OVSStart <= 0 || h.Build < h.OVSStart {
			t.Errorf("host times: %+v", h)
		}
	}
	if rep.Total < rep.Steps[0].Duration+rep.Steps[1].Duration+rep.Steps[2].Duration {
		t.Errorf("total %v shorter than its steps", rep.Total)
	}

	// Half dead: h1's ovs-vswitchd crashed, a VM namespace was deleted by hand.
	pid, ok := readPid(filepath.Join(inst.Dir, "ovs-vswitchd.pid"))
	if !ok {
		t.Fatal("no ovs-vswitchd pid")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	mustRun(t, "ip", "netns", "del", VMNS(o, "h2", "v2"))
	st, err := Status(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete() || st.Empty() {
		t.Errorf("status of a half-dead lab:\n%s", st)
	}
	// Down needs only the topology's name: the file may have changed or
	// no longer parse.
	start := time.Now()
	if err := Down(ctx, Options{Topology: &topology.Topology{Name: "labf"}, Dir: dir}); err != nil {
		t.Fatal(err)
	}
	// Only a hang detector (stuck waits on dead daemons take minutes).
	if d := time.Since(start); d > time.Minute {
		t.Errorf("down of a half-dead lab took %v", d)
	}
	assertGone(t, o, before)
}

// TestIPv6Underlay checks IPv6 VTEPs: addresses on br-phy, reachability and
// OVS's tunnel routes, and a VXLAN tunnel over IPv6 to a kernel peer.
func TestIPv6Underlay(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	before := rootLinks(t)
	topo := newTopo("lab6").
		host("h1", "fd00:ab::1", true, 0).
		host("h2", "fd00:ab::2", true, 0).
		host("k1", "fd00:ac::3", false, 0).
		network("n", 6).
		port(t, "h1", "v1", topology.PortVM, "", "fd00:6::1/64", "").
		port(t, "k1", "v3", topology.PortVM, "02:00:00:00:06:03", "fd00:6::3/64", "").t
	o := Options{Topology: topo, Dir: labDir(t), Log: zaptest.NewLogger(t), SkipApply: true}
	upForTest(t, o)
	for _, a := range topo.Hosts {
		for _, b := range topo.Hosts {
			if a != b {
				mustRun(t, "ip", "netns", "exec", HostNS(o, a.Name), "ping", "-6", "-c1", "-W2", b.VTEP.String())
			}
		}
	}
	// fd00:ab::1, fd00:ab::2 and fd00:ac::3 share 29 bits (0xab, 0xac: 10101...).
	if out := mustRun(t, "ip", "-n", HostNS(o, "h1"), "-br", "-6", "addr", "show", "dev", PhyBridge); !strings.Contains(out, "fd00:ab::1/29") {
		t.Errorf("h1 br-phy: %s", out)
	}
	out, err := HostInstance(o, "h1").Appctl(ctx, "ovs/route/show")
	if err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{"fd00:ab::2/128 dev br-phy", "fd00:ac::3/128 dev br-phy"} {
		if !strings.Contains(out, peer) {
			t.Errorf("h1 ovs/route/show lacks %s:\n%s", peer, out)
		}
	}
	inst := HostInstance(o, "h1")
	if _, err := inst.Vsctl(ctx, "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
		"--", "add-port", "br-int", "v1",
		"--", "add-port", "br-int", "tun-k1", "--", "set", "Interface", "tun-k1", "type=vxlan",
		"options:remote_ip=fd00:ac::3", "options:key=6", "options:dst_port=4789"); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ip", "netns", "exec", VMNS(o, "h1", "v1"), "ping", "-6", "-c2", "-W3", "fd00:6::3")
	if err := Down(ctx, o); err != nil {
		t.Fatal(err)
	}
	assertGone(t, o, before)
}
