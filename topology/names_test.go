package topology

import (
	"slices"
	"strings"
	"testing"
)

// Datapath IDs are deterministic, carry DatapathIDTopByte and never collide
// across topologies, hosts and the two bridges of a host.
func TestDatapathID(t *testing.T) {
	a := DatapathID("three-hosts", "host1")
	if a != DatapathID("three-hosts", "host1") {
		t.Fatal("DatapathID is not deterministic")
	}
	seen := map[uint64]string{}
	for _, tc := range [][2]string{{"three-hosts", "host1"}, {"three-hosts", "host2"}, {"other", "host1"}, {"three-hostsh", "ost1"}, {"", ""}} {
		id := DatapathID(tc[0], tc[1])
		if got := BridgeDatapathID(tc[0], tc[1], BridgeTun); got != id {
			t.Errorf("BridgeDatapathID(%q, %q, br-tun) = %016x, want DatapathID's %016x", tc[0], tc[1], got, id)
		}
		// br-int's ID is another ID of the same family, unique too.
		intID := BridgeDatapathID(tc[0], tc[1], BridgeInt)
		for _, x := range []struct {
			id   uint64
			name string
		}{{id, tc[0] + "/" + tc[1]}, {intID, tc[0] + "/" + tc[1] + "/br-int"}} {
			if x.id>>56 != DatapathIDTopByte {
				t.Errorf("datapath ID of %s = %016x: top byte is not %02x", x.name, x.id, DatapathIDTopByte)
			}
			if prev, dup := seen[x.id]; dup {
				t.Errorf("datapath ID of %s = %016x, same as %s's", x.name, x.id, prev)
			}
			seen[x.id] = x.name
		}
	}
}

// Tunnel port names fit an interface name for every valid host name and
// cannot be taken by a network port.
func TestTunnelPortNames(t *testing.T) {
	name := TunnelPortName(strings.Repeat("h", MaxHostNameLen))
	if len(name) > MaxIfaceNameLen {
		t.Errorf("tunnel port name %q is longer than %d", name, MaxIfaceNameLen)
	}
	if !strings.HasPrefix(name, TunnelPortPrefix) {
		t.Errorf("tunnel port name %q lacks the prefix %q", name, TunnelPortPrefix)
	}
	for _, n := range []string{BridgeInt, BridgeTun, PatchInt, PatchTun} {
		if !slices.Contains(ReservedPortNames(), n) {
			t.Errorf("%s is not reserved", n)
		}
	}
}

// The OVS datapaths' own devices are no port name: a vm port ovs-netdev
// would attach the userspace datapath's device to br-int.
func TestDatapathDevicesAreNoPortNames(t *testing.T) {
	for _, name := range []string{"ovs-netdev", "ovs-system"} {
		if why := portNameProblem(name); !strings.Contains(why, "datapath") {
			t.Errorf("port name %s: problem %q, want it refused as a datapath device", name, why)
		}
	}
	if why := portNameProblem("ovs-net"); why != "" {
		t.Errorf("port name ovs-net refused: %s", why)
	}
}
