package ovstest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// ExampleFlows are the flows of every example topology: for every managed
// host, br-int's and br-tun's compiled flows, the controller's entries for
// the declared endpoints and the VLAN advertisements (the flows the golden
// files hold, and more).
func ExampleFlows(tb testing.TB) []flows.Flow {
	tb.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the examples")
	}
	files, err := filepath.Glob(filepath.Join(filepath.Dir(here), "..", "..", "examples", "*", "topology.yaml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no examples found: %v", err)
	}
	var out []flows.Flow
	for _, file := range files {
		topo, err := topology.Load(file)
		if err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		for _, h := range topo.ManagedHosts() {
			alloc, err := topo.Allocate(h, topology.Allocation{})
			if err != nil {
				tb.Fatalf("%s host %s: %v", file, h.Name, err)
			}
			prog, err := flows.Compile(topo, h, alloc)
			if err != nil {
				tb.Fatalf("%s host %s: %v", file, h.Name, err)
			}
			out = append(out, prog.Int...)
			out = append(out, prog.Tun...)
			out = append(out, flows.CompileEndpoints(topo, h, alloc, flows.DeclaredEndpoints(topo))...)
			out = append(out, flows.CompileAllocation(alloc)...)
		}
	}
	return out
}
