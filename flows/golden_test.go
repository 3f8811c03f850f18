package flows

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files of examples/")

// Every example compiles, for every managed host, to exactly its golden
// file examples/<name>/golden/<host>.<bridge>.flows (go test -update rewrites
// them; review the diff).
func TestExamplesMatchGoldenFiles(t *testing.T) {
	files, err := filepath.Glob("../examples/*/topology.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, file := range files {
		topo, err := topology.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		dir := filepath.Join(filepath.Dir(file), "golden")
		for _, h := range topo.ManagedHosts() {
			alloc, err := topo.Allocate(h, topology.Allocation{})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := Compile(topo, h, alloc)
			if err != nil {
				t.Fatalf("%s host %s: %v", file, h.Name, err)
			}
			for bridge, fl := range map[string][]Flow{topology.BridgeTun: prog.Tun, topology.BridgeInt: prog.Int} {
				got := strings.Join(lines(fl), "\n") + "\n"
				path := filepath.Join(dir, h.Name+"."+bridge+".flows")
				if *update {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./flows -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the compiled flows:\n--- golden\n%s\n+++ compiled\n%s", path, want, got)
				}
			}
		}
	}
}
