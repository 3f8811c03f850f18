package ovsdb

import (
	"fmt"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
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

// datapathIDString is topology.BridgeDatapathID as other_config:datapath-id
// takes it: exactly 16 hex digits.
func datapathIDString(topoName, hostName, bridge string) string {
	return fmt.Sprintf("%016x", topology.BridgeDatapathID(topoName, hostName, bridge))
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
