package ovsdb

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// Names of what ovs-vxctl creates on a managed host.
const (
	// BridgeInt is the integration bridge: VM and internal ports, access
	// ports tagged with their network's local VLAN.
	BridgeInt = "br-int"
	// BridgeTun is the tunnel bridge: the VXLAN ports and the pipeline.
	BridgeTun = "br-tun"
	// PatchInt is the patch port on br-int whose peer is PatchTun.
	PatchInt = "patch-int"
	// PatchTun is the patch port on br-tun whose peer is PatchInt; its
	// OpenFlow port is topology.PatchOFPort.
	PatchTun = "patch-tun"
	// TunnelPortPrefix starts the name of the VXLAN port towards a peer.
	TunnelPortPrefix = "vx-"
)

// Ownership marks, kept in the external_ids column of every row ovs-vxctl
// creates. A row is ours when both KeyOwner and KeyHost match the topology
// and host being applied; every other row is left alone.
const (
	// KeyOwner holds the topology name.
	KeyOwner = "ovs-vxctl-owner"
	// KeyHost holds the host name within the topology.
	KeyHost = "ovs-vxctl-host"
	// KeyPeer is on tunnel Port and Interface rows: the peer host's name.
	KeyPeer = "ovs-vxctl-peer"
	// KeyNetwork is on VM and internal Port and Interface rows: the network.
	KeyNetwork = "ovs-vxctl-network"
	// KeyVNI is on VM and internal Port and Interface rows: the network's VNI.
	KeyVNI = "ovs-vxctl-vni"
	// KeyLocalVLANs is on br-int: the persisted local VLAN allocation,
	// "VNI=VLAN" pairs sorted by VNI and joined by commas ("100=1,200=2").
	KeyLocalVLANs = "ovs-vxctl-local-vlans"

	// keyPrefix starts every key above: keys with it on our rows are ours
	// to set and delete.
	keyPrefix = "ovs-vxctl-"
)

// TunnelPortName is the name of the VXLAN port towards peer (at most 15
// characters for host names of at most 12).
func TunnelPortName(peer string) string { return TunnelPortPrefix + peer }

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

// datapathIDString is BridgeDatapathID as other_config:datapath-id takes it:
// exactly 16 hex digits.
func datapathIDString(topoName, hostName, bridge string) string {
	return fmt.Sprintf("%016x", BridgeDatapathID(topoName, hostName, bridge))
}

// marks holds the owner and host a row must carry to be ours.
type marks struct {
	owner, host string
}

// owns reports whether a row with these external_ids is ours.
func (m marks) owns(ext map[string]string) bool {
	return ext[KeyOwner] == m.owner && ext[KeyHost] == m.host
}

// ids returns the ownership marks plus extra key/value pairs.
func (m marks) ids(extra ...string) map[string]string {
	ids := map[string]string{KeyOwner: m.owner, KeyHost: m.host}
	for i := 0; i+1 < len(extra); i += 2 {
		ids[extra[i]] = extra[i+1]
	}
	return ids
}

// ownerOf describes who owns a row, for error messages.
func ownerOf(ext map[string]string) string {
	o, ok := ext[KeyOwner]
	if !ok {
		return "it was not created by ovs-vxctl"
	}
	return fmt.Sprintf("it belongs to topology %q host %q", o, ext[KeyHost])
}

// isOurKey reports whether key is one of ovs-vxctl's external_ids keys.
func isOurKey(key string) bool { return strings.HasPrefix(key, keyPrefix) }
