package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// buildSelf builds ovs-vxctl for the lab to run in its hosts.
func buildSelf(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build ovs-vxctl")
	}
	bin := filepath.Join(t.TempDir(), "ovs-vxctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ovs-vxctl").CombinedOutput(); err != nil {
		t.Fatalf("building ovs-vxctl: %v\n%s", err, out)
	}
	return bin
}

const agentLabYAML = `name: laba
defaults: {datapath: netdev}
hosts:
  - {name: h1, vtep: 10.254.0.1}
  - {name: h2, vtep: 10.254.0.2}
networks:
  - name: n
    vni: 7
    ports:
      - {host: h1, name: web, iface_id: vm-web-01, ip: 10.7.0.1/24}
      - {host: h2, name: v2, ip: 10.7.0.2/24}
`

// With agents, a VM port given by iface_id and plugged libvirt-style is
// reachable across the overlay within a second of being plugged, with
// nobody running apply; Down ends the agents.
func TestAgentsBindPluggedVMs(t *testing.T) {
	needRoot(t)
	self := buildSelf(t)
	dir := labDir(t)
	file := filepath.Join(filepath.Dir(dir), "laba.yaml")
	if err := os.WriteFile(file, []byte(agentLabYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Topology: topo, Dir: dir, File: file, Self: self, Agents: true, Log: zaptest.NewLogger(t)}
	upForTest(t, o)
	vm := VMNS(o, "h1", "web")
	mustRun(t, "ip", "netns", "exec", vm, "ping", "-c1", "-W2", "10.7.0.2")

	// Unplug, then plug again as libvirt does: time it to the first answer.
	inst := HostInstance(o, "h1")
	vsctl := func(args ...string) string {
		t.Helper()
		out, err := inst.Vsctl(context.Background(), args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	vsctl("del-port", "br-int", "web")
	mac := strings.TrimSpace(mustRun(t, "ip", "netns", "exec", vm, "cat", "/sys/class/net/"+VMIf+"/address"))
	plug := time.Now()
	vsctl("--no-wait", "add-port", "br-int", "web", "--", "set", "Interface", "web",
		"external_ids:iface-id=vm-web-01", "external_ids:attached-mac="+mac)
	for {
		// A fresh ARP each try, as a VM booting after the plug would send.
		err := exec.Command("ip", "netns", "exec", vm, "sh", "-c", "ip neigh flush all; ping -n -c1 -W 0.05 10.7.0.2").Run()
		if err == nil {
			break
		}
		if time.Since(plug) > 5*time.Second {
			t.Fatalf("web unreachable 5s after it was plugged; agent log:\n%s", readFile(filepath.Join(inst.Dir, AgentLog)))
		}
	}
	took := time.Since(plug)
	t.Logf("BIND_LATENCY plug->first ping answered %v", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("plug -> first ping answered took %v, want under a second", took)
	}
	if tag := vsctl("get", "Port", "web", "tag"); tag == "[]" || tag == "4095" {
		t.Errorf("web's tag %s after binding", tag)
	}

	pids, _ := filepath.Glob(filepath.Join(dir, "*", AgentPid))
	var agents []int
	for _, f := range pids {
		if pid, ok := readPid(f); ok && isAgent(pid) {
			agents = append(agents, pid)
		}
	}
	if len(agents) != 2 {
		t.Fatalf("%d agents running (pid files %v), want 2", len(agents), pids)
	}
	if err := Down(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, pid := range agents {
		if alive(pid) {
			t.Errorf("agent %d still running after down", pid)
		}
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
