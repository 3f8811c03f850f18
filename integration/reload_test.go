package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// tenantB is the network TestControllerReload adds to the controller-mode
// example while its controller runs: one VM on host1 and one on host2, both
// declared, so that the controller alone installs their unicast entries and
// ARP responders.
const tenantB = `
  - name: tenant-b
    vni: 200
    ports:
      - {host: host1, name: vmb1, mac: "52:54:00:00:02:01", ip: 10.2.2.1/24}
      - {host: host2, name: vmb2, mac: "52:54:00:00:02:02", ip: 10.2.2.2/24}
`

// plugVM makes the VM of a port the file is about to declare: a namespace
// named as the lab names its VMs (so `lab exec HOST/PORT` reaches it) and a
// veth whose host end, called as the port, apply attaches to br-int. They
// are removed in owner's cleanup.
func (l *labEnv) plugVM(t, owner testing.TB, host, port, mac, cidr string) {
	t.Helper()
	ns, hostNS := lab.VMNS(l.opts, host, port), lab.HostNS(l.opts, host)
	owner.Cleanup(func() {
		run("ip", "-n", hostNS, "link", "del", port)
		run("ip", "netns", "del", ns)
	})
	mtu := fmt.Sprint(lab.VMMTU)
	mustRun(t, "ip", "netns", "add", ns)
	mustRun(t, "ip", "-n", hostNS, "link", "add", "name", port, "mtu", mtu, "type", "veth", "peer", "name", lab.VMIf, "mtu", mtu, "netns", ns)
	mustRun(t, "ip", "-n", ns, "link", "set", "dev", "lo", "up")
	mustRun(t, "ip", "-n", ns, "link", "set", "dev", lab.VMIf, "address", mac, "up")
	mustRun(t, "ip", "-n", ns, "addr", "add", cidr, "dev", lab.VMIf)
	mustRun(t, "ip", "netns", "exec", ns, "ethtool", "-K", lab.VMIf, "tx", "off")
	mustRun(t, "ip", "-n", hostNS, "link", "set", "dev", port, "up")
}

// hasUnicast reports whether host's br-tun holds the controller's table-20
// entry for mac.
func (l *labEnv) hasUnicast(t testing.TB, host, mac string) bool {
	t.Helper()
	for entry := range l.table20(t, host) {
		if strings.Contains(entry, "priority=2,") && strings.Contains(entry, "dl_dst="+mac) {
			return true
		}
	}
	return false
}

// replaceFile puts content at path as configuration tools do: a new file
// renamed over the old one.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// controllerFlows is every br-tun and br-int flow of every host, learned
// entries aside.
func (l *labEnv) controllerFlows(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, h := range l.managedHosts() {
		for _, br := range []string{"br-int", "br-tun"} {
			// Not through lab exec, which reads the file (broken meanwhile).
			out[h+"/"+br] = sorted(withoutCookiePrefix(lines(l.ofctl(t, h, "dump-flows", br, "--no-stats")), "0x7679"))
		}
	}
	return out
}

// TestControllerReload: the lab's running controller picks up a network
// added to its file (the hosts' OVSDB side is apply's, run first), with the
// unicast entries of the new VMs on exactly the hosts of the network, and
// the VMs reach each other; a broken file, and SIGHUP with it, change
// nothing. It logs the reload latency: the file renamed into place to the
// new flows on the switches, and to the first ping answered.
func TestControllerReload(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	dir := filepath.Join(workDir, "reload")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A name of its own: TestController runs the same example.
	file := copyExample(t, ctlExample, dir, "topology.yaml", func(text string) string {
		return strings.Replace(text, "name: "+namePrefix+"three-hosts-ctl", "name: "+namePrefix+"reload-ctl", 1)
	})
	l := startLab(t, ctlExample, file)
	vm1, vm2 := l.vmByPort(t, "vm1"), l.vmByPort(t, "vm2")
	l.warmUp(t, vm1, vm2.ip, 20*time.Second)
	ul := lab.UnderlayNS(l.opts)
	pids := controllerPids(t, ul)
	if len(pids) != 1 {
		t.Fatalf("%d controllers run in %s, want 1", len(pids), ul)
	}
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("LabStatusShowsController", func(t *testing.T) {
		r := l.vx("lab", "status", "-f", file)
		want := fmt.Sprintf("controller %s: running, pid %d, listening on %s", l.topo.Controller, pids[0], l.topo.Controller)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("lab status lacks %q: %v", want, r)
		}
		t.Logf("lab status:\n%s", r.stdout)
	})

	top := t // the new VMs live until the end, for the next subtest
	t.Run("NetworkAdded", func(t *testing.T) {
		text := string(orig) + tenantB
		next := filepath.Join(dir, "next.yaml")
		if err := os.WriteFile(next, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		l.plugVM(t, top, "host1", "vmb1", "52:54:00:00:02:01", "10.2.2.1/24")
		l.plugVM(t, top, "host2", "vmb2", "52:54:00:00:02:02", "10.2.2.2/24")
		// apply first (ports, local VLANs, the advertisement): the
		// controller, still on the old file, must not react.
		for _, h := range []string{"host1", "host2"} {
			if r := l.hostVx(h, next, "apply"); r.code != 0 {
				t.Fatalf("%s: apply of the new file: %v", h, r)
			}
		}
		if l.hasUnicast(t, "host1", "52:54:00:00:02:02") {
			t.Fatal("host1 has vmb2's unicast entry before the controller read the new file")
		}
		start := time.Now()
		replaceFile(t, file, text)
		deadline := start.Add(10 * time.Second)
		for !(l.hasUnicast(t, "host1", "52:54:00:00:02:02") && l.hasUnicast(t, "host2", "52:54:00:00:02:01")) {
			if time.Now().After(deadline) {
				t.Fatalf("the new VMs' unicast entries are not on host1 and host2 10s after the file changed; controller log:\n%s",
					logTail(l.controllerLog(), 20))
			}
			time.Sleep(10 * time.Millisecond)
		}
		flowsIn := time.Since(start)
		topo, err := topology.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		l.topo, l.opts.Topology = topo, topo
		vmb1, vmb2 := l.vmByPort(t, "vmb1"), l.vmByPort(t, "vmb2")
		l.warmUp(t, vmb1, vmb2.ip, 10*time.Second)
		pingIn := time.Since(start)
		t.Logf("reload latency: file renamed into place -> unicast entries on host1 and host2 in %s; -> first ping vmb1 -> vmb2 answered in %s",
			flowsIn.Round(time.Millisecond), pingIn.Round(time.Millisecond))
		l.ping(t, vmb1, vmb2.ip, "(new network)")
		l.ping(t, vm1, vm2.ip, "(old network, after the reload)")
		if l.hasUnicast(t, "host3", "52:54:00:00:02:01") || l.hasUnicast(t, "host3", "52:54:00:00:02:02") {
			t.Error("host3, not in tenant-b, got its unicast entries")
		}
		checkFDBOfNewNetwork(t, l)
		if got := logLines(t, l.controllerLog(), "topology reloaded", "tenant-b"); len(got) != 1 {
			t.Errorf("%d log lines of the reload naming tenant-b, want 1:\n%s", len(got), logTail(l.controllerLog(), 20))
		}
	})

	t.Run("BrokenFileAndSIGHUPChangeNothing", func(t *testing.T) {
		good, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// lab down reads the file: it must be good again whatever happens.
		t.Cleanup(func() { replaceFile(t, file, string(good)) })
		before := l.controllerFlows(t)
		refused := len(logLines(t, l.controllerLog(), "topology file refused"))
		waitRefused := func(n int, what string) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for len(logLines(t, l.controllerLog(), "topology file refused")) < n {
				if time.Now().After(deadline) {
					t.Fatalf("the broken file was not refused after %s within 10s; log:\n%s", what, logTail(l.controllerLog(), 20))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		replaceFile(t, file, strings.Replace(string(good), "vni: 200", "vni: 100", 1))
		waitRefused(refused+1, "the file changed")
		if err := syscall.Kill(pids[0], syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitRefused(refused+2, "SIGHUP")
		if got := logLines(t, l.controllerLog(), "topology file refused", "networks[1].vni"); len(got) < 2 {
			t.Errorf("the refusal does not name the problem (networks[1].vni):\n%s", logTail(l.controllerLog(), 10))
		}
		time.Sleep(time.Second) // anything the refusal wrongly started would show by now
		if !processAlive(pids[0]) {
			t.Fatal("SIGHUP ended the controller")
		}
		if after := l.controllerFlows(t); fmt.Sprint(after) != fmt.Sprint(before) {
			for k := range before {
				if d := diffLines(before[k], after[k]); d != "" {
					t.Errorf("%s changed after a refused reload:\n%s", k, d)
				}
			}
		}
		// lab exec reads the file: the good one back for the pings. Its
		// reload is "unchanged" and sends nothing.
		replaceFile(t, file, string(good))
		deadline := time.Now().Add(10 * time.Second)
		for len(logLines(t, l.controllerLog(), "topology reloaded: unchanged")) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the good file back was not reloaded as unchanged within 10s; log:\n%s", logTail(l.controllerLog(), 20))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if after := l.controllerFlows(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Error("the flows changed when the good file came back")
		}
		l.ping(t, vm1, vm2.ip, "(after a refused reload)")
		l.ping(t, l.vmByPort(t, "vmb1"), l.vmByPort(t, "vmb2").ip, "(after a refused reload)")
	})
}

// checkFDBOfNewNetwork: `ovs-vxctl fdb` on host1 lists vmb2 as installed by
// the controller with the IP it answers ARP for, and vmb1 as local, behind
// its br-int port, with its IP.
func checkFDBOfNewNetwork(t *testing.T, l *labEnv) {
	t.Helper()
	if r := l.hostVx("host1", l.file, "fdb"); r.code == 0 {
		t.Logf("ovs-vxctl fdb on host1:\n%s", r.stdout)
	}
	r := l.hostVx("host1", l.file, "fdb", "--format", "json", "--vni", "200")
	if r.code != 0 {
		t.Fatalf("fdb: %v", r)
	}
	var entries []struct {
		MAC, Origin, Peer, Port string
		VNI                     uint32
		IPs                     []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("fdb --format json: %v in %q", err, r.stdout)
	}
	want := map[string]string{
		"52:54:00:00:02:02": "installed peer host2 port  ips [10.2.2.2]",
		"52:54:00:00:02:01": "local peer  port vmb1 ips [10.2.2.1]",
	}
	for _, e := range entries {
		got := fmt.Sprintf("%s peer %s port %s ips %v", e.Origin, e.Peer, e.Port, e.IPs)
		if w, ok := want[e.MAC]; ok && got == w && e.VNI == 200 {
			delete(want, e.MAC)
		}
	}
	for mac, w := range want {
		t.Errorf("fdb on host1 lacks %s as %q: %s", mac, w, r.stdout)
	}
}
