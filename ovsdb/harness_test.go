package ovsdb

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// lab is one private OVS (ovsdb-server + ovs-vswitchd, userspace datapath)
// running in its own network namespace, so that the tap devices of br-int
// and br-tun cannot meet those of any other OVS on the machine.
type lab struct {
	t   testing.TB
	ovs *ovsrun.Instance
	c   *Client
	ctx context.Context
}

// newLab starts OVS and connects a Client to it; everything is torn down
// when the test ends (the OVS directory, with its logs, stays if it failed).
func newLab(t testing.TB) *lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	l := &lab{t: t, ovs: ovsruntest.Start(t, "hy"), ctx: ctx}
	c, err := Connect(ctx, l.ovs.DBEndpoint(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	l.c = c
	// Registered after Start's clean-up, so it runs before OVS stops.
	t.Cleanup(func() { c.Close() })
	return l
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
	ovsruntest.Run(l.t, l.ovs.NetNS, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	ovsruntest.Run(l.t, l.ovs.NetNS, "ip", "link", "set", name, "up")
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
