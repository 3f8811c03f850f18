package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// hwState is a hardware VTEP's state as hwvtep.Show reports it: logical
// switch a (ours, VNI 100) with a learned and an installed MAC and two
// VTEPs to flood to, and theirs (not ours, no tunnel_key).
func hwState() *hwvtep.State {
	return &hwvtep.State{Topology: "hw", Host: "tor1", PhysicalSwitch: "tor1", Switches: []hwvtep.SwitchState{
		{Name: "theirs", TunnelKey: -1, Bindings: []string{"p2 vlan 5"},
			LocalMACs: []hwvtep.MACEntry{{MAC: "00:00:00:00:99:01", Locator: "10.0.0.9"}}},
		{Name: "a", Ours: true, Network: "a", TunnelKey: 100, Bindings: []string{"p0 vlan 0", "p1 vlan 10"},
			LocalMACs:  []hwvtep.MACEntry{{MAC: "52:54:00:00:00:99", IP: "192.168.1.9", Locator: "10.0.0.9"}},
			RemoteMACs: []hwvtep.MACEntry{{MAC: "52:54:00:00:00:01", IP: "192.168.1.1", Locator: "10.0.0.1"}},
			Flood:      []string{"10.0.0.1", "10.0.0.7"}},
	}}
}

func hwTopo(t *testing.T) *topology.Topology {
	t.Helper()
	top, err := topology.Parse([]byte(hwTopologyYAML("unix:/nonexistent")))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// hwTopologyYAML: network a (VNI 100) on h1, h2 and tor1 p0 untagged;
// network b (VNI 200) on h1 and tor1 p1 vlan 10.
func hwTopologyYAML(endpoint string) string {
	return "name: hw\nhosts:\n" +
		"  - {name: h1, vtep: 10.0.0.1}\n  - {name: h2, vtep: 10.0.0.2}\n" +
		"  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: '" + endpoint + "'}}\n" +
		"networks:\n" +
		"  - {name: a, vni: 100, ports: [{host: h1, name: vm1}, {host: h2, name: vm2}, {host: tor1, name: p0, vlan: 0}]}\n" +
		"  - {name: b, vni: 200, ports: [{host: h1, name: vm3}, {host: tor1, name: p1, vlan: 10}]}\n"
}

func TestHardwareFDBTable(t *testing.T) {
	var buf bytes.Buffer
	if err := printHardwareFDB(&buf, hardwareFDB(hwState(), hwTopo(t), 0)); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"MAC", "VNI", "LOGICAL", "SWITCH", "PEER", "LOCATOR", "ORIGIN", "IPS"},
		{"00:00:00:00:99:01", "-", "theirs", "local:p2.5", "10.0.0.9", "learned", "-"},
		{"52:54:00:00:00:99", "100", "a", "local:p0.0,p1.10", "10.0.0.9", "learned", "192.168.1.9"},
		{"52:54:00:00:00:01", "100", "a", "h1", "10.0.0.1", "installed", "192.168.1.1"},
		{"unknown-dst", "100", "a", "h1", "10.0.0.1", "flood", "-"},
		{"unknown-dst", "100", "a", "-", "10.0.0.7", "flood", "-"}, // no host has that vtep
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		if got := strings.Fields(l); !slices.Equal(got, want[i]) {
			t.Errorf("line %d = %q, want %q", i, got, want[i])
		}
	}
}

func TestHardwareFDBJSONAndVNI(t *testing.T) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, hardwareFDB(hwState(), hwTopo(t), 100)); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("--vni 100: %d entries, want 4 (theirs has no tunnel_key):\n%s", len(got), buf.String())
	}
	learned, installed := got[0], got[1]
	if learned["origin"] != "learned" || learned["peer"] != "local" || learned["locator"] != "10.0.0.9" ||
		learned["remote_vtep"] != nil || learned["vni"] != 100.0 || learned["logical_switch"] != "a" {
		t.Errorf("learned entry %v", learned)
	}
	if installed["origin"] != "installed" || installed["remote_vtep"] != "10.0.0.1" || installed["peer"] != "h1" ||
		installed["ports"] != nil || !slices.Equal(toStrings(installed["ips"]), []string{"192.168.1.1"}) {
		t.Errorf("installed entry %v", installed)
	}
	if e := hardwareFDB(hwState(), hwTopo(t), 999); len(e) != 0 {
		t.Errorf("--vni 999: %v, want none", e)
	}
	buf.Reset()
	if err := writeJSON(&buf, hardwareFDB(hwState(), hwTopo(t), 999)); err != nil || strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("empty fdb as JSON = %q (%v), want []", buf.String(), err)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestHardwareDiffLines(t *testing.T) {
	changes := []string{
		"+ unknown-dst a -> 10.0.0.1, 10.0.0.2",
		"- binding p0 vlan 7 (logical_switch a)",
		"~ logical_switch a tunnel_key 101 -> 100",
		"~ unknown-dst b 10.0.0.1, 10.0.0.3 -> 10.0.0.1",
		"~ something else -> other",
	}
	lines, groups := hardwareDiff(changes)
	want := []string{
		"+unknown-dst a -> 10.0.0.1, 10.0.0.2",
		"-binding p0 vlan 7 (logical_switch a)",
		"-logical_switch a tunnel_key 101", "+logical_switch a tunnel_key 100",
		"-unknown-dst b 10.0.0.1, 10.0.0.3", "+unknown-dst b 10.0.0.1",
		"~something else -> other",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("lines\n%q\nwant\n%q", lines, want)
	}
	if len(groups["add"]) != 1 || len(groups["delete"]) != 1 || len(groups["modify"]) != 3 {
		t.Errorf("groups %v", groups)
	}
	var buf bytes.Buffer
	if err := printHardwareDiff(&buf, "table", "tor1", &hwvtep.Report{}); err != nil || buf.Len() != 0 {
		t.Errorf("no changes printed %q (%v), want nothing", buf.String(), err)
	}
	if err := printHardwareDiff(&buf, "json", "tor1", &hwvtep.Report{Changes: changes[:1]}); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Differ bool                `json:"differ"`
		HW     map[string][]string `json:"hardware_vtep"`
	}
	if err := json.Unmarshal(buf.Bytes(), &js); err != nil || !js.Differ || len(js.HW["add"]) != 1 || js.HW["delete"] == nil {
		t.Errorf("JSON %s (%v)", buf.String(), err)
	}
}
