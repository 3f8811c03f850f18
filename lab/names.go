package lab

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Names of what the lab creates. Namespace names are derived from the
// topology name with "." as separator: topology, host and network names are
// [a-z0-9-], so "." can never occur inside them and the lab of topology "a"
// (namespaces "vx-a" and "vx-a.*") cannot be mistaken for that of "a-b".
const (
	// NSPrefix starts every namespace name of every lab.
	NSPrefix = "vx-"
	// MarkKey is the external_ids key the lab sets on the bridges it owns
	// (br-phy); its value is the topology name.
	MarkKey = "ovs-vxctl-lab"
	// PhyBridge is the OVS bridge of a managed host that holds the underlay
	// veth and the host's VTEP address (userspace tunnelling routes through
	// it); topology reserves its name.
	PhyBridge = topology.PhyBridge
	// UnderlayIf is the name of a host's underlay veth inside its namespace.
	UnderlayIf = "vx-ul"
	// UnderlayBridge is the Linux bridge in the underlay namespace.
	UnderlayBridge = "br-ul"
	// VMIf is the interface name inside a VM namespace.
	VMIf = "eth0"
	// UnderlayMTU is the MTU of the underlay links and br-phy.
	UnderlayMTU = 1600
	// VMMTU is the MTU of a VM of a network without mtu on an IPv4 lab
	// underlay: the underlay's less VXLAN's 50 bytes, as apply sets it.
	// The lab gives each VM its network's MTU (VMMTUOf).
	VMMTU = UnderlayMTU - topology.VXLANOverheadIPv4
	// DefaultRoot is where Up keeps each lab's state when Options.Dir is empty.
	DefaultRoot = "/run/ovs-vxctl/lab"
	// netnsDir is where iproute2 keeps named network namespaces.
	netnsDir = "/run/netns"
	// maxSocketPath is the longest Unix socket path Linux accepts.
	maxSocketPath = 107
	// maxHostName keeps "h-<host>" within the kernel's 15-character limit.
	maxHostName = 12
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// reservedIfs are interface names the lab or apply create in a host
// namespace; a port may not take one of them.
var reservedIfs = map[string]bool{
	"lo": true, UnderlayIf: true, PhyBridge: true, topology.BridgeInt: true, topology.BridgeTun: true, "ovs-netdev": true,
}

// dir is the state root of the lab.
func (o *Options) dir() string {
	if o.Dir != "" {
		return o.Dir
	}
	return filepath.Join(DefaultRoot, o.Topology.Name)
}

// UnderlayNS is the namespace holding the underlay bridge.
func UnderlayNS(o Options) string { return NSPrefix + o.Topology.Name }

// HostNS is the network namespace of host.
func HostNS(o Options, host string) string { return NSPrefix + o.Topology.Name + "." + host }

// VMNS is the network namespace of the VM behind port on host.
func VMNS(o Options, host, port string) string {
	return NSPrefix + o.Topology.Name + "." + host + "." + port
}

// HostInstance is the private OVS of managed host: its directory under the
// lab's state root and its namespace.
func HostInstance(o Options, host string) *ovsrun.Instance {
	return &ovsrun.Instance{Dir: filepath.Join(o.dir(), host), NetNS: HostNS(o, host)}
}

// isLabNS reports whether namespace name belongs to the lab of topology topo.
func isLabNS(topo, name string) bool {
	base := NSPrefix + topo
	return name == base || strings.HasPrefix(name, base+".")
}

// ulHostIf is the name of host's underlay veth end inside the underlay namespace.
func ulHostIf(host string) string { return "h-" + host }

// kernelBridge and kernelVXLAN name the Linux bridge and vxlan device of a
// network on an unmanaged host.
func kernelBridge(vni uint32) string { return fmt.Sprintf("br%d", vni) }
func kernelVXLAN(vni uint32) string  { return fmt.Sprintf("vx%d", vni) }

// PortMAC is the MAC a VM port gets: the declared one, else a stable locally
// administered unicast address derived from topology, host and port names.
func PortMAC(topo string, p *topology.Port) net.HardwareAddr {
	if len(p.MAC) == 6 {
		return p.MAC
	}
	sum := sha256.Sum256([]byte(topo + "/" + p.Host.Name + "/" + p.Name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
	return mac
}

// plan is everything Up builds, derived from the options once.
type plan struct {
	o        Options
	dir      string
	ul       string
	hosts    []*hostPlan
	ctrls    []controller // the controllers the lab runs, one per target
	withCtrl bool         // a managed host is in controller mode
}

type hostPlan struct {
	h      *topology.Host
	ns     string
	ulIf   string
	others []netip.Addr // VTEPs of the other hosts of the same family
	bits   int          // prefix length of the VTEP address: covers every VTEP of its family
	vms    []*vmPlan
	nets   []*netPlan // unmanaged hosts only
}

type vmPlan struct {
	port *topology.Port
	ns   string
	mac  net.HardwareAddr
}

// netPlan is one network on an unmanaged (kernel) host.
type netPlan struct {
	n        *topology.Network
	bridge   string
	vxlan    string
	peers    []netip.Addr   // head-end replication list
	internal *topology.Port // address of the bridge itself, if any
	vms      []*vmPlan
}

// newPlan checks the options and derives every name the lab uses.
func newPlan(o Options) (*plan, error) {
	t := o.Topology
	if t == nil {
		return nil, fmt.Errorf("no topology given")
	}
	if !nameRE.MatchString(t.Name) {
		return nil, fmt.Errorf("topology name %q: must be non-empty lowercase letters, digits and '-'", t.Name)
	}
	if len(t.Hosts) == 0 {
		return nil, fmt.Errorf("topology %q has no hosts", t.Name)
	}
	if !o.SkipApply {
		if o.Self == "" {
			return nil, fmt.Errorf("the path of the ovs-vxctl binary (Options.Self) is needed to run apply")
		}
		if !filepath.IsAbs(o.File) {
			return nil, fmt.Errorf("topology file %q: an absolute path is needed to run apply", o.File)
		}
	}
	p := &plan{o: o, dir: o.dir(), ul: UnderlayNS(o)}
	var err error
	if p.ctrls, err = controllers(t); err != nil {
		return nil, err
	}
	p.withCtrl = len(p.ctrls) > 0
	if !filepath.IsAbs(p.dir) {
		return nil, fmt.Errorf("state directory %q: an absolute path is needed", p.dir)
	}
	seen := map[string]bool{}
	for i, h := range t.Hosts {
		if !nameRE.MatchString(h.Name) || len(h.Name) > maxHostName {
			return nil, fmt.Errorf("hosts[%d].name %q: must be 1-%d lowercase letters, digits and '-'", i, h.Name, maxHostName)
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("hosts[%d].name %q is used twice", i, h.Name)
		}
		seen[h.Name] = true
		// The longest socket OVS makes there is ovs-vswitchd.<pid>.ctl.
		if sock := filepath.Join(p.dir, h.Name, "ovs-vswitchd.4194304.ctl"); h.Managed && len(sock) > maxSocketPath {
			return nil, fmt.Errorf("state directory %q is too long: OVS's socket %s would exceed %d bytes", p.dir, sock, maxSocketPath)
		}
		if !h.VTEP.IsValid() {
			return nil, fmt.Errorf("host %s has no vtep address", h.Name)
		}
		hp := &hostPlan{h: h, ns: HostNS(o, h.Name), ulIf: ulHostIf(h.Name)}
		family := []netip.Addr{h.VTEP.Unmap()}
		for _, other := range t.Hosts {
			if other != h && other.VTEP.Unmap().Is4() == h.VTEP.Unmap().Is4() {
				hp.others = append(hp.others, other.VTEP.Unmap())
				family = append(family, other.VTEP.Unmap())
			}
		}
		hp.bits = commonBits(family)
		ifs := map[string]string{} // interface name in the host namespace -> what it is
		for _, port := range t.PortsOn(h) {
			where := fmt.Sprintf("port %s/%s (network %s)", h.Name, port.Name, port.Network.Name)
			if port.Name == "" || len(port.Name) > 15 || strings.ContainsAny(port.Name, "/: \t\n") {
				return nil, fmt.Errorf("%s: not a valid interface name", where)
			}
			if reservedIfs[port.Name] {
				return nil, fmt.Errorf("%s: the name %q is used by the lab or apply on every host", where, port.Name)
			}
			if prev, ok := ifs[port.Name]; ok {
				return nil, fmt.Errorf("%s: name already used on that host by %s", where, prev)
			}
			ifs[port.Name] = where
			if port.Type == topology.PortVM || port.Type == "" {
				hp.vms = append(hp.vms, &vmPlan{port: port, ns: VMNS(o, h.Name, port.Name), mac: PortMAC(t.Name, port)})
			}
		}
		if h.IsHardwareVTEP() {
			if err := planHardwareVTEP(t, hp, ifs); err != nil {
				return nil, err
			}
		} else if !h.Managed {
			if err := planKernel(t, hp, ifs); err != nil {
				return nil, err
			}
		}
		p.hosts = append(p.hosts, hp)
	}
	return p, nil
}

// planKernel lays out the Linux bridges and vxlan devices of unmanaged host hp.
func planKernel(t *topology.Topology, hp *hostPlan, ifs map[string]string) error {
	h := hp.h
	for _, n := range t.NetworksOn(h) {
		np := &netPlan{n: n, bridge: kernelBridge(n.VNI), vxlan: kernelVXLAN(n.VNI)}
		for _, name := range []string{np.bridge, np.vxlan} {
			if prev, ok := ifs[name]; ok {
				return fmt.Errorf("host %s: network %s needs the interface name %s, already used by %s", h.Name, n.Name, name, prev)
			}
			ifs[name] = "network " + n.Name
		}
		for _, peer := range t.FloodPeers(h, n) {
			if peer.VTEP.Is4() != h.VTEP.Is4() {
				return fmt.Errorf("host %s and %s share network %s but their VTEPs are of different families", h.Name, peer.Name, n.Name)
			}
			// A Linux vxlan device learns a remote's address but not its
			// port, and answers every learned MAC on its own dstport: all
			// its tunnels must use that one port.
			if port := portOrDefault(topology.PairDstPort(h, peer)); port != portOrDefault(h.DstPort) {
				return fmt.Errorf("unmanaged hosts %s (dst_port %d) and %s (dst_port %d) share network %s: the lab's Linux VXLAN devices can only talk on one port; give them the same dst_port",
					h.Name, portOrDefault(h.DstPort), peer.Name, portOrDefault(peer.DstPort), n.Name)
			}
			np.peers = append(np.peers, peer.VTEP.Unmap())
		}
		for _, port := range n.PortsOn(h) {
			switch port.Type {
			case topology.PortInternal:
				if np.internal != nil {
					return fmt.Errorf("unmanaged host %s: network %s has two internal ports (%s, %s); the lab gives the network's bridge one address", h.Name, n.Name, np.internal.Name, port.Name)
				}
				np.internal = port
			default:
				for _, vm := range hp.vms {
					if vm.port == port {
						np.vms = append(np.vms, vm)
					}
				}
			}
		}
		hp.nets = append(hp.nets, np)
	}
	return nil
}

// commonBits is the length of the longest prefix shared by addrs (all of
// one family).
func commonBits(addrs []netip.Addr) int {
	bits := addrs[0].BitLen()
	for _, a := range addrs[1:] {
		for bits > 0 {
			p1, _ := addrs[0].Prefix(bits)
			if p1.Contains(a) {
				break
			}
			bits--
		}
	}
	return bits
}

// hostBits is the prefix length of a single address of a's family.
func hostBits(a netip.Addr) int {
	if a.Is4() {
		return 32
	}
	return 128
}

// VMMTUOf is the MTU the lab gives the VM of port p, both ends of its
// veth: its network's MTU as apply computes it on the lab's underlay, so
// that every frame the VM sends fits the tunnel.
func VMMTUOf(p *topology.Port) int {
	return topology.EffectiveMTU(p.Network, p.Host.VTEP, UnderlayMTU)
}
