package agent

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/hostnet"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

// listenUnix makes path a listening unix socket until the test ends.
func listenUnix(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// wantErrParts fails unless err is an error containing every part.
func wantErrParts(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one naming %q", what, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not say %q:\n%v", what, p, err)
		}
	}
}

func TestPreflightSockets(t *testing.T) {
	dir := t.TempDir()
	o := Options{RunDir: dir, DB: "unix:" + filepath.Join(dir, "db.sock")}
	both := []string{"br-int", "br-tun"}

	// Existing bridges without sockets: both named, and what to set.
	err := o.preflight(nil, both)
	wantErrParts(t, "no sockets", err, "br-int.mgmt", "br-tun.mgmt", "OVS_RUNDIR", "--db", dir, "nothing was changed")

	listenUnix(t, filepath.Join(dir, "br-int.mgmt"))
	err = o.preflight(nil, both)
	wantErrParts(t, "br-tun's socket missing", err, "br-tun.mgmt")
	if strings.Contains(err.Error(), "br-int.mgmt") {
		t.Errorf("br-int's socket listens, yet the error names it: %v", err)
	}

	// A stale socket file (nobody listening) is as bad as none.
	stale := filepath.Join(dir, "br-tun.mgmt")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the stale socket file should stay: %v", err)
	}
	wantErrParts(t, "stale br-tun socket", o.preflight(nil, both), "br-tun.mgmt", "refused")

	os.Remove(stale)
	listenUnix(t, stale)
	if err := o.preflight(nil, both); err != nil {
		t.Fatalf("both sockets listen: %v", err)
	}
}

func TestPreflightNewBridgesNeedVswitchd(t *testing.T) {
	dir := t.TempDir()
	o := Options{RunDir: dir, DB: "unix:/x/db.sock"}
	err := o.preflight([]string{"br-int", "br-tun"}, []string{"br-int", "br-tun"})
	wantErrParts(t, "no ovs-vswitchd", err, "ovs-vswitchd", "br-int and br-tun", "OVS_RUNDIR", "--db unix:/x/db.sock")

	listenUnix(t, filepath.Join(dir, "ovs-vswitchd.4242.ctl"))
	// br-int is new; br-tun exists and has no socket.
	err = o.preflight([]string{"br-int"}, []string{"br-int", "br-tun"})
	wantErrParts(t, "br-tun without socket", err, "br-tun.mgmt")
	if strings.Contains(err.Error(), "ovs-vswitchd.<pid>.ctl") {
		t.Errorf("ovs-vswitchd answers, yet the error says it does not: %v", err)
	}
	if err := o.preflight([]string{"br-int", "br-tun"}, []string{"br-int", "br-tun"}); err != nil {
		t.Fatalf("ovs-vswitchd answers and both bridges are new: %v", err)
	}
	if err := (Options{}).preflight(nil, []string{"br-int"}); err == nil || !strings.Contains(err.Error(), "OVS_RUNDIR") {
		t.Errorf("no run directory: %v, want an error naming OVS_RUNDIR", err)
	}
}

// links builds a kernel view.
func links(ls ...hostnet.Link) map[string]hostnet.Link {
	m := map[string]hostnet.Link{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

func addrs(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range s {
		out = append(out, netip.MustParsePrefix(a))
	}
	return out
}

func noVTEP() map[string]string { return nil }

func TestCheckInterfacesRefusesForeignInterfaces(t *testing.T) {
	vm := func(name string) ovsdb.HostInterface {
		return ovsdb.HostInterface{Bridge: "br-int", Name: name, Kind: ovsdb.IfaceVM}
	}
	internal := func(name string) ovsdb.HostInterface {
		return ovsdb.HostInterface{Bridge: "br-int", Name: name, Kind: ovsdb.IfaceInternal}
	}
	kernel := links(
		hostnet.Link{Name: "lo", Loopback: true, Addrs: addrs("127.0.0.1/8", "192.168.50.1/32")},
		hostnet.Link{Name: "eth0", Kind: "veth", Addrs: addrs("203.0.113.5/24")},
		hostnet.Link{Name: "br0", Kind: "bridge"},
		hostnet.Link{Name: "enslaved", Kind: "veth", Master: "br0"},
		hostnet.Link{Name: "uplink", Kind: "veth"},
		hostnet.Link{Name: "tap0", Kind: "tun"},
		hostnet.Link{Name: "vnet1", Kind: "tun"},
	)
	vteps := func() map[string]string { return map[string]string{"uplink": "route to peer h2"} }
	for _, c := range []struct {
		name string
		ifs  []ovsdb.HostInterface
		want []string // error parts; none: accepted
	}{
		{"vm port on an addressed interface", []ovsdb.HostInterface{vm("eth0")},
			[]string{"vm port eth0", "eth0 (veth, with 203.0.113.5/24)", "carries IP addresses"}},
		{"vm port on the loopback", []ovsdb.HostInterface{vm("lo")}, []string{"vm port lo", "loopback interface"}},
		{"vm port on a Linux bridge's port", []ovsdb.HostInterface{vm("enslaved")},
			[]string{"vm port enslaved", "already belongs to bridge br0"}},
		{"vm port on the VTEP's device", []ovsdb.HostInterface{vm("uplink")},
			[]string{"vm port uplink", "VTEP's device (route to peer h2)"}},
		{"vm port on a plain tap", []ovsdb.HostInterface{vm("vnet1")}, nil},
		{"internal port on a veth", []ovsdb.HostInterface{internal("eth0")},
			[]string{"internal port eth0", "held by interface eth0 (veth, with 203.0.113.5/24)", "not an OVS internal port"}},
		{"internal port lo", []ovsdb.HostInterface{internal("lo")}, []string{"internal port lo", "lo (loopback"}},
		{"internal port on a foreign tap", []ovsdb.HostInterface{internal("tap0")}, []string{"internal port tap0"}},
		{"bridge named like a Linux bridge", []ovsdb.HostInterface{{Bridge: "br0", Name: "br0", Kind: ovsdb.IfaceLocal}},
			[]string{"bridge br0", "held by interface br0 (bridge)"}},
		{"new internal port", []ovsdb.HostInterface{internal("int9")}, nil},
		{"our own attached internal port", []ovsdb.HostInterface{{Bridge: "br-int", Name: "tap0", Kind: ovsdb.IfaceInternal,
			Owned: true, Type: "internal", OFPort: 3}}, nil},
		{"our internal port that OVS could not create", []ovsdb.HostInterface{{Bridge: "br-int", Name: "eth0", Kind: ovsdb.IfaceInternal,
			Owned: true, Type: "internal", OFPort: -1, Error: "could not open network device eth0 (Invalid argument)"}},
			[]string{"internal port eth0"}},
		{"our vm port, already attached", []ovsdb.HostInterface{{Bridge: "br-int", Name: "eth0", Kind: ovsdb.IfaceVM,
			Owned: true, OFPort: 2}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			warnings, err := checkInterfaces(c.ifs, kernel, vteps)
			if len(warnings) != 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantErrParts(t, c.name, err, c.want...)
		})
	}
}

func TestCheckInterfacesMissingVMIsAWarning(t *testing.T) {
	ifs := []ovsdb.HostInterface{
		{Bridge: "br-int", Name: "vnet7", Kind: ovsdb.IfaceVM},
		{Bridge: "br-int", Name: "int1", Kind: ovsdb.IfaceInternal},
	}
	warnings, err := checkInterfaces(ifs, links(), noVTEP)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "vm port vnet7") || !strings.Contains(warnings[0], "does not exist yet") {
		t.Fatalf("warnings %q, want one about vnet7 not existing yet", warnings)
	}
	// Nothing refused: the VTEP devices are only looked up when needed.
	called := false
	checkInterfaces(ifs, links(hostnet.Link{Name: "int9"}), func() map[string]string { called = true; return nil })
	if called {
		t.Error("VTEP devices looked up without a vm interface to check")
	}
}

func TestCheckAttached(t *testing.T) {
	ok := ovsdb.HostInterface{Bridge: "br-int", Name: "int1", Kind: ovsdb.IfaceInternal, Owned: true, Type: "internal", OFPort: 3}
	missing := ovsdb.HostInterface{Bridge: "br-int", Name: "vnet7", Kind: ovsdb.IfaceVM, Owned: true, OFPort: -1,
		Error: "could not open network device vnet7 (No such device)"}
	tunnel := ovsdb.HostInterface{Bridge: "br-tun", Name: "vx-h2", Kind: ovsdb.IfaceOther, Owned: true, OFPort: -1,
		Error: "could not add network device vx-h2 to ofproto (File exists)"}
	silent := ovsdb.HostInterface{Bridge: "br-int", Name: "ovs-netdev", Kind: ovsdb.IfaceVM, Owned: true, OFPort: -1}
	kernel := links(hostnet.Link{Name: "int1", Kind: "tun"}, hostnet.Link{Name: "ovs-netdev", Kind: "tun"})

	warnings, err := checkAttached([]ovsdb.HostInterface{ok, missing}, kernel)
	if err != nil || len(warnings) != 1 || warnings[0] != missingVM("vnet7") {
		t.Fatalf("missing vm interface: warnings %q, err %v; want only the warning %q", warnings, err, missingVM("vnet7"))
	}
	_, err = checkAttached([]ovsdb.HostInterface{ok, tunnel, silent}, kernel)
	wantErrParts(t, "OVS errors", err, "committed", "port vx-h2", "to ofproto (File exists)", "port ovs-netdev", "ofport -1")

	if got := ownedInternalPorts([]ovsdb.HostInterface{ok, missing, tunnel,
		{Name: "int2", Kind: ovsdb.IfaceInternal, Owned: true, Type: "internal", OFPort: -1, Error: "x"},
		{Name: "int3", Kind: ovsdb.IfaceInternal}}); len(got) != 1 || !got["int1"] {
		t.Errorf("owned internal ports %v, want only int1", got)
	}
}

func TestReportWarnsOnce(t *testing.T) {
	var r Report
	r.warn(nil, "a", "b", "a")
	r.warn(nil, "b")
	if !slices.Equal(r.Warnings, []string{"a", "b"}) {
		t.Errorf("warnings %q, want [a b]", r.Warnings)
	}
}
