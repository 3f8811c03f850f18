package main

import (
	"errors"
	"fmt"
	"math"
	"net"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// flowSet is what a controller installs on br-tun of one host of a generated
// topology: the compiled pipeline plus the controller's entries for every
// declared port (CompileEndpoints), topped up with MACs "learned" from
// packet-ins on peer hosts until the set holds the wanted number of flows.
type flowSet struct {
	size     Size
	extra    []extraPort
	topo     *topology.Topology
	host     *topology.Host
	alloc    topology.Allocation
	learned  []flows.Endpoint
	flows    []flows.Flow
	compiled int // flows from Compile; the rest are from CompileEndpoints
}

// shapeFor is a topology whose bench host gets close to n flows (and not
// more) before learned MACs: Hosts = Networks, k ports a network, so the
// host sits in k networks with k-1 peers each, and each peer port gives a
// table-2, a table-20 and an ARP-responder flow: about 3k(k-1) flows.
func shapeFor(n int) Size {
	k := int(math.Sqrt(float64(n)/3)) - 1
	k = max(k, 2)
	h := max(200, k+1)
	return Size{Hosts: h, Networks: h, Ports: h * k}
}

// flowSetOf is buildFlowSet of n flows from shapeFor(n), shrunk while the
// topology alone gives the host more than n flows: how many flows a peer
// port costs follows the compiler (3 when shapeFor was written), and is
// measured here from the first try.
func flowSetOf(n int) (*flowSet, error) {
	s := shapeFor(n)
	for {
		fs, err := buildFlowSet(s, n)
		var over tooManyFlows
		if !errors.As(err, &over) {
			return fs, err
		}
		k := s.perNet()
		perPair := float64(over.have) / float64(k*(k-1))
		next := int((1 + math.Sqrt(1+4*float64(n)/perPair)) / 2)
		if next >= k {
			next = k - 1
		}
		if next < 2 {
			return nil, err
		}
		h := max(200, next+1)
		s = Size{Hosts: h, Networks: h, Ports: h * next}
	}
}

// tooManyFlows is buildFlowSet's error for a topology that alone gives the
// host more flows than wanted.
type tooManyFlows struct {
	size        Size
	host        string
	have, total int
}

func (e tooManyFlows) Error() string {
	return fmt.Sprintf("topology %s gives host %s %d flows, more than the %d wanted", e.size, e.host, e.have, e.total)
}

// benchHost is the host whose br-tun the benchmark programs.
const benchHost = 0

// buildFlowSet generates a topology of shape s and compiles host h0000's
// br-tun, with as many learned endpoints as it takes to reach total flows
// exactly.
func buildFlowSet(s Size, total int) (*flowSet, error) {
	t, err := genTopology(s)
	if err != nil {
		return nil, err
	}
	h := t.Hosts[benchHost]
	alloc, err := t.Allocate(h, topology.Allocation{})
	if err != nil {
		return nil, fmt.Errorf("allocating for %s: %w", h.Name, err)
	}
	fs := &flowSet{size: s, topo: t, host: h, alloc: alloc}
	prog, err := flows.Compile(t, h, alloc)
	if err != nil {
		return nil, err
	}
	// Count the declared endpoints' flows one endpoint at a time: compiling
	// them all twice would cost as much as the final compile.
	have := len(prog.Tun)
	for _, e := range flows.DeclaredEndpoints(t) {
		have += len(flows.CompileEndpoints(t, h, alloc, []flows.Endpoint{e}))
	}
	missing := total - have
	if missing < 0 {
		return nil, tooManyFlows{s, h.Name, have, total}
	}
	// Each learned MAC on a peer adds exactly one table-20 entry.
	fs.learned = learnedEndpoints(t, h, missing)
	if err := fs.compile(); err != nil {
		return nil, err
	}
	if len(fs.flows) != total {
		return nil, fmt.Errorf("flow set for %s: %d flows, want %d", s, len(fs.flows), total)
	}
	return fs, nil
}

// compile sets fs.flows from the topology, allocation and learned MACs.
func (fs *flowSet) compile() error {
	prog, err := flows.Compile(fs.topo, fs.host, fs.alloc)
	if err != nil {
		return err
	}
	eps := append(flows.DeclaredEndpoints(fs.topo), fs.learned...)
	fs.compiled = len(prog.Tun)
	// As a controller would: the endpoints' flows written after the
	// pipeline's, not copied there (20 MB at 100,000 flows).
	fs.flows = flows.AppendEndpoints(prog.Tun, fs.topo, fs.host, fs.alloc, eps)
	return nil
}

// learnedEndpoints makes n MACs on h's peers, spread over h's networks, as
// a controller learns them from packet-ins (no IPs: nothing to answer ARP
// for).
func learnedEndpoints(t *topology.Topology, h *topology.Host, n int) []flows.Endpoint {
	type slot struct {
		vni  uint32
		peer string
	}
	var slots []slot
	for _, nw := range t.NetworksOn(h) {
		for _, p := range t.FloodPeers(h, nw) {
			slots = append(slots, slot{nw.VNI, p.Name})
		}
	}
	out := make([]flows.Endpoint, 0, n)
	for i := 0; i < n && len(slots) > 0; i++ {
		s := slots[i%len(slots)]
		out = append(out, flows.Endpoint{VNI: s.vni, Host: s.peer, Learned: true,
			MAC: net.HardwareAddr{0x52, 0x54, 0x01, byte(i >> 16), byte(i >> 8), byte(i)}})
	}
	return out
}

// withExtraPort is fs after one more port: on the first network of the
// bench host, on the first host that has no port in it yet. The allocation
// carries over, as apply reads it back from OVSDB.
func (fs *flowSet) withExtraPort() (*flowSet, error) {
	nets := fs.topo.NetworksOn(fs.host)
	if len(nets) == 0 {
		return nil, fmt.Errorf("host %s has no network", fs.host.Name)
	}
	nw := nets[0]
	netIdx := int(nw.VNI) - vni(0)
	hostIdx := -1
	for i, h := range fs.topo.Hosts {
		if i != benchHost && !nw.HasPortOn(h) {
			hostIdx = i
			break
		}
	}
	if hostIdx < 0 {
		return nil, fmt.Errorf("every host has a port in %s", nw.Name)
	}
	extra := append(append([]extraPort(nil), fs.extra...), extraPort{net: netIdx, host: hostIdx, idx: len(fs.extra)})
	t, err := genTopology(fs.size, extra...)
	if err != nil {
		return nil, err
	}
	h := t.Hosts[benchHost]
	alloc, err := t.Allocate(h, fs.alloc)
	if err != nil {
		return nil, err
	}
	out := &flowSet{size: fs.size, extra: extra, topo: t, host: h, alloc: alloc, learned: fs.learned}
	return out, out.compile()
}
