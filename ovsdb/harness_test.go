package ovsdb

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// lab is one private OVS (ovsdb-server + ovs-vswitchd, userspace datapath)
// running in its own network namespace, so that the tap devices of br-int
// and br-tun cannot meet those of any other OVS on the machine.
type lab struct {
	t    testing.TB
	ovs  *ovsrun.Instance
	c    *Client
	ctx  context.Context
	veth []string
}

var labSeq atomic.Int32

// newLab starts OVS and connects a Client to it; everything is torn down
// when the test ends.
func newLab(t testing.TB) *lab {
	t.Helper()
	for _, bin := range []string{"ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: these tests need Open vSwitch (apt-get install openvswitch-switch)", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("these tests need root (network namespaces, OVS)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns := fmt.Sprintf("hy%d-%d", os.Getpid()%100000, labSeq.Add(1))
	dir, err := os.MkdirTemp("/tmp", "hy")
	if err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "add", ns)
	l := &lab{t: t, ovs: &ovsrun.Instance{Dir: dir, NetNS: ns}, ctx: ctx}
	t.Cleanup(func() {
		if l.c != nil {
			l.c.Close()
		}
		if err := l.ovs.Stop(context.Background()); err != nil {
			t.Logf("stopping OVS: %v", err)
		}
		exec.Command("ip", "netns", "del", ns).Run()
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("OVS logs kept in %s", dir)
		}
	})
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	if err := l.ovs.Start(ctx, true); err != nil {
		t.Fatalf("starting OVS: %v", err)
	}
	c, err := Connect(ctx, l.ovs.DBEndpoint(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	l.c = c
	return l
}

// run runs a command and fails the test if it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// vsctl runs ovs-vsctl against the lab's database.
func (l *lab) vsctl(args ...string) string {
	l.t.Helper()
	out, err := l.ovs.Vsctl(l.ctx, args...)
	if err != nil {
		l.t.Fatalf("%v", err)
	}
	return strings.TrimSpace(out)
}

// get returns one column (or map key) of a row, as ovs-vsctl prints it.
func (l *lab) get(table, record, column string) string {
	l.t.Helper()
	return l.vsctl("--if-exists", "get", table, record, column)
}

// veth creates a veth pair name/name+"p" in the lab's namespace: the kernel
// interface a VM port attaches.
func (l *lab) vethPair(name string) {
	l.t.Helper()
	run(l.t, "ip", "netns", "exec", l.ovs.NetNS, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	run(l.t, "ip", "netns", "exec", l.ovs.NetNS, "ip", "link", "set", name, "up")
	l.t.Cleanup(func() {
		exec.Command("ip", "netns", "exec", l.ovs.NetNS, "ip", "link", "del", name).Run()
	})
}

// reconcile runs the whole apply sequence for h: read the allocation,
// allocate, plan, apply. It returns the plan.
func (l *lab) reconcile(t *topology.Topology, h *topology.Host) *Plan {
	l.t.Helper()
	return l.reconcileWith(t, h, PlanOptions{})
}

// reconcileWith is reconcile with plan options.
func (l *lab) reconcileWith(t *topology.Topology, h *topology.Host, opts PlanOptions) *Plan {
	l.t.Helper()
	plan, err := l.tryPlan(t, h, opts)
	if err != nil {
		l.t.Fatalf("Plan: %v", err)
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		l.t.Fatalf("Apply: %v", err)
	}
	return plan
}

// planOnly plans the apply of h without applying it.
func (l *lab) planOnly(t *topology.Topology, h *topology.Host) *Plan {
	l.t.Helper()
	return l.planOnlyWith(t, h, PlanOptions{})
}

// planOnlyWith is planOnly with plan options.
func (l *lab) planOnlyWith(t *topology.Topology, h *topology.Host, opts PlanOptions) *Plan {
	l.t.Helper()
	plan, err := l.tryPlan(t, h, opts)
	if err != nil {
		l.t.Fatalf("Plan: %v", err)
	}
	return plan
}

// tryPlan reads the allocation, allocates and plans; only the plan's own
// error is returned.
func (l *lab) tryPlan(t *topology.Topology, h *topology.Host, opts PlanOptions) (*Plan, error) {
	l.t.Helper()
	prev, err := l.c.CurrentAllocation(t, h)
	if err != nil {
		l.t.Fatalf("CurrentAllocation: %v", err)
	}
	alloc, err := t.Allocate(h, prev)
	if err != nil {
		l.t.Fatalf("Allocate: %v", err)
	}
	return l.c.PlanWith(l.ctx, t, h, alloc, opts)
}

// topo builds a topology directly (the parser is not used here):
//
//	host1 (managed, 192.168.50.1) hxvm1 in tenant-a, hxint1 in tenant-b
//	host2 (managed, 192.168.50.2) a port in tenant-a
//	host3 (unmanaged, 192.168.50.3, dst_port 8472) a port in tenant-b
func topo(mode topology.Mode) *topology.Topology {
	host := func(name, vtep string, managed bool, dst uint16) *topology.Host {
		return &topology.Host{
			Name: name, VTEP: netip.MustParseAddr(vtep), Managed: managed, Mode: mode,
			DstPort: dst, Datapath: topology.DatapathNetdev, LearnTimeout: 300,
		}
	}
	h1 := host("host1", "192.168.50.1", true, 4789)
	h2 := host("host2", "192.168.50.2", true, 4789)
	h3 := host("host3", "192.168.50.3", false, 8472)
	t := &topology.Topology{Name: "hxtest", Hosts: []*topology.Host{h1, h2, h3}}
	if mode == topology.ModeController {
		t.Controller = "tcp:127.0.0.1:6653"
	}
	t.Networks = []*topology.Network{{Name: "tenant-a", VNI: 100}, {Name: "tenant-b", VNI: 200}}
	addPort(t.Networks[0], h1, "hxvm1", topology.PortVM)
	addPort(t.Networks[0], h2, "vm2", topology.PortVM)
	addPort(t.Networks[1], h1, "hxint1", topology.PortInternal)
	addPort(t.Networks[1], h3, "vm3", topology.PortVM)
	return t
}

func addPort(n *topology.Network, h *topology.Host, name string, typ topology.PortType) *topology.Port {
	p := &topology.Port{Network: n, Host: h, Name: name, Type: typ}
	n.Ports = append(n.Ports, p)
	return p
}
