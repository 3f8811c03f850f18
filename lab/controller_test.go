package lab

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// controllerTopo is sampleTopo in controller mode with the given targets.
func controllerTopo(t *testing.T, targets ...string) *topology.Topology {
	top := sampleTopo(t)
	for _, h := range top.Hosts {
		h.Mode = topology.ModeController
	}
	top.Controller, top.Controllers = targets[0], targets
	return top
}

func TestOneControllerAsBefore(t *testing.T) {
	p, err := newPlan(Options{Topology: controllerTopo(t, "tcp:192.168.50.254:6653"), SkipApply: true, Self: "/x", File: "/t.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ctrls) != 1 || p.ctrls[0].name != "" || p.ctrls[0].log != ControllerLog || !p.withCtrl {
		t.Fatalf("controllers = %+v", p.ctrls)
	}
	args := strings.Join(p.controllerArgs(p.ctrls[0]), " ")
	want := "netns exec vx-demo /x controller -f /t.yaml --listen tcp:192.168.50.254:6653 --state-file " + filepath.Join(p.dir, "controller-state.json")
	if args != want {
		t.Errorf("args = %q, want %q", args, want)
	}
	// The caller's own --state-file wins.
	p.o.ControllerArgs = []string{"--state-file=/var/lib/x.json"}
	if args := p.controllerArgs(p.ctrls[0]); slices.Contains(args, "--state-file") || !slices.Contains(args, "--state-file=/var/lib/x.json") {
		t.Errorf("args with the caller's --state-file = %q", args)
	}
}

func TestOneControllerPerReplica(t *testing.T) {
	targets := []string{"tcp:192.168.50.254:6653", "tcp:192.168.50.253:6653", "tcp:192.168.50.254:6654"}
	p, err := newPlan(Options{Topology: controllerTopo(t, targets...), SkipApply: true, Self: "/x", File: "/t.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ctrls) != 3 {
		t.Fatalf("controllers = %+v", p.ctrls)
	}
	names := map[string]bool{}
	for i, c := range p.ctrls {
		if c.target != targets[i] || c.name != ReplicaName(i) || c.log != ReplicaLog(c.name) || names[c.name] {
			t.Errorf("controller %d = %+v", i, c)
		}
		names[c.name] = true
		args := p.controllerArgs(c)
		if i := slices.Index(args, "--name"); i < 0 || args[i+1] != c.name || !slices.Contains(args, c.target) ||
			!slices.Contains(args, filepath.Join(p.dir, "controller-state-"+c.name+".json")) {
			t.Errorf("args = %q", args)
		}
	}
	// Two distinct addresses, both routed from every host of their family.
	if ips := p.controllerIPs(); len(ips) != 2 {
		t.Errorf("controller IPs = %v", ips)
	}
	lines := strings.Join(p.vtepLines(p.hosts[0], "eth0"), "\n")
	for _, ip := range []string{"192.168.50.254", "192.168.50.253"} {
		if !strings.Contains(lines, "route add "+ip+"/32 dev eth0") {
			t.Errorf("no route to %s:\n%s", ip, lines)
		}
	}
}
