package lab

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// topoBuilder assembles a topology.Topology value in Go, as validation would
// resolve it, without depending on the file parser.
type topoBuilder struct{ t *topology.Topology }

func newTopo(name string) *topoBuilder {
	return &topoBuilder{t: &topology.Topology{Name: name}}
}

func (b *topoBuilder) host(name, vtep string, managed bool, dstPort uint16) *topoBuilder {
	if dstPort == 0 {
		dstPort = topology.DefaultDstPort
	}
	b.t.Hosts = append(b.t.Hosts, &topology.Host{
		Name: name, VTEP: netip.MustParseAddr(vtep), Managed: managed, Mode: topology.ModeLearn,
		DstPort: dstPort, Datapath: topology.DatapathNetdev, LearnTimeout: topology.DefaultLearnTimeout,
	})
	return b
}

func (b *topoBuilder) network(name string, vni uint32) *topoBuilder {
	b.t.Networks = append(b.t.Networks, &topology.Network{Name: name, VNI: vni})
	return b
}

// port adds a port to the last network; mac, ip and gw may be empty.
func (b *topoBuilder) port(tb testing.TB, host, name string, typ topology.PortType, mac, ip, gw string) *topoBuilder {
	n := b.t.Networks[len(b.t.Networks)-1]
	p := &topology.Port{Network: n, Host: b.t.Host(host), Name: name, Type: typ}
	if p.Host == nil {
		tb.Fatalf("no host %s", host)
	}
	if mac != "" {
		m, err := net.ParseMAC(mac)
		if err != nil {
			tb.Fatal(err)
		}
		p.MAC = m
	}
	if ip != "" {
		p.IP = netip.MustParsePrefix(ip)
	}
	if gw != "" {
		p.Gateway = netip.MustParseAddr(gw)
	}
	n.Ports = append(n.Ports, p)
	return b
}
