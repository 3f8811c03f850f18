package flows

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// benchTopology is the shape of bench's 100,000-flow set (bench/flowset.go,
// without its learned MACs): hosts = networks = 200, k ports a network on k
// consecutive hosts, every host in controller mode, every port with a MAC
// and an IPv4 address; host h0000 sits in k networks with k-1 peers each.
func benchTopology(tb testing.TB, hosts, k int) *topology.Topology {
	var b strings.Builder
	fmt.Fprintf(&b, "name: bench\ncontroller: tcp:127.0.0.1:6653\ndefaults: {mode: controller, datapath: netdev}\nhosts:\n")
	for i := 0; i < hosts; i++ {
		fmt.Fprintf(&b, "  - {name: h%04d, vtep: 172.16.%d.%d}\n", i, i>>8, i&255)
	}
	b.WriteString("networks:\n")
	port := 0
	for n := 0; n < hosts; n++ {
		fmt.Fprintf(&b, "  - name: net%d\n    vni: %d\n    ports:\n", n, 1000+n)
		for j := 0; j < k; j++ {
			h := (n*7919%hosts + j) % hosts
			ip := uint32(10)<<24 + uint32(n)*4096 + uint32(j) + 1
			fmt.Fprintf(&b, "      - {host: h%04d, name: p%d-%d, mac: \"52:54:00:%02x:%02x:%02x\", ip: %d.%d.%d.%d/20}\n",
				h, n, j, byte(port>>16), byte(port>>8), byte(port), byte(ip>>24), byte(ip>>16), byte(ip>>8), byte(ip))
			port++
		}
	}
	t, err := topology.Parse([]byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// BenchmarkCompileHost100k is what a controller compiles for one switch of
// ~100,000 flows: Compile and CompileEndpoints of every declared port.
//
//	go test ./flows -run '^$' -bench CompileHost100k -cpuprofile /tmp/c.prof
func BenchmarkCompileHost100k(b *testing.B) {
	t := benchTopology(b, 200, 141)
	h := t.Hosts[0]
	alloc, err := t.Allocate(h, topology.Allocation{})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		prog, err := Compile(t, h, alloc)
		if err != nil {
			b.Fatal(err)
		}
		n = len(prog.Tun) + len(CompileEndpoints(t, h, alloc, DeclaredEndpoints(t)))
	}
	b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(n), "flows")
}

// BenchmarkCompileEndpointsOneByOne is the controller's cache build
// (controller/fastpath.go): CompileEndpoints called once per endpoint.
func BenchmarkCompileEndpointsOneByOne(b *testing.B) {
	t := benchTopology(b, 200, 141)
	h := t.Hosts[0]
	alloc, err := t.Allocate(h, topology.Allocation{})
	if err != nil {
		b.Fatal(err)
	}
	eps := DeclaredEndpoints(t)
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n = 0
		for _, e := range eps {
			n += len(CompileEndpoints(t, h, alloc, []Endpoint{e}))
		}
	}
	b.ReportMetric(float64(n), "flows")
}

// processCPU is this process's CPU time (every thread, GC included): on a
// loaded machine it is steadier than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
