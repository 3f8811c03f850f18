package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep/vtepdbtest"
)

// startVTEPDB starts an ovsdb-server serving the hardware_vtep database
// (no emulator), with physical switch tor1 and its ports p0, p1, p2.
func startVTEPDB(t *testing.T) *vtepdbtest.DB {
	t.Helper()
	d := vtepdbtest.Start(t, vtepdbtest.Options{})
	d.Switch(t, "tor1", "10.0.0.9", "p0", "p1", "p2")
	return d
}

// diffHW runs diff-flows for tor1 and checks its exit status and that
// every line of want is in its output.
func diffHW(t *testing.T, file string, wantCode int, want ...string) {
	t.Helper()
	code, out, errOut := runCLI(t, "diff-flows", "-f", file, "--host", "tor1")
	if code != wantCode {
		t.Errorf("diff-flows: exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, wantCode, out, errOut)
	}
	if wantCode == 0 && out != "" {
		t.Errorf("diff-flows printed %q for no difference", out)
	}
	lines := strings.Split(out, "\n")
	for _, w := range want {
		if !containsLine(lines, w) {
			t.Errorf("diff-flows output lacks %q:\n%s", w, out)
		}
	}
}

func containsLine(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}

func TestHardwareFDBAndDiffRealDatabase(t *testing.T) {
	inst := startVTEPDB(t)
	file := writeFile(t, "hw.yaml", hwTopologyYAML(inst.Unix))

	diffHW(t, file, 2, "+logical_switch a (tunnel_key 100, replication_mode source_node)", "+binding p1 vlan 10 -> logical_switch b")
	if code, out, errOut := runCLI(t, "apply", "-f", file, "--host", "tor1"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	diffHW(t, file, 0)

	// The switch learns a MAC with its IP; someone tells it a remote one.
	// (vtep-ctl's add-ucast-* take no IP: ipaddr is set afterwards.)
	inst.Vtepctl(t, "add-ucast-local", "a", "52:54:00:00:00:99", "10.0.0.9")
	inst.Vtepctl(t, "add-ucast-remote", "a", "52:54:00:00:00:01", "10.0.0.1")
	for table, ip := range map[string]string{"Ucast_Macs_Local": "192.168.1.9", "Ucast_Macs_Remote": "192.168.1.1"} {
		u := inst.Vtepctl(t, "--bare", "--columns=_uuid", "find", table, "ipaddr=\"\"")
		inst.Vtepctl(t, "set", table, u, "ipaddr="+ip)
	}
	code, out, errOut := runCLI(t, "fdb", "-f", file, "--host", "tor1", "--format", "json")
	if code != 0 {
		t.Fatalf("fdb: exit %d\n%s%s", code, out, errOut)
	}
	var entries []hwFDBEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("fdb JSON: %v\n%s", err, out)
	}
	got := map[string]hwFDBEntry{}
	for _, e := range entries {
		got[fmt.Sprintf("%d %s %s %s", e.VNI, e.Origin, e.MAC, e.Locator)] = e
	}
	if e, ok := got["100 learned 52:54:00:00:00:99 10.0.0.9"]; !ok || e.VNI != 100 || e.Peer != "local" || strings.Join(e.IPs, ",") != "192.168.1.9" || strings.Join(e.Ports, ",") != "p0 vlan 0" {
		t.Errorf("learned MAC: %+v (found %v)", e, ok)
	}
	if e, ok := got["100 installed 52:54:00:00:00:01 10.0.0.1"]; !ok || e.VNI != 100 || e.Peer != "h1" || strings.Join(e.IPs, ",") != "192.168.1.1" {
		t.Errorf("installed MAC: %+v (found %v)", e, ok)
	}
	for _, k := range []string{"100 flood unknown-dst 10.0.0.1", "100 flood unknown-dst 10.0.0.2", "200 flood unknown-dst 10.0.0.1"} {
		if e, ok := got[k]; !ok || e.Peer != "h"+e.Locator[len(e.Locator)-1:] {
			t.Errorf("%s: %+v (found %v)", k, e, ok)
		}
	}
	if len(entries) != 5 { // a: learned, installed, 2 flood; b: 1 flood
		t.Errorf("fdb: %d entries, want 5:\n%s", len(entries), out)
	}
	code, out, _ = runCLI(t, "fdb", "-f", file, "--host", "tor1", "--vni", "200")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.Contains(lines[1], "unknown-dst") || !strings.Contains(lines[1], "flood") {
		t.Errorf("fdb --vni 200: exit %d\n%s", code, out)
	}
	// A remote MAC is the controller's business: diff still sees no difference.
	diffHW(t, file, 0)

	// Someone deletes b's flood list and unbinds p0.
	inst.Vtepctl(t, "del-mcast-remote", "b", "unknown-dst", "10.0.0.1")
	inst.Vtepctl(t, "unbind-ls", "tor1", "p0", "0")
	inst.Vtepctl(t, "bind-ls", "tor1", "p2", "7", "a")
	diffHW(t, file, 2, "+unknown-dst b -> 10.0.0.1", "+binding p0 vlan 0 -> logical_switch a", "-binding p2 vlan 7 (logical_switch a)")

	if code, out, errOut := runCLI(t, "apply", "-f", file, "--host", "tor1"); code != 0 {
		t.Fatalf("re-apply: exit %d\n%s%s", code, out, errOut)
	}
	diffHW(t, file, 0)
	if code, out, errOut := runCLI(t, "destroy", "-f", file, "--host", "tor1"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
}
