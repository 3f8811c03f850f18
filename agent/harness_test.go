package agent

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// host is one private OVS in a network namespace of its own, on which the
// tests run Apply as `ip netns exec NS ovs-vxctl apply` would.
type host struct {
	t   *testing.T
	ovs *ovsrun.Instance
	ctx context.Context
}

func newHost(t *testing.T) *host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &host{t: t, ovs: ovsruntest.Start(t, "ag"), ctx: ctx}
}

// ip runs ip(8) in the host's namespace.
func (h *host) ip(args ...string) string {
	h.t.Helper()
	return ovsruntest.Run(h.t, h.ovs.NetNS, "ip", args...)
}

// veth creates the veth pair name/name+"p", both up, in the host.
func (h *host) veth(name string) {
	h.t.Helper()
	h.ip("link", "add", name, "type", "veth", "peer", "name", name+"p")
	h.ip("link", "set", name, "up")
	h.ip("link", "set", name+"p", "up")
}

// hasAddr reports whether dev holds prefix (as `ip -o addr show` prints it).
func (h *host) hasAddr(dev, prefix string) bool {
	h.t.Helper()
	return strings.Contains(h.ip("-o", "addr", "show", "dev", dev), " "+prefix+" ")
}

func (h *host) vsctl(args ...string) string {
	h.t.Helper()
	out, err := h.ovs.Vsctl(h.ctx, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// ovsdbState is what must not change when apply refuses: the names of all
// bridges, ports and interfaces, and next_cfg (every transaction of apply
// bumps it).
func (h *host) ovsdbState() string {
	h.t.Helper()
	var parts []string
	for _, table := range []string{"Bridge", "Port", "Interface"} {
		names := strings.Fields(h.vsctl("--bare", "--columns=name", "list", table))
		slices.Sort(names)
		parts = append(parts, table+": "+strings.Join(names, " "))
	}
	return strings.Join(append(parts, "next_cfg: "+h.vsctl("get", "Open_vSwitch", ".", "next_cfg")), "\n")
}

// options are the apply options of host1 of t against this OVS.
func (h *host) options(t *topology.Topology) Options {
	return Options{Topology: t, Host: t.Host("host1"), DB: h.ovs.DBEndpoint(), RunDir: h.ovs.Dir, Log: zaptest.NewLogger(h.t)}
}

// apply runs Apply inside the host's network namespace, so that its ip(8)
// commands see and change the host's interfaces, not the test machine's.
func (h *host) apply(o Options) (*Report, error) {
	h.t.Helper()
	var rep *Report
	err := h.inNS(func() (err error) {
		rep, err = Apply(h.ctx, o)
		return err
	})
	return rep, err
}

// inNS runs fn inside the host's network namespace, on a thread of its own
// that comes back out afterwards.
func (h *host) inNS(fn func() error) error {
	return ovsruntest.InNetNS(h.ovs.NetNS, fn)
}

// diffFlows runs DiffFlows and fails the test on error.
func (h *host) diffFlows(o Options) []BridgeFlows {
	h.t.Helper()
	var res []BridgeFlows
	if err := h.inNS(func() (err error) {
		res, err = DiffFlows(h.ctx, o)
		return err
	}); err != nil {
		h.t.Fatalf("diff-flows: %v", err)
	}
	return res
}

// ofctl runs ovs-ofctl -O OpenFlow13 VERB on bridge of the host.
func (h *host) ofctl(verb, bridge string, args ...string) string {
	h.t.Helper()
	out, err := h.ovs.Ofctl(h.ctx, verb, bridge, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// mustApply applies and fails the test on error.
func (h *host) mustApply(o Options) *Report {
	h.t.Helper()
	rep, err := h.apply(o)
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	return rep
}

// refused applies, expects an error naming every part, and checks that
// OVSDB did not change.
func (h *host) refused(o Options, parts ...string) error {
	h.t.Helper()
	before := h.ovsdbState()
	_, err := h.apply(o)
	wantErrParts(h.t, "apply", err, parts...)
	if after := h.ovsdbState(); after != before {
		h.t.Errorf("OVSDB changed by a refused apply:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	return err
}

// twoHosts is host1 (192.168.50.1) and host2 (192.168.50.2), learn mode,
// userspace datapath, sharing network tenant-a (VNI 100) with one vm port
// vm2 on host2; ports adds host1's ports to it: name -> type.
func twoHosts(ports ...portSpec) *topology.Topology {
	host := func(name, vtep string) *topology.Host {
		return &topology.Host{Name: name, VTEP: netip.MustParseAddr(vtep), Managed: true, Mode: topology.ModeLearn,
			DstPort: 4789, Datapath: topology.DatapathNetdev, LearnTimeout: 300}
	}
	h1, h2 := host("host1", "192.168.50.1"), host("host2", "192.168.50.2")
	n := &topology.Network{Name: "tenant-a", VNI: 100}
	t := &topology.Topology{Name: "agtest", Hosts: []*topology.Host{h1, h2}, Networks: []*topology.Network{n}}
	n.Ports = append(n.Ports, &topology.Port{Network: n, Host: h2, Name: "vm2", Type: topology.PortVM})
	for _, p := range ports {
		tp := &topology.Port{Network: n, Host: h1, Name: p.name, Type: p.typ}
		if p.ip != "" {
			tp.IP = netip.MustParsePrefix(p.ip)
		}
		n.Ports = append(n.Ports, tp)
	}
	return t
}

// portSpec is one port of host1.
type portSpec struct {
	name string
	typ  topology.PortType
	ip   string
}

func vmPort(name string) portSpec           { return portSpec{name, topology.PortVM, ""} }
func internalPort(name, ip string) portSpec { return portSpec{name, topology.PortInternal, ip} }
