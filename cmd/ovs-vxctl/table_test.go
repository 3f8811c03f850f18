package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

// columnsAligned checks that in the block of lines starting at the header
// line whose first cells are first, every cell of every row starts where its
// column's header starts. Cells are runs separated by two spaces or more (no
// cell of the test data holds two spaces).
func columnsAligned(t *testing.T, out string, first ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	start := -1
	for i, l := range lines {
		if c := cells(l); len(c) >= len(first) && slices.Equal(c[:len(first)], first) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("no header line starting with %q in\n%s", first, out)
	}
	want := cellStarts(lines[start])
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		if strings.HasSuffix(l, " ") {
			t.Errorf("row %q ends in spaces", l)
		}
		got := cellStarts(l)
		if !slices.Equal(got, want) {
			t.Errorf("cells of row %q start at %v, the header's at %v:\n%s", l, got, want, out)
		}
	}
}

// cells are the cells of a line.
func cells(l string) []string {
	var out []string
	for _, c := range strings.Split(strings.TrimSpace(l), "  ") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// cellStarts is where each cell of a line starts.
func cellStarts(l string) []int {
	var starts []int
	for i := 0; i < len(l); i++ {
		if l[i] != ' ' && (i == 0 || (i >= 2 && l[i-1] == ' ' && l[i-2] == ' ') || (i == 1 && l[0] == ' ')) {
			starts = append(starts, i)
		}
	}
	return starts
}

func TestShowColumnsFitIPv6(t *testing.T) {
	st := &ovsdb.State{
		Topology: "v6", Host: "host1",
		Bridges: []ovsdb.BridgeState{
			{Name: "br-int", DatapathType: "netdev", DatapathID: "0000767800000001", FailMode: "secure"},
			{Name: "br-tun", DatapathType: "netdev", DatapathID: "0000767800000002", FailMode: "secure"},
		},
		Peers: []ovsdb.PeerState{
			{Peer: "host2", Port: "vx-host2", RemoteIP: "2001:db8:ffff:ffff:ffff:ffff:ffff:2", DstPort: 4789, OFPort: 10, State: "up"},
			{Peer: "a-long-name", Port: "vx-a-long-name", RemoteIP: "10.0.0.3", DstPort: 8472, OFPort: 11, State: "down"},
		},
		Networks: []ovsdb.NetworkState{
			{Name: "a-network-with-a-long-name", VNI: 16777215, LocalVLAN: 1, MTU: 1450, Ports: []ovsdb.PortState{{Name: "vm1", Type: "vm", OFPort: 2, State: "up"}}},
			{Name: "n", VNI: 1, LocalVLAN: 4094},
		},
	}
	var b bytes.Buffer
	if err := printShow(&b, st); err != nil {
		t.Fatal(err)
	}
	columnsAligned(t, b.String(), "NAME", "DATAPATH")
	columnsAligned(t, b.String(), "PEER")
	columnsAligned(t, b.String(), "NAME", "VNI")
	if !strings.Contains(b.String(), "a-network-with-a-long-name  16777215  1           1450") {
		t.Errorf("the network's MTU is not in its row:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "2001:db8:ffff:ffff:ffff:ffff:ffff:2  4789") {
		t.Errorf("IPv6 VTEP not followed by its port:\n%s", b.String())
	}
}

func TestFDBColumnsFitIPv6(t *testing.T) {
	entries := []agent.FDBEntry{
		{MAC: "52:54:00:00:01:02", VNI: 100, LocalVLAN: 1, Peer: "host2", RemoteVTEP: "2001:db8:ffff:ffff:ffff:ffff:ffff:2", OFPort: 10, Origin: "learned", HardTimeout: 300, AgeSeconds: 5},
		{MAC: "52:54:00:00:01:03", VNI: 16777215, LocalVLAN: 4094, Peer: "a-long-host", RemoteVTEP: "10.0.0.3", OFPort: 65279, Origin: "installed", AgeSeconds: 123456},
	}
	var b bytes.Buffer
	if err := printFDB(&b, entries); err != nil {
		t.Fatal(err)
	}
	columnsAligned(t, b.String(), "MAC")
}
