package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Size is a generated topology's shape: Hosts VTEPs, Networks VNIs and Ports
// ports spread evenly over the networks.
type Size struct {
	Hosts, Networks, Ports int
}

func (s Size) String() string {
	return fmt.Sprintf("%dh x %dn x %dp", s.Hosts, s.Networks, s.Ports)
}

// perNet is how many ports each network has.
func (s Size) perNet() int { return s.Ports / s.Networks }

// start is the first host of network n. 7919 is prime, so for any host
// count below it the starts of the first Hosts networks are all different.
func (s Size) start(n int) int { return n * 7919 % s.Hosts }

// topoYAML renders a topology file of shape s, every host in controller mode
// on the userspace datapath, every port with a MAC and an address. Network n
// has its k ports on the run of k hosts that starts at host start(n),
// wrapping round (several ports on one host when k > Hosts): each host sits
// in about Networks*k/Hosts networks (exactly k when Networks == Hosts and
// k <= Hosts) and shares them with the hosts near it. extra adds ports to
// the generated ones.
func topoYAML(s Size, extra ...extraPort) string {
	var b strings.Builder
	b.Grow(s.Ports*100 + s.Hosts*60)
	fmt.Fprintf(&b, "name: %sgen\ncontroller: tcp:127.0.0.1:6653\ndefaults: {mode: controller, datapath: netdev}\nhosts:\n", Prefix)
	for i := 0; i < s.Hosts; i++ {
		fmt.Fprintf(&b, "  - {name: %s, vtep: %s}\n", hostName(i), vtep(i))
	}
	b.WriteString("networks:\n")
	k := s.perNet()
	port := 0
	for n := 0; n < s.Networks; n++ {
		fmt.Fprintf(&b, "  - name: net%d\n    vni: %d\n    ports:\n", n, vni(n))
		for j := 0; j < k; j++ {
			h := (s.start(n) + j) % s.Hosts
			fmt.Fprintf(&b, "      - {host: %s, name: p%d-%d, mac: %q, ip: %s/20}\n", hostName(h), n, j, mac(port), portIP(n, j))
			port++
		}
		for _, e := range extra {
			if e.net == n {
				fmt.Fprintf(&b, "      - {host: %s, name: x%d-%d, mac: %q, ip: %s/20}\n", hostName(e.host), n, e.idx, mac(0xf00000+e.idx), portIP(n, 4000+e.idx))
			}
		}
	}
	return b.String()
}

// extraPort is a port added to a generated topology (the small change).
type extraPort struct{ net, host, idx int }

func hostName(i int) string { return fmt.Sprintf("h%04d", i) }
func vni(n int) int         { return 1000 + n }

func vtep(i int) string {
	return netip.AddrFrom4([4]byte{172, byte(16 + i>>16), byte(i >> 8), byte(i)}).String()
}

func mac(i int) string {
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))
}

// portIP gives network n the /20 10.0.0.0 + n*4096 and port j its j+1st address.
func portIP(n, j int) string {
	v := uint32(10)<<24 + uint32(n)*4096 + uint32(j) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// genTopology parses topoYAML(s): the realistic path, through validation.
func genTopology(s Size, extra ...extraPort) (*topology.Topology, error) {
	t, err := topology.Parse([]byte(topoYAML(s, extra...)))
	if err != nil {
		return nil, fmt.Errorf("generated topology %s: %w", s, err)
	}
	return t, nil
}
