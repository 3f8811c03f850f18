package controller

import (
	"net"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// BenchmarkFanoutRecompile is the CPU an incremental update costs one
// switch before it reaches the wire: one new MAC learned on another host,
// against a cache of 200 endpoints, the memo warm (another switch of the
// same kind compiled it), then the cache updated and put back.
//
//	go test ./controller -run '^$' -bench FanoutRecompile -benchmem
func BenchmarkFanoutRecompile(b *testing.B) {
	topo := parseTopo(b, testTopo)
	h := topo.Host("h2")
	alloc, err := topo.Allocate(h, topology.Allocation{})
	if err != nil {
		b.Fatal(err)
	}
	prog, err := flows.Compile(topo, h, alloc)
	if err != nil {
		b.Fatal(err)
	}
	var eps []flows.Endpoint
	for i := range 200 {
		eps = append(eps, flows.Endpoint{VNI: 100, MAC: net.HardwareAddr{2, 0, 1, 0, byte(i >> 8), byte(i)}, Host: "h1", Learned: true})
	}
	m := newEndpointMemo()
	c, _, ok := buildCache(m, topo, h, alloc, prog.Tun, eps, 1)
	if !ok {
		b.Fatal("no cache")
	}
	e := flows.Endpoint{VNI: 100, MAC: net.HardwareAddr{2, 0, 9, 9, 9, 9}, Host: "h1", Learned: true}
	key, _ := KeyOf(e.VNI, e.MAC)
	eps1 := map[MACKey]flows.Endpoint{key: e}
	present, gone := map[MACKey]bool{key: true}, map[MACKey]bool{key: false}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ch, err := c.recompileShared(m, eps1, present)
		if err != nil || len(ch.want) == 0 {
			b.Fatalf("adding: %v (%d flows)", err, len(ch.want))
		}
		c.apply(ch.cacheChange, present, 2)
		ch, err = c.recompileShared(m, nil, gone)
		if err != nil || len(ch.old) == 0 {
			b.Fatalf("removing: %v (%d flows)", err, len(ch.old))
		}
		c.apply(ch.cacheChange, gone, 1)
	}
}
