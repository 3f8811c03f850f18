package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The fdb's IPs and local MACs: the controller's flows on br-tun name the
// IPs it answers ARP and neighbour discovery for (and, for this host, the
// MACs it knows here); br-int's MAC learning table (fdb/show) names the
// MACs behind this host's own ports, in any mode.

// endpointKey identifies an endpoint read back from br-tun.
type endpointKey struct {
	vni       uint32
	mac, host string
}

// controllerEndpoints reads the endpoints the controller's flows (fl, of
// this host) describe: MAC, VNI, host and IPs.
func controllerEndpoints(fl []flows.Flow, host string, st *ovsdb.State) map[endpointKey]flows.Endpoint {
	alloc := topology.Allocation{LocalVLAN: map[uint32]uint16{}, TunnelOFPort: map[string]uint32{}}
	for _, n := range st.Networks {
		alloc.LocalVLAN[n.VNI] = uint16(n.LocalVLAN)
	}
	for _, p := range st.Peers {
		if p.OFPort > 0 {
			alloc.TunnelOFPort[p.Peer] = uint32(p.OFPort)
		}
	}
	out := map[endpointKey]flows.Endpoint{}
	for _, e := range flows.EndpointsFromFlows(fl, host, alloc) {
		out[endpointKey{e.VNI, e.MAC.String(), e.Host}] = e
	}
	return out
}

func ipStrings(e flows.Endpoint) []string {
	var out []string
	for _, ip := range e.IPs {
		out = append(out, ip.String())
	}
	return out
}

// brIntMAC is one line of `ovs-appctl fdb/show br-int`.
type brIntMAC struct {
	port string // an OpenFlow port number, or LOCAL
	vlan int
	mac  string
	age  uint32
}

// readBrIntFDB runs `ovs-appctl fdb/show br-int` against the ovs-vswitchd of
// o.RunDir.
func readBrIntFDB(ctx context.Context, o Options) ([]brIntMAC, error) {
	cmd := exec.CommandContext(ctx, "ovs-appctl", "fdb/show", topology.BridgeInt)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+o.RunDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ovs-appctl fdb/show %s: %w: %s", topology.BridgeInt, err, strings.TrimSpace(stderr.String()))
	}
	return parseFDBShow(string(out)), nil
}

// parseFDBShow parses fdb/show's table (" port  VLAN  MAC  Age"); an age of
// "?" (a static entry) reads 0.
func parseFDBShow(out string) []brIntMAC {
	var entries []brIntMAC
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		vlan, err := strconv.Atoi(f[1])
		if err != nil {
			continue // the header
		}
		if _, err := net.ParseMAC(f[2]); err != nil {
			continue
		}
		age, _ := strconv.ParseUint(f[3], 10, 32)
		entries = append(entries, brIntMAC{port: f[0], vlan: vlan, mac: f[2], age: uint32(age)})
	}
	return entries
}

// localEntries are the MACs behind this host's own br-int ports, in the
// networks of st: from br-int's MAC table, and (controller mode) those the
// controller's flows know here that br-int has aged out. A failure to read
// br-int is logged: the remote entries still stand.
func localEntries(ctx context.Context, o Options, host string, st *ovsdb.State, eps map[endpointKey]flows.Endpoint, vni uint32) []FDBEntry {
	vniOf := map[int]uint32{}
	for _, n := range st.Networks {
		vniOf[n.LocalVLAN] = n.VNI
	}
	var out []FDBEntry
	seen := map[endpointKey]bool{}
	macs, err := readBrIntFDB(ctx, o)
	if err != nil {
		o.Log.Warn("local MACs not listed: reading br-int's MAC table failed", zap.Error(err))
	}
	names := brIntPortNames(ctx, o)
	for _, m := range macs {
		v, ok := vniOf[m.vlan]
		if !ok || isPatch(m.port, names) {
			continue // not one of our networks, or behind the patch port: remote
		}
		if vni != 0 && v != vni {
			continue
		}
		k := endpointKey{v, m.mac, host}
		seen[k] = true
		e := FDBEntry{MAC: m.mac, VNI: v, LocalVLAN: m.vlan, Origin: "local", AgeSeconds: m.age, IPs: ipStrings(eps[k])}
		if no, err := strconv.ParseUint(m.port, 10, 32); err == nil {
			e.OFPort, e.Port = uint32(no), names[uint32(no)]
		} else if m.port != "LOCAL" {
			e.Port = m.port
		}
		out = append(out, e)
	}
	for k, ep := range eps {
		if k.host != host || seen[k] || vni != 0 && k.vni != vni {
			continue
		}
		out = append(out, FDBEntry{MAC: k.mac, VNI: k.vni, LocalVLAN: vlanOfVNI(st, k.vni), Origin: "local", IPs: ipStrings(ep)})
	}
	return out
}

// isPatch reports whether port (fdb/show's: a number, or a name) is
// br-int's patch port to br-tun: the MACs behind it are on other hosts.
// Without br-int's port names, OVS's numbering of it (the bridge's first
// port) is assumed.
func isPatch(port string, names map[uint32]string) bool {
	if port == topology.PatchInt {
		return true
	}
	no, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return false
	}
	if len(names) == 0 {
		return no == 1
	}
	return names[uint32(no)] == topology.PatchInt
}

func vlanOfVNI(st *ovsdb.State, vni uint32) int {
	i := slices.IndexFunc(st.Networks, func(n ovsdb.NetworkState) bool { return n.VNI == vni })
	if i < 0 {
		return 0
	}
	return st.Networks[i].LocalVLAN
}

// brIntPortNames maps br-int's port numbers to names; empty when br-int
// cannot be reached (the entries then go without names).
func brIntPortNames(ctx context.Context, o Options) map[uint32]string {
	out := map[uint32]string{}
	sw, err := openflow.Dial(ctx, o.mgmt(topology.BridgeInt), o.Log)
	if err != nil {
		return out
	}
	defer sw.Close()
	ports, err := sw.Ports(ctx)
	if err != nil {
		return out
	}
	for _, p := range ports {
		out[p.No] = p.Name
	}
	return out
}
