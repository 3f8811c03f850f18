package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func sampleTopo(tb testing.TB) *topology.Topology {
	return newTopo("demo").
		host("h1", "192.168.50.1", true, 0).
		host("h2", "192.168.60.2", true, 0).
		host("k1", "192.168.70.3", false, 8472).
		network("a", 100).
		port(tb, "h1", "web", topology.PortVM, "52:54:00:00:01:02", "10.1.1.2/24", "10.1.1.1").
		port(tb, "h2", "web", topology.PortVM, "", "10.1.1.3/24", "").
		port(tb, "h2", "gw-a", topology.PortInternal, "", "10.1.1.1/24", "").
		port(tb, "k1", "kweb", topology.PortVM, "52:54:00:00:01:09", "10.1.1.9/24", "").
		network("b", 200).
		port(tb, "h1", "db", topology.PortVM, "", "10.2.2.2/24", "").
		t
}

func TestNames(t *testing.T) {
	o := Options{Topology: sampleTopo(t)}
	if got := HostNS(o, "h1"); got != "vx-demo.h1" {
		t.Errorf("HostNS = %q", got)
	}
	if got := VMNS(o, "h1", "web"); got != "vx-demo.h1.web" {
		t.Errorf("VMNS = %q", got)
	}
	if got := UnderlayNS(o); got != "vx-demo" {
		t.Errorf("UnderlayNS = %q", got)
	}
	inst := HostInstance(o, "h2")
	if inst.Dir != "/run/ovs-vxctl/lab/demo/h2" || inst.NetNS != "vx-demo.h2" {
		t.Errorf("HostInstance = %+v", inst)
	}
	o.Dir = "/tmp/x"
	if got := HostInstance(o, "h2").Dir; got != "/tmp/x/h2" {
		t.Errorf("HostInstance with Dir = %q", got)
	}
	// The lab of "a" must not claim the namespaces of the lab of "a-b".
	for _, c := range []struct {
		topo, ns string
		want     bool
	}{
		{"a", "vx-a", true}, {"a", "vx-a.h1", true}, {"a", "vx-a.h1.vm1", true},
		{"a", "vx-a-b", false}, {"a", "vx-a-b.h1", false}, {"a", "vx-ab", false}, {"a", "t1", false},
	} {
		if got := isLabNS(c.topo, c.ns); got != c.want {
			t.Errorf("isLabNS(%q, %q) = %v, want %v", c.topo, c.ns, got, c.want)
		}
	}
}

func TestPortMAC(t *testing.T) {
	topo := sampleTopo(t)
	a := topo.Networks[0]
	if got := PortMAC(topo.Name, a.Ports[0]).String(); got != "52:54:00:00:01:02" {
		t.Errorf("declared MAC not kept: %s", got)
	}
	m1 := PortMAC(topo.Name, a.Ports[1])
	if m1[0]&0x02 == 0 || m1[0]&0x01 != 0 {
		t.Errorf("generated MAC %s is not unicast and locally administered", m1)
	}
	if m2 := PortMAC(topo.Name, a.Ports[1]); m2.String() != m1.String() {
		t.Errorf("generated MAC not stable: %s then %s", m1, m2)
	}
	if other := PortMAC("other", a.Ports[1]); other.String() == m1.String() {
		t.Errorf("MAC does not depend on the topology name")
	}
	if db := PortMAC(topo.Name, topo.Networks[1].Ports[0]); db.String() == m1.String() {
		t.Errorf("two ports got the same MAC %s", db)
	}
}

func TestPlan(t *testing.T) {
	topo := sampleTopo(t)
	p, err := newPlan(Options{Topology: topo, SkipApply: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.hosts) != 3 {
		t.Fatalf("%d hosts planned", len(p.hosts))
	}
	h1 := p.hosts[0]
	var vms []string
	for _, vm := range h1.vms {
		vms = append(vms, vm.ns)
	}
	if !slices.Equal(vms, []string{"vx-demo.h1.web", "vx-demo.h1.db"}) {
		t.Errorf("h1 VMs = %v", vms)
	}
	if len(p.hosts[1].vms) != 1 {
		t.Errorf("h2: the internal port must not get a VM: %d VMs", len(p.hosts[1].vms))
	}
	if want := []netip.Addr{netip.MustParseAddr("192.168.60.2"), netip.MustParseAddr("192.168.70.3")}; !slices.Equal(h1.others, want) {
		t.Errorf("h1 routes to %v, want %v", h1.others, want)
	}
	k1 := p.hosts[2]
	if len(k1.nets) != 1 || k1.nets[0].bridge != "br100" || k1.nets[0].vxlan != "vx100" {
		t.Fatalf("k1 networks = %+v", k1.nets)
	}
	var peers []string
	for _, fp := range k1.nets[0].peers {
		peers = append(peers, fp.String())
	}
	if !slices.Equal(peers, []string{"192.168.50.1", "192.168.60.2"}) {
		t.Errorf("k1 flood peers = %v", peers)
	}
	if len(k1.nets[0].vms) != 1 || k1.nets[0].vms[0].port.Name != "kweb" {
		t.Errorf("k1 bridge ports = %+v", k1.nets[0].vms)
	}
}

func TestPlanKernelPeerPorts(t *testing.T) {
	topo := newTopo("kp").
		host("k1", "10.0.0.1", false, 4789).
		host("k2", "10.0.0.2", false, 8472).
		host("k3", "10.0.0.3", false, 8472).
		network("n", 7).
		port(t, "k2", "b", topology.PortVM, "02:00:00:00:00:02", "", "").
		port(t, "k3", "c", topology.PortVM, "02:00:00:00:00:03", "", "").t
	if _, err := newPlan(Options{Topology: topo, SkipApply: true}); err != nil {
		t.Fatalf("kernel hosts on the same port: %v", err)
	}
	n := topo.Networks[0]
	n.Ports = append(n.Ports, &topology.Port{Network: n, Host: topo.Hosts[0], Name: "a", Type: topology.PortVM})
	_, err := newPlan(Options{Topology: topo, SkipApply: true})
	if err == nil || !strings.Contains(err.Error(), "unmanaged hosts k1 (dst_port 4789) and k2 (dst_port 8472) share network n") {
		t.Errorf("kernel hosts on different ports: %v", err)
	}
}

func TestPlanErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*topology.Topology, *Options)
		want string
	}{
		{"no topology", func(_ *topology.Topology, o *Options) { o.Topology = nil }, "no topology"},
		{"bad name", func(tp *topology.Topology, _ *Options) { tp.Name = "a.b" }, `topology name "a.b"`},
		{"long host", func(tp *topology.Topology, _ *Options) { tp.Hosts[0].Name = "abcdefghijklm" }, "hosts[0].name"},
		{"reserved port", func(tp *topology.Topology, _ *Options) { tp.Networks[0].Ports[0].Name = "br-phy" }, "port h1/br-phy"},
		{"long port", func(tp *topology.Topology, _ *Options) { tp.Networks[0].Ports[0].Name = "abcdefghijklmnop" }, "not a valid interface name"},
		{"no self", func(_ *topology.Topology, o *Options) { o.SkipApply = false; o.File = "/x.yaml" }, "Options.Self"},
		{"relative file", func(_ *topology.Topology, o *Options) { o.SkipApply = false; o.Self = "/bin/true"; o.File = "x.yaml" }, "absolute path"},
		{"long dir", func(_ *topology.Topology, o *Options) { o.Dir = "/tmp/" + strings.Repeat("d", 90) }, "too long"},
		{"relative dir", func(_ *topology.Topology, o *Options) { o.Dir = "state" }, "absolute path"},
		{"two internal on kernel host", func(tp *topology.Topology, _ *Options) {
			n := tp.Networks[0]
			k1 := tp.Host("k1")
			n.Ports = append(n.Ports, &topology.Port{Network: n, Host: k1, Name: "i1", Type: topology.PortInternal},
				&topology.Port{Network: n, Host: k1, Name: "i2", Type: topology.PortInternal})
		}, "two internal ports"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo := sampleTopo(t)
			o := Options{Topology: topo, SkipApply: true}
			c.mod(topo, &o)
			_, err := newPlan(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	o := Options{Topology: sampleTopo(t)}
	cases := []struct {
		name, ns string
		host     string // expected host for a host namespace
		err      string
	}{
		{name: "h1", ns: "vx-demo.h1", host: "h1"},
		{name: "k1", ns: "vx-demo.k1", host: "k1"},
		{name: "db", ns: "vx-demo.h1.db"},
		{name: "h2/web", ns: "vx-demo.h2.web"},
		{name: "gw-a", ns: "vx-demo.h2", host: "h2"},
		{name: "web", err: "ambiguous"},
		{name: "nope", err: "no host or port"},
		{name: "h9/web", err: `no host "h9"`},
		{name: "k1/web", err: `host k1 has no port "web"`},
	}
	for _, c := range cases {
		ns, h, err := resolve(o, c.name)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("resolve(%q): error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || ns != c.ns {
			t.Errorf("resolve(%q) = %q, %v; want %q", c.name, ns, err, c.ns)
			continue
		}
		if got := ""; h != nil {
			got = h.Name
			if got != c.host {
				t.Errorf("resolve(%q) host = %q, want %q", c.name, got, c.host)
			}
		} else if c.host != "" {
			t.Errorf("resolve(%q) gave no host, want %q", c.name, c.host)
		}
	}
	if strings.Contains(func() string { _, _, err := resolve(o, "web"); return err.Error() }(), "h1/web, h2/web") == false {
		t.Errorf("ambiguity error must list the choices")
	}
}

func TestMissingRoutes(t *testing.T) {
	out := `Route Table:
Cached: 127.0.0.1/32 dev lo SRC 127.0.0.1 local
Cached: 10.250.1.1/32 dev br-phy SRC 10.250.1.1 local
Cached: 10.250.2.1/32 dev br-phy SRC 10.250.1.1
Cached: 10.250.2.11/32 dev br-phy SRC 10.250.1.1
Cached: 110.250.2.2/32 dev br-phy SRC 10.250.1.1
Cached: 10.250.2.2/32 dev eth0 SRC 10.250.1.1
Cached: fd00::2/128 dev br-phy SRC fd00::1
`
	peers := []netip.Addr{
		netip.MustParseAddr("10.250.2.1"), netip.MustParseAddr("10.250.2.11"),
		netip.MustParseAddr("10.250.2.2"), netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::3"),
	}
	got := missingRoutes(out, peers)
	want := []netip.Addr{netip.MustParseAddr("10.250.2.2"), netip.MustParseAddr("fd00::3")}
	if !slices.Equal(got, want) {
		t.Errorf("missing = %v, want %v", got, want)
	}
}

func TestCommonBits(t *testing.T) {
	cases := []struct {
		addrs []string
		want  int
	}{
		{[]string{"192.168.50.1"}, 32},
		{[]string{"192.168.50.1", "192.168.50.2", "192.168.50.3"}, 30},
		{[]string{"10.250.1.1", "10.250.2.1", "10.251.0.3", "10.252.0.4"}, 13},
		{[]string{"10.0.0.1", "192.168.0.1"}, 0},
		{[]string{"fd00::1", "fd00::2"}, 126},
		{[]string{"fd00::1", "fd01::1"}, 15},
		{[]string{"fd00:ab::1", "fd00:ac::3"}, 29},
	}
	for _, c := range cases {
		var addrs []netip.Addr
		for _, a := range c.addrs {
			addrs = append(addrs, netip.MustParseAddr(a))
		}
		if got := commonBits(addrs); got != c.want {
			t.Errorf("commonBits(%v) = %d, want %d", c.addrs, got, c.want)
		}
	}
}

func TestVMMTUOf(t *testing.T) {
	h4 := &topology.Host{Name: "h4", VTEP: netip.MustParseAddr("192.168.50.1")}
	h6 := &topology.Host{Name: "h6", VTEP: netip.MustParseAddr("fd00::1")}
	plain, jumbo := &topology.Network{Name: "a"}, &topology.Network{Name: "b", MTU: 1400}
	for _, c := range []struct {
		p    *topology.Port
		want int
	}{
		{&topology.Port{Network: plain, Host: h4}, UnderlayMTU - 50},
		{&topology.Port{Network: plain, Host: h6}, UnderlayMTU - 70},
		{&topology.Port{Network: jumbo, Host: h4}, 1400},
	} {
		if got := VMMTUOf(c.p); got != c.want {
			t.Errorf("VMMTUOf(network %s on %s) = %d, want %d", c.p.Network.Name, c.p.Host.VTEP, got, c.want)
		}
	}
	if VMMTU != UnderlayMTU-50 {
		t.Errorf("VMMTU %d, want the IPv4 default %d", VMMTU, UnderlayMTU-50)
	}
}
