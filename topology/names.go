package topology

import (
	"crypto/sha256"
	"encoding/binary"
)

// Names and numbers of what ovs-vxctl creates on every managed host. They are
// defined here, at the root of the package graph, so the OVSDB reconcile, the
// flow compiler, the controller and the lab cannot disagree about them.
const (
	// BridgeInt is the integration bridge: VM and internal ports, access
	// ports tagged with their network's local VLAN, switched with NORMAL.
	BridgeInt = "br-int"
	// BridgeTun is the tunnel bridge: the VXLAN ports and the pipeline.
	BridgeTun = "br-tun"
	// PatchInt is the patch port on br-int whose peer is PatchTun.
	PatchInt = "patch-int"
	// PatchTun is the patch port on br-tun whose peer is PatchInt; its
	// OpenFlow port is PatchOFPort.
	PatchTun = "patch-tun"
	// PatchOFPort is the OpenFlow port number of PatchTun on br-tun: the
	// pipeline classifies frames from br-int by it.
	PatchOFPort = 1
	// TunnelPortPrefix starts the name of every tunnel port ovs-vxctl
	// creates ("vx-<peer host>"); network ports may not use it.
	TunnelPortPrefix = "vx-"
	// PhyBridge is the lab's OVS bridge on a managed host, holding the
	// underlay veth and the VTEP address. It is named here because OVS port
	// names are unique across a switch, so no network port may take it.
	PhyBridge = "br-phy"
)

// TunnelPortName is the name of the VXLAN port towards peer (at most 15
// characters for host names of at most MaxHostNameLen).
func TunnelPortName(peer string) string { return TunnelPortPrefix + peer }

// ReservedPortNames are the OVS ports and bridges ovs-vxctl and its lab own on
// every host; no network port may be called so (OVS port names are unique
// across all bridges of a switch).
func ReservedPortNames() []string {
	return []string{BridgeInt, BridgeTun, PatchInt, PatchTun, PhyBridge}
}

// DatapathIDTopByte is the most significant byte of every datapath ID that
// DatapathID returns: 0x76, ASCII 'v'. It keeps the IDs clear of the ones
// OVS derives from MAC addresses (whose top 16 bits are zero) and marks
// them as ovs-vxctl's.
const DatapathIDTopByte = 0x76

// DatapathID is the OpenFlow datapath ID of br-tun on host hostName of
// topology topoName: the first 8 bytes of SHA-256(topoName "\x00" hostName),
// big-endian, with the top byte replaced by DatapathIDTopByte. A controller
// that knows the topology maps a connecting switch back to its host by
// computing it for every managed host.
func DatapathID(topoName, hostName string) uint64 {
	sum := sha256.Sum256([]byte(topoName + "\x00" + hostName))
	id := binary.BigEndian.Uint64(sum[:8])
	return id&^(0xff<<56) | DatapathIDTopByte<<56
}

// BridgeDatapathID is the datapath ID of one of ovs-vxctl's bridges: br-tun's
// is DatapathID; br-int's hashes the bridge name in too. In controller mode the
// controller serves both bridges and tells them apart by it.
func BridgeDatapathID(topoName, hostName, bridge string) uint64 {
	if bridge == BridgeTun {
		return DatapathID(topoName, hostName)
	}
	return DatapathID(topoName, hostName+"\x00"+bridge)
}
