package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Building blocks of the test files: two managed hosts and an unmanaged one.
const (
	hdr    = "name: t\n"
	hosts3 = "hosts:\n" +
		"  - {name: h1, vtep: 10.0.0.1}\n" +
		"  - {name: h2, vtep: 10.0.0.2}\n" +
		"  - {name: h3, vtep: 10.0.0.3, managed: false}\n"
)

// hostsWith is hdr and hosts3 with extra YAML flow fields appended to host i (0..2).
func hostsWith(i int, extra string) string {
	lines := strings.Split(strings.TrimSuffix(hosts3, "\n"), "\n")
	l := lines[i+1]
	lines[i+1] = l[:len(l)-1] + ", " + extra + "}"
	return hdr + strings.Join(lines, "\n") + "\n"
}

// network renders one network (name n, vni) whose ports are YAML flow mappings.
func network(name, vni string, ports ...string) string {
	s := "  - name: " + name + "\n    vni: " + vni + "\n"
	if len(ports) > 0 {
		s += "    ports:\n"
		for _, p := range ports {
			s += "      - {" + p + "}\n"
		}
	}
	return s
}

func networks(nets ...string) string { return "networks:\n" + strings.Join(nets, "") }

// onePort is a valid file with a single network holding the given ports.
func onePort(ports ...string) string { return hdr + hosts3 + networks(network("n1", "1", ports...)) }

type want struct {
	path string
	msg  string // substring of the message
	line int    // 0: not checked
}

// problemsOf parses y and returns its problems, failing if it parsed.
func problemsOf(t *testing.T, y string) []*Error {
	t.Helper()
	top, err := Parse([]byte(y))
	if err == nil {
		t.Fatalf("parsed without error, want problems; got %+v\nfile:\n%s", top, y)
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	for _, e := range errs.List {
		if e.Msg == "" {
			t.Errorf("problem at %q has no message", e.Path)
		}
	}
	return errs.List
}

func checkProblems(t *testing.T, y string, wants []want) {
	t.Helper()
	got := problemsOf(t, y)
	ok := len(got) == len(wants)
	for i := 0; ok && i < len(wants); i++ {
		w, g := wants[i], got[i]
		ok = g.Path == w.path && strings.Contains(g.Msg, w.msg) && (w.line == 0 || g.Line == w.line)
	}
	if !ok {
		t.Errorf("problems:\n%s\nwant (path, message substring, line):\n%+v\nfile:\n%s", (&Errors{List: got}).Error(), wants, y)
	}
}

func TestParseRules(t *testing.T) {
	vm := func(host, name string, more ...string) string {
		return strings.Join(append([]string{"host: " + host, "name: " + name}, more...), ", ")
	}
	cases := []struct {
		name string
		yaml string
		want []want
	}{
		// name
		{"name missing", hosts3, []want{{"name", "required", 1}}},
		{"name uppercase", "name: Tee\n" + hosts3, []want{{"name", "lowercase letters", 1}}},
		{"name underscore", "name: a_b\n" + hosts3, []want{{"name", "lowercase letters", 1}}},
		{"name too long", "name: abcdefghijklmnopqrstu\n" + hosts3, []want{{"name", "21 characters long; at most 20", 1}}},
		{"name empty", "name: ''\n" + hosts3, []want{{"name", "must not be empty", 1}}},
		{"name list", "name: [a]\n" + hosts3, []want{{"name", "want a string, got a list", 1}}},

		// hosts
		{"hosts missing", hdr, []want{{"hosts", "required", 1}}},
		{"hosts empty", hdr + "hosts: []\n", []want{{"hosts", "at least one host", 2}}},
		{"hosts mapping", hdr + "hosts: {a: 1}\n", []want{{"hosts", "want a list, got a mapping", 2}}},
		{"host scalar", hdr + "hosts: [x]\n", []want{{"hosts[0]", `want a mapping, got "x"`, 2}}},
		{"host name missing", hdr + "hosts:\n  - {vtep: 10.0.0.1}\n", []want{{"hosts[0].name", "required", 3}}},
		{"host name chars", hdr + "hosts:\n  - {name: Host1, vtep: 10.0.0.1}\n", []want{{"hosts[0].name", "lowercase", 3}}},
		{"host name too long", hdr + "hosts:\n  - {name: abcdefghijklm, vtep: 10.0.0.1}\n", []want{{"hosts[0].name", "13 characters long; at most 12", 3}}},
		{"host name duplicate", hdr + "hosts:\n  - {name: a, vtep: 10.0.0.1}\n  - {name: a, vtep: 10.0.0.2}\n",
			[]want{{"hosts[1].name", "a is already used by hosts[0]", 4}}},
		{"host unknown field", hostsWith(1, "foo: 1"), []want{{"hosts[1].foo", "unknown field", 4}}},
		{"host duplicate key", hdr + "hosts:\n  - name: a\n    vtep: 10.0.0.1\n    vtep: 10.0.0.2\n",
			[]want{{"hosts[0].vtep", "duplicate key (first at line 4)", 5}}},

		// vtep
		{"vtep missing", hdr + "hosts:\n  - {name: a}\n", []want{{"hosts[0].vtep", "required", 3}}},
		{"vtep null", hdr + "hosts:\n  - {name: a, vtep: ~}\n", []want{{"hosts[0].vtep", "required", 3}}},
		{"vtep garbage", hdr + "hosts:\n  - {name: a, vtep: 10.0.0}\n", []want{{"hosts[0].vtep", `want an IPv4 or IPv6 address, got "10.0.0"`, 3}}},
		{"vtep prefix", hdr + "hosts:\n  - {name: a, vtep: 10.0.0.1/24}\n", []want{{"hosts[0].vtep", "want an IPv4 or IPv6 address", 3}}},
		{"vtep zone", hdr + "hosts:\n  - {name: a, vtep: 'fe80::1%eth0'}\n", []want{{"hosts[0].vtep", "zone", 3}}},
		{"vtep 4in6", hdr + "hosts:\n  - {name: a, vtep: '::ffff:10.0.0.1'}\n", []want{{"hosts[0].vtep", "write 10.0.0.1", 3}}},
		{"vtep multicast", hdr + "hosts:\n  - {name: a, vtep: 239.1.1.1}\n", []want{{"hosts[0].vtep", "cannot be a tunnel endpoint", 3}}},
		{"vtep unspecified", hdr + "hosts:\n  - {name: a, vtep: '::'}\n", []want{{"hosts[0].vtep", "cannot be a tunnel endpoint", 3}}},
		{"vtep duplicate", hdr + "hosts:\n  - {name: a, vtep: 10.0.0.1}\n  - {name: b, vtep: 10.0.0.1}\n",
			[]want{{"hosts[1].vtep", "10.0.0.1 is already used by hosts[0]", 4}}},
		{"vtep families differ in one network", hdr + "hosts:\n  - {name: a, vtep: 10.0.0.1}\n  - {name: b, vtep: '2001:db8::2'}\n" +
			networks(network("n", "1", vm("a", "p1"), vm("b", "p2"))),
			[]want{{"hosts[1].vtep", "2001:db8::2 is IPv6 but a's vtep 10.0.0.1 is IPv4, and both hosts share network n", 4}}},

		// managed
		{"managed not bool", hostsWith(0, "managed: yes"), []want{{"hosts[0].managed", `want true or false, got "yes"`, 3}}},
		{"managed int", hostsWith(0, "managed: 1"), []want{{"hosts[0].managed", "want true or false", 3}}},

		// dst_port, mode, datapath, learn_timeout (defaults and hosts)
		{"dst_port 0", hdr + "defaults: {dst_port: 0}\n" + hosts3, []want{{"defaults.dst_port", "0 is out of range 1..65535", 2}}},
		{"dst_port too big", hostsWith(1, "dst_port: 65536"), []want{{"hosts[1].dst_port", "65536 is out of range 1..65535", 4}}},
		{"dst_port float", hostsWith(1, "dst_port: 4789.0"), []want{{"hosts[1].dst_port", `want an integer in 1..65535, got "4789.0"`, 4}}},
		{"dst_port string", hostsWith(1, "dst_port: '4789'"), []want{{"hosts[1].dst_port", "want an integer", 4}}},
		{"mode", hdr + "defaults:\n  mode: learning\n" + hosts3, []want{{"defaults.mode", `want learn or controller, got "learning"`, 3}}},
		{"host mode", hostsWith(0, "mode: ctl"), []want{{"hosts[0].mode", "want learn or controller", 3}}},
		{"datapath", hdr + "defaults: {datapath: kernel}\n" + hosts3, []want{{"defaults.datapath", `want system or netdev, got "kernel"`, 2}}},
		{"host datapath", hostsWith(2, "datapath: dpdk"), []want{{"hosts[2].datapath", "want system or netdev", 5}}},
		{"learn_timeout 0", hdr + "defaults: {learn_timeout: 0}\n" + hosts3, []want{{"defaults.learn_timeout", "0 is out of range 1..65535", 2}}},
		{"learn_timeout big", hostsWith(0, "learn_timeout: 70000"), []want{{"hosts[0].learn_timeout", "70000 is out of range", 3}}},
		{"defaults unknown", hdr + "defaults: {vni: 1}\n" + hosts3, []want{{"defaults.vni", "unknown field", 2}}},
		{"defaults list", hdr + "defaults: [a]\n" + hosts3, []want{{"defaults", "want a mapping, got a list", 2}}},

		// controller
		{"controller unknown proto", hdr + "controller: unix:/x\n" + hosts3, []want{{"controller", "want tcp:IP:PORT or ssl:IP:PORT", 2}}},
		{"controller no port", hdr + "controller: tcp:10.0.0.9\n" + hosts3, []want{{"controller", "want tcp:IP:PORT", 2}}},
		{"controller ipv6 without brackets", hdr + "controller: 'tcp:::1:6653'\n" + hosts3, []want{{"controller", "IPv6 as tcp:[::1]:6653", 2}}},
		{"controller port 0", hdr + "controller: tcp:10.0.0.9:0\n" + hosts3, []want{{"controller", "port 0", 2}}},
		{"controller hostname", hdr + "controller: tcp:ctl.example:6653\n" + hosts3, []want{{"controller", "want tcp:IP:PORT", 2}}},
		{"controller required by defaults", hdr + "defaults:\n  mode: controller\n" + hosts3,
			[]want{{"controller", "required: managed hosts in controller mode (h1, h2)", 3}}},
		{"controller required by a host", hostsWith(1, "mode: controller"),
			[]want{{"controller", "required: managed hosts in controller mode (h2)", 4}}},

		// routes
		{"route to missing", hostsWith(0, "routes: [{via: 10.0.0.9}]"), []want{{"hosts[0].routes[0].to", "required", 3}}},
		{"route via missing", hostsWith(0, "routes: [{to: 10.8.0.0/16}]"), []want{{"hosts[0].routes[0].via", "required", 3}}},
		{"route to not a prefix", hostsWith(0, "routes: [{to: 10.8.0.0, via: 10.0.0.9}]"), []want{{"hosts[0].routes[0].to", "has no prefix length", 3}}},
		{"route to garbage", hostsWith(0, "routes: [{to: x, via: 10.0.0.9}]"), []want{{"hosts[0].routes[0].to", "want an address with prefix length", 3}}},
		{"route to host bits", hostsWith(0, "routes: [{to: 10.8.0.1/16, via: 10.0.0.9}]"), []want{{"hosts[0].routes[0].to", "host bits set; the route's destination is 10.8.0.0/16", 3}}},
		{"route via garbage", hostsWith(0, "routes: [{to: 10.8.0.0/16, via: 10.0.0.9/32}]"), []want{{"hosts[0].routes[0].via", "want an IPv4 or IPv6 address", 3}}},
		{"route families", hostsWith(0, "routes: [{to: 10.8.0.0/16, via: '2001:db8::9'}]"),
			[]want{{"hosts[0].routes[0].via", "2001:db8::9 is IPv6 but to 10.8.0.0/16 is IPv4", 3}}},
		{"route duplicate", hostsWith(0, "routes: [{to: 10.8.0.0/16, via: 10.0.0.9}, {to: 10.8.0.0/16, via: 10.0.0.8}]"),
			[]want{{"hosts[0].routes[1].to", "10.8.0.0/16 is already routed by hosts[0].routes[0]", 3}}},
		{"route unknown field", hostsWith(0, "routes: [{to: 10.8.0.0/16, via: 10.0.0.9, dev: eth0}]"), []want{{"hosts[0].routes[0].dev", "unknown field", 3}}},
		{"routes mapping", hostsWith(0, "routes: {to: 10.8.0.0/16}"), []want{{"hosts[0].routes", "want a list, got a mapping", 3}}},
		{"route on unmanaged host", hostsWith(2, "routes: [{to: 10.8.0.0/16, via: 10.0.0.9}]"),
			[]want{{"hosts[2].routes", "an unmanaged host cannot have routes", 5}}},

		// networks
		{"networks not a list", hdr + hosts3 + "networks: tenant\n", []want{{"networks", `want a list, got "tenant"`, 6}}},
		{"network name missing", hdr + hosts3 + "networks:\n  - {vni: 1}\n", []want{{"networks[0].name", "required", 7}}},
		{"network name space", hdr + hosts3 + networks(network("'a b'", "1")), []want{{"networks[0].name", "may not contain spaces", 7}}},
		{"network name duplicate", hdr + hosts3 + networks(network("n", "1"), network("n", "2")),
			[]want{{"networks[1].name", "n is already used by networks[0]", 9}}},
		{"network unknown field", hdr + hosts3 + "networks:\n  - {name: n, vni: 1, vlan: 3}\n", []want{{"networks[0].vlan", "unknown field", 7}}},
		{"vni missing", hdr + hosts3 + "networks:\n  - {name: n}\n", []want{{"networks[0].vni", "required", 7}}},
		{"vni 0", hdr + hosts3 + networks(network("n", "0")), []want{{"networks[0].vni", "0 is out of range 1..16777215", 8}}},
		{"vni too big", hdr + hosts3 + networks(network("n", "16777216")), []want{{"networks[0].vni", "16777216 is out of range 1..16777215", 8}}},
		{"vni string", hdr + hosts3 + networks(network("n", "ten")), []want{{"networks[0].vni", `want an integer in 1..16777215, got "ten"`, 8}}},
		{"vni duplicate", hdr + hosts3 + networks(network("a", "100"), network("b", "100")),
			[]want{{"networks[1].vni", "100 is already used by networks[0]", 10}}},
		{"ports not a list", hdr + hosts3 + "networks:\n  - {name: n, vni: 1, ports: 3}\n", []want{{"networks[0].ports", `want a list, got "3"`, 7}}},

		// ports
		{"port host missing", onePort("name: p"), []want{{"networks[0].ports[0].host", "required", 10}}},
		{"port host unknown", onePort(vm("h9", "p")), []want{{"networks[0].ports[0].host", `no host named "h9"`, 10}}},
		{"port name missing", onePort("host: h1"), []want{{"networks[0].ports[0].name", "required", 10}}},
		{"port name 16 chars", onePort(vm("h1", "abcdefghijklmnop")), []want{{"networks[0].ports[0].name", "16 characters long; interface names have at most 15", 10}}},
		{"port name slash", onePort(vm("h1", "a/b")), []want{{"networks[0].ports[0].name", "no '/', ':', spaces", 10}}},
		{"port name colon", onePort(vm("h1", "'a:b'")), []want{{"networks[0].ports[0].name", "not a valid interface name", 10}}},
		{"port name space", onePort(vm("h1", "'a b'")), []want{{"networks[0].ports[0].name", "not a valid interface name", 10}}},
		{"port name dot", onePort(vm("h1", ".")), []want{{"networks[0].ports[0].name", `"." is not a valid interface name`, 10}}},
		{"port name dotdot", onePort(vm("h1", "..")), []want{{"networks[0].ports[0].name", `".." is not a valid interface name`, 10}}},
		{"port name empty", onePort(vm("h1", "''")), []want{{"networks[0].ports[0].name", "must not be empty", 10}}},
		{"port name br-int", onePort(vm("h1", "br-int", "type: internal")), []want{{"networks[0].ports[0].name", "br-int is reserved", 10}}},
		{"port name br-tun", onePort(vm("h1", "br-tun")), []want{{"networks[0].ports[0].name", "br-tun is reserved", 10}}},
		{"port name patch-int", onePort(vm("h1", "patch-int")), []want{{"networks[0].ports[0].name", "reserved", 10}}},
		{"port name patch-tun", onePort(vm("h1", "patch-tun")), []want{{"networks[0].ports[0].name", "reserved", 10}}},
		{"port name br-phy", onePort(vm("h1", "br-phy", "type: internal")), []want{{"networks[0].ports[0].name", "reserved", 10}}},
		{"port name vx-", onePort(vm("h1", "vx-h2", "type: internal")), []want{{"networks[0].ports[0].name", `starts with "vx-"`, 10}}},
		{"port (host, name) duplicate across networks", hdr + hosts3 + networks(network("a", "1", vm("h1", "p")), network("b", "2", vm("h1", "p"))),
			[]want{{"networks[1].ports[0].name", "p is already used on host h1 by networks[0].ports[0]", 14}}},
		{"port type", onePort(vm("h1", "p", "type: tap")), []want{{"networks[0].ports[0].type", `want vm or internal, got "tap"`, 10}}},
		{"port unknown field", onePort(vm("h1", "p", "tag: 3")), []want{{"networks[0].ports[0].tag", "unknown field", 10}}},
		{"port duplicate key", onePort(vm("h1", "p", "name: q")), []want{{"networks[0].ports[0].name", "duplicate key", 10}}},
		{"port not a mapping", hdr + hosts3 + "networks:\n  - {name: n, vni: 1, ports: [p1]}\n", []want{{"networks[0].ports[0]", `want a mapping, got "p1"`, 7}}},

		// mac
		{"mac garbage", onePort(vm("h1", "p", "mac: 52:54:00:00:01")), []want{{"networks[0].ports[0].mac", `want a MAC address like 52:54:00:00:01:02, got "52:54:00:00:01"`, 10}}},
		{"mac eui64", onePort(vm("h1", "p", "mac: '02:00:00:00:00:00:00:01'")), []want{{"networks[0].ports[0].mac", "want a MAC address", 10}}},
		{"mac multicast", onePort(vm("h1", "p", "mac: '01:00:5e:00:00:01'")), []want{{"networks[0].ports[0].mac", "multicast", 10}}},
		{"mac broadcast", onePort(vm("h1", "p", "mac: 'ff:ff:ff:ff:ff:ff'")), []want{{"networks[0].ports[0].mac", "multicast", 10}}},
		{"mac zero", onePort(vm("h1", "p", "mac: '00:00:00:00:00:00'")), []want{{"networks[0].ports[0].mac", "not a usable MAC", 10}}},
		{"mac duplicate in network", onePort(vm("h1", "p", "mac: '52:54:00:00:01:02'"), vm("h2", "q", "mac: '52:54:00:00:01:02'")),
			[]want{{"networks[0].ports[1].mac", "52:54:00:00:01:02 is already used by networks[0].ports[0]", 11}}},
		{"mac duplicate differently spelled", onePort(vm("h1", "p", "mac: '52:54:00:00:01:0a'"), vm("h2", "q", "mac: '52-54-00-00-01-0A'")),
			[]want{{"networks[0].ports[1].mac", "already used by networks[0].ports[0]", 11}}},

		// ip and gateway
		{"ip without length", onePort(vm("h1", "p", "ip: 10.1.1.2")), []want{{"networks[0].ports[0].ip", "10.1.1.2 has no prefix length; write it like 10.1.1.2/24", 10}}},
		{"ip garbage", onePort(vm("h1", "p", "ip: 10.1.1.2/33")), []want{{"networks[0].ports[0].ip", "want an address with prefix length", 10}}},
		{"ip network address", onePort(vm("h1", "p", "ip: 10.1.1.0/24")), []want{{"networks[0].ports[0].ip", "network address of 10.1.1.0/24", 10}}},
		{"ip broadcast", onePort(vm("h1", "p", "ip: 10.1.1.255/24")), []want{{"networks[0].ports[0].ip", "broadcast address of 10.1.1.0/24", 10}}},
		{"ip duplicate in network", onePort(vm("h1", "p", "ip: 10.1.1.2/24"), vm("h2", "q", "ip: 10.1.1.2/16")),
			[]want{{"networks[0].ports[1].ip", "address 10.1.1.2 is already used by networks[0].ports[0]", 11}}},
		{"gateway without ip", onePort(vm("h1", "p", "gateway: 10.1.1.1")), []want{{"networks[0].ports[0].gateway", "needs the port's ip", 10}}},
		{"gateway garbage", onePort(vm("h1", "p", "ip: 10.1.1.2/24", "gateway: 10.1.1.1/24")), []want{{"networks[0].ports[0].gateway", "want an IPv4 or IPv6 address", 10}}},
		{"gateway family", onePort(vm("h1", "p", "ip: 10.1.1.2/24", "gateway: '2001:db8::1'")),
			[]want{{"networks[0].ports[0].gateway", "2001:db8::1 is IPv6 but ip 10.1.1.2/24 is IPv4", 10}}},
		{"gateway outside", onePort(vm("h1", "p", "ip: 10.1.1.2/24", "gateway: 10.1.2.1")),
			[]want{{"networks[0].ports[0].gateway", "10.1.2.1 is outside the port's network 10.1.1.0/24", 10}}},
		{"gateway is the port", onePort(vm("h1", "p", "ip: 10.1.1.2/24", "gateway: 10.1.1.2")),
			[]want{{"networks[0].ports[0].gateway", "the port's own address", 10}}},

		// unmanaged hosts
		{"unmanaged port without mac", onePort(vm("h3", "p")), []want{{"networks[0].ports[0].mac", "required: host h3 is unmanaged", 10}}},
		{"unmanaged internal port", onePort(vm("h3", "p", "type: internal", "mac: '52:54:00:00:00:01'")),
			[]want{{"networks[0].ports[0].type", "host h3 is unmanaged: nothing would create an internal port", 10}}},

		// dst_port agreement
		{"managed hosts differ on dst_port", hostsWith(1, "dst_port: 8472") + networks(network("tenant-a", "100", vm("h1", "p"), vm("h2", "q"))),
			[]want{{"hosts[1].dst_port", "8472 differs from h1's 4789, and both are managed hosts sharing network tenant-a", 4}}},
		{"first host declared the odd port", hostsWith(0, "dst_port: 8472") + networks(network("tenant-a", "100", vm("h1", "p"), vm("h2", "q"))),
			[]want{{"hosts[0].dst_port", "8472 differs from h2's 4789, and both are managed hosts sharing network tenant-a", 3}}},

		// the document
		{"unknown top-level field", hdr + hosts3 + "tunnels: []\n", []want{{"tunnels", "unknown field", 6}}},
		{"duplicate top-level key", hdr + hosts3 + "name: u\n", []want{{"name", "duplicate key (first at line 1)", 6}}},
		{"merge key", hdr + hosts3 + "<<: {a: 1}\n", []want{{"<<", "merge keys are not supported", 6}}},
		{"empty", "", []want{{"", "empty document", 0}}},
		{"comments only", "# nothing\n", []want{{"", "empty document", 0}}},
		{"null document", "~\n", []want{{"", "the document is null", 1}}},
		{"list document", "- a\n- b\n", []want{{"", "the document is a list", 1}}},
		{"scalar document", "hello\n", []want{{"", `the document is "hello"`, 1}}},
		{"two documents", hdr + hosts3 + "---\n" + hdr, []want{{"", "more than one YAML document", 0}}},
		{"bad YAML", hdr + "hosts: [\n", []want{{"", "invalid YAML", 2}}},
		{"tab indentation", "name: t\nhosts:\n\t- {name: a}\n", []want{{"", "invalid YAML", 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkProblems(t, c.yaml, c.want) })
	}
}

// TestParseValid checks the accepted forms and the resolved values.
func TestParseValid(t *testing.T) {
	y := `name: abcdefghijklmnopqrst   # 20 characters
controller: "tcp:[2001:db8::fe]:6653"
defaults: {mode: controller, dst_port: 4790, datapath: netdev, learn_timeout: 60}
hosts:
  - name: abcdefghijkl   # 12 characters
    vtep: 10.0.0.1
    routes:
      - {to: 10.8.0.0/16, via: 10.0.0.9}
      - {to: "2001:db8:8::/48", via: "2001:db8::9"}
  - name: h2
    vtep: "2001:db8::2"
    managed: true
    mode: learn
    datapath: system
    learn_timeout: 10
  - name: h3
    vtep: 10.0.0.3
    managed: false
    dst_port: 8472
networks:
  - name: zed
    vni: 16777215
    ports:
      - {host: abcdefghijkl, name: abcdefghijklmno, type: internal, ip: 10.9.0.1/31}
  - name: tenant-a
    vni: 1
    ports:
      - {host: abcdefghijkl, name: p1, mac: "52:54:00:AB:CD:EF", ip: 10.1.1.2/24, gateway: 10.1.1.1}
      - {host: h3, name: p1, mac: "52:54:00:00:00:02"}
      - {host: abcdefghijkl, name: p2, mac: "52:54:00:00:00:03"}
  - name: tenant-b
    vni: 2
    ports:
      - {host: h2, name: p1, mac: "52:54:00:ab:cd:ef", ip: "2001:db8:1::2/64", gateway: "2001:db8:1::1"}
      - {host: h2, name: p2, ip: 10.1.1.2/24}
`
	top, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if top.Name != "abcdefghijklmnopqrst" || top.Controller != "tcp:[2001:db8::fe]:6653" {
		t.Errorf("name %q controller %q", top.Name, top.Controller)
	}
	h1, h2, h3 := top.Hosts[0], top.Hosts[1], top.Hosts[2]
	if h1.Name != "abcdefghijkl" || h2.Name != "h2" || h3.Name != "h3" {
		t.Errorf("host order: %s %s %s", h1.Name, h2.Name, h3.Name)
	}
	// h1 inherits every default; h2 overrides all but dst_port; h3 only dst_port.
	if h1.Mode != ModeController || h1.DstPort != 4790 || h1.DstPortSet || h1.Datapath != DatapathNetdev || h1.LearnTimeout != 60 || !h1.Managed {
		t.Errorf("h1 = %+v", h1)
	}
	if h2.Mode != ModeLearn || h2.DstPort != 4790 || h2.DstPortSet || h2.Datapath != DatapathSystem || h2.LearnTimeout != 10 || !h2.Managed {
		t.Errorf("h2 = %+v", h2)
	}
	if h3.Managed || h3.DstPort != 8472 || !h3.DstPortSet || h3.Mode != ModeController {
		t.Errorf("h3 = %+v", h3)
	}
	if h2.VTEP != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("h2 vtep %s", h2.VTEP)
	}
	wantRoutes := []Route{
		{netip.MustParsePrefix("10.8.0.0/16"), netip.MustParseAddr("10.0.0.9")},
		{netip.MustParsePrefix("2001:db8:8::/48"), netip.MustParseAddr("2001:db8::9")},
	}
	if !slices.Equal(h1.Routes, wantRoutes) || h2.Routes != nil {
		t.Errorf("routes %v, %v", h1.Routes, h2.Routes)
	}
	if names := []string{top.Networks[0].Name, top.Networks[1].Name, top.Networks[2].Name}; !slices.Equal(names, []string{"zed", "tenant-a", "tenant-b"}) {
		t.Errorf("network order %v", names)
	}
	zed, a, b := top.Networks[0], top.Networks[1], top.Networks[2]
	if zed.VNI != 16777215 || a.VNI != 1 || b.VNI != 2 {
		t.Errorf("vnis %d %d %d", zed.VNI, a.VNI, b.VNI)
	}
	in := zed.Ports[0]
	if in.Type != PortInternal || in.MAC != nil || in.IP != netip.MustParsePrefix("10.9.0.1/31") || in.Gateway.IsValid() || in.Network != zed || in.Host != h1 {
		t.Errorf("internal port %+v", in)
	}
	p := a.Ports[0]
	if p.Type != PortVM || p.MAC.String() != "52:54:00:ab:cd:ef" || p.IP.String() != "10.1.1.2/24" || p.Gateway.String() != "10.1.1.1" {
		t.Errorf("port %+v", p)
	}
	if a.Ports[1].Host != h3 || a.Ports[2].Name != "p2" {
		t.Errorf("port order or host: %+v", a.Ports)
	}
	if g := b.Ports[0].Gateway; g != netip.MustParseAddr("2001:db8:1::1") {
		t.Errorf("IPv6 gateway %s", g)
	}
}

// TestParseDefaults checks the built-in defaults of a minimal file.
func TestParseDefaults(t *testing.T) {
	top, err := Parse([]byte("name: t\nhosts: [{name: a, vtep: 10.0.0.1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := top.Hosts[0]
	if !h.Managed || h.Mode != DefaultMode || h.DstPort != DefaultDstPort || h.DstPortSet ||
		h.Datapath != DefaultDatapath || h.LearnTimeout != DefaultLearnTimeout || top.Controller != "" || top.Networks != nil {
		t.Errorf("defaults: %+v, controller %q, networks %v", h, top.Controller, top.Networks)
	}
}

// TestParseAllowed lists files that break no rule, near the rules' edges.
func TestParseAllowed(t *testing.T) {
	for name, y := range map[string]string{
		"unmanaged hosts may differ on dst_port": hostsWith(2, "dst_port: 8472") +
			networks(network("n", "1", "host: h1, name: p", "host: h3, name: q, mac: '52:54:00:00:00:01'")),
		"managed hosts not sharing a network may differ": hostsWith(1, "dst_port: 8472") +
			networks(network("a", "1", "host: h1, name: p"), network("b", "2", "host: h2, name: p")),
		"same MAC and IP in two networks": hdr + hosts3 + networks(
			network("a", "1", "host: h1, name: a1, mac: '52:54:00:00:00:01', ip: 10.1.1.2/24"),
			network("b", "2", "host: h1, name: b1, mac: '52:54:00:00:00:01', ip: 10.1.1.2/24")),
		"unmanaged host in controller mode needs no controller": hostsWith(2, "mode: controller"),
		"port names of 15 characters and odd kernel-valid ones": onePort("host: h1, name: abcdefghijklmno", "host: h2, name: eth0.100", "host: h2, name: vx_ok"),
		"null optional fields": hdr + hosts3 + "defaults:\nnetworks:\n",
		"anchors and aliases":  "name: t\nhosts:\n  - {name: a, vtep: 10.0.0.1, routes: [&r {to: 10.8.0.0/16, via: 10.0.0.9}]}\n  - {name: b, vtep: 10.0.0.2, routes: [*r]}\n",
		"ssl controller":       hdr + "controller: ssl:10.0.0.9:6653\n" + hosts3,
		"/32 address":          onePort("host: h1, name: p, ip: 10.1.1.0/32"),
	} {
		if _, err := Parse([]byte(y)); err != nil {
			t.Errorf("%s: %v\nfile:\n%s", name, err, y)
		}
	}
}

// TestParseReportsEverything checks that problems from every part of a file
// are reported together, ordered by line.
func TestParseReportsEverything(t *testing.T) {
	y := `name: Bad
defaults: {dst_port: 0, colour: red}
hosts:
  - {name: h1, vtep: 10.0.0.1}
  - {name: h1, vtep: 10.0.0.1, dst_port: 8472}
networks:
  - name: n
    vni: 100
    ports:
      - {host: h1, name: vm1, mac: "52:54:00:00:01:02"}
      - {host: h9, name: a-name-too-long-for-linux}
  - name: m
    vni: 100
    ports:
      - {host: h1, name: vm1, mac: "52:54:00:00:01:02"}
`
	checkProblems(t, y, []want{
		{"name", "lowercase", 1},
		{"defaults.colour", "unknown field", 2}, // shape problems are found first
		{"defaults.dst_port", "out of range", 2},
		{"hosts[1].name", "h1 is already used by hosts[0]", 5},
		{"hosts[1].vtep", "10.0.0.1 is already used by hosts[0]", 5},
		{"networks[0].ports[1].host", "no host named", 11},
		{"networks[0].ports[1].name", "25 characters long", 11},
		{"networks[1].vni", "100 is already used by networks[0]", 13},
		{"networks[1].ports[0].name", "vm1 is already used on host h1 by networks[0].ports[0]", 15},
	})
	// The formatted error carries path, message and line.
	_, err := Parse([]byte(y))
	if first := strings.Split(err.Error(), "\n")[0]; first != `name: "Bad" may only contain lowercase letters, digits and '-' (line 1)` {
		t.Errorf("first line of the error: %q", first)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte(hdr+hosts3), 0o644)
	os.WriteFile(bad, []byte(hdr), 0o644)
	if top, err := Load(good); err != nil || len(top.Hosts) != 3 {
		t.Errorf("Load(good) = %v, %v", top, err)
	}
	_, err := Load(bad)
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != 1 || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(bad) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// exampleFiles returns every examples/**/*.yaml of the repository.
func exampleFiles(t testing.TB) []string {
	// Tests run in the package directory; the repository root is one up.
	root := filepath.Join("..", "examples")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("walk examples: %v", err)
	}
	return files
}

func TestExamplesParse(t *testing.T) {
	files := exampleFiles(t)
	for _, must := range []string{"three-hosts/topology.yaml", "two-tenants/topology.yaml"} {
		if !slices.Contains(files, filepath.Join("..", "examples", must)) {
			t.Errorf("examples/%s is missing", must)
		}
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestExampleThreeHosts pins the example that reproduces the seed.
func TestExampleThreeHosts(t *testing.T) {
	top, err := Load("../examples/three-hosts/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := top.Network("tenant-a")
	if top.Name != "three-hosts" || len(top.Hosts) != 3 || n == nil || n.VNI != 100 || len(n.Ports) != 3 {
		t.Fatalf("unexpected topology %+v", top)
	}
	for i, h := range top.Hosts {
		p := n.Ports[i]
		if h.VTEP != netip.AddrFrom4([4]byte{192, 168, 50, byte(i + 1)}) || h.Datapath != DatapathNetdev || h.Mode != ModeLearn ||
			p.Host != h || p.IP != netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, 1, byte(i + 2)}), 24) ||
			p.MAC[5] != byte(i+2) {
			t.Errorf("host %d: %+v, port %+v", i, h, p)
		}
	}
}

// TestParseAliasBomb: a few lines of aliases standing for billions of items
// are refused quickly instead of being walked.
func TestParseAliasBomb(t *testing.T) {
	// 2000 hosts, each standing for the same host of 2000 routes.
	y := "name: t\nhosts:\n  - &h {name: a, vtep: 10.0.0.1, routes: [&r {to: 10.8.0.0/16, via: 10.0.0.9}" +
		strings.Repeat(", *r", 1999) + "]}\n" + strings.Repeat("  - *h\n", 1999)
	start := time.Now()
	errs := problemsOf(t, y)
	// Only a hang detector: walking the expansion would take hours, refusing
	// it takes ~1.5 s idle (more on a loaded CI machine, so no tight bound).
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("took %v", d)
	}
	found := false
	for _, e := range errs {
		found = found || (strings.HasSuffix(e.Path, "].routes") && strings.Contains(e.Msg, "more than 1000000"))
	}
	if !found {
		t.Errorf("no size problem in:\n%v", &Errors{List: errs})
	}
}

// TestParseLarge: a big but plausible file parses in reasonable time.
func TestParseLarge(t *testing.T) {
	const nHosts, nNets = 1000, 2000
	var s strings.Builder
	s.WriteString("name: big\nhosts:\n")
	for i := range nHosts {
		fmt.Fprintf(&s, "  - {name: h%d, vtep: 10.%d.%d.1}\n", i, i/256, i%256)
	}
	s.WriteString("networks:\n")
	for i := range nNets {
		fmt.Fprintf(&s, "  - name: n%d\n    vni: %d\n    ports:\n", i, i+1)
		for j := range 3 {
			h := (i + j*7) % nHosts
			fmt.Fprintf(&s, "      - {host: h%d, name: p%d, mac: '52:54:00:%02x:%02x:%02x', ip: 10.1.%d.%d/16}\n", h, i, j+1, i/256, i%256, j, i%250+1)
		}
	}
	start := time.Now()
	top := mustParse(t, s.String())
	t.Logf("%d hosts, %d networks, %d bytes: %v", len(top.Hosts), len(top.Networks), s.Len(), time.Since(start))
	if len(top.Hosts) != nHosts || len(top.Networks) != nNets {
		t.Errorf("got %d hosts, %d networks", len(top.Hosts), len(top.Networks))
	}
}

// specExample is the example of the topology spec, verbatim.
const specExample = `name: three-hosts              # required; [a-z0-9-], at most 20 characters
defaults:                      # optional; every host inherits these unless it overrides them
  mode: learn                  # learn | controller   (how br-tun's unicast table is filled)
  dst_port: 4789               # VXLAN UDP port of tunnels (1..65535); 4789 IANA, 8472 Linux default
  datapath: system             # system (kernel datapath) | netdev (userspace datapath)
  learn_timeout: 300           # seconds a learned MAC lives (learn mode)
controller: tcp:192.168.50.254:6653   # where switches connect in controller mode (tcp: or ssl:)
hosts:
  - name: host1                # required, unique; [a-z0-9-], at most 12 characters
    vtep: 192.168.50.1         # required, unique; the host's underlay address (IPv4 or IPv6)
    managed: true              # default true; false = a peer VTEP we tunnel to but never
                               # configure (a Linux-kernel VXLAN device, a hardware switch)
    dst_port: 8472             # optional: every tunnel to this VTEP uses this UDP port, both
                               # directions (e.g. a Linux-kernel peer left on 8472)
    routes:                    # optional kernel routes applied in the host by ` + "`" + `apply` + "`" + `
      - {to: 10.1.8.0/24, via: 1.1.1.2}
  - name: host2
    vtep: 192.168.50.2
networks:
  - name: tenant-a             # required, unique
    vni: 100                   # required, unique; 1..16777215
    mtu: 1450                  # optional; default: underlay MTU - 50 (IPv4) or - 70 (IPv6)
    ports:
      - host: host1            # required; a host above
        name: vm1              # required; interface name on that host, at most 15 characters
        type: vm               # vm (default): an existing interface attached to br-int;
                               # internal: an OVS internal port created on br-int
        mac: 52:54:00:00:01:02 # optional; required where the controller must know it
        ip: 10.1.1.2/24        # optional; internal ports get this address on the host;
                               # the controller answers ARP for it; the lab gives it to the VM
        gateway: 10.1.1.1      # optional; the lab's default route inside a VM
`

func TestSpecExample(t *testing.T) {
	top := mustParse(t, specExample)
	h1, h2 := top.Host("host1"), top.Host("host2")
	p := top.Network("tenant-a").Ports[0]
	if top.Controller != "tcp:192.168.50.254:6653" || !h1.Managed || h1.DstPort != 8472 || !h1.DstPortSet || h2.DstPort != 4789 ||
		h1.Datapath != DatapathSystem || h1.LearnTimeout != 300 || len(h1.Routes) != 1 ||
		top.Network("tenant-a").MTU != 1450 || p.Host != h1 || p.MAC.String() != "52:54:00:00:01:02" || p.IP.String() != "10.1.1.2/24" || p.Gateway.String() != "10.1.1.1" {
		t.Errorf("spec example resolved wrongly: %+v %+v %+v", h1, h2, p)
	}
}
