package main

import (
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func TestReplicasTopologyParses(t *testing.T) {
	yaml := replicasTopology(3, []string{"127.0.0.1:6653", "127.0.0.1:6654"},
		[]string{"tcp:127.0.0.21:6641", "tcp:127.0.0.22:6641", "tcp:127.0.0.23:6641"})
	top, err := topology.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	if len(top.Controllers) != 2 || top.Controllers[1] != "tcp:127.0.0.1:6654" || len(top.Directory) != 3 ||
		len(top.Hosts) != 3 || len(top.Networks) != 1 || len(top.Networks[0].Ports) != 3 {
		t.Fatalf("parsed %+v", top)
	}
	for _, h := range top.Hosts {
		if h.Mode != topology.ModeController {
			t.Errorf("host %s in mode %s", h.Name, h.Mode)
		}
	}
}
