package ovsdb

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// datapathIDString is the bridge's datapath ID in exactly the 16 hex digits
// other_config:datapath-id takes.
func TestDatapathIDString(t *testing.T) {
	for _, tc := range [][2]string{{"three-hosts", "host1"}, {"other", "h"}, {"", ""}} {
		for _, br := range []string{topology.BridgeTun, topology.BridgeInt} {
			id := topology.BridgeDatapathID(tc[0], tc[1], br)
			if s := datapathIDString(tc[0], tc[1], br); len(s) != 16 || s != fmt.Sprintf("%016x", id) {
				t.Errorf("datapathIDString(%q, %q, %s) = %q, want %016x", tc[0], tc[1], br, s, id)
			}
		}
	}
}

func TestDesiredSSL(t *testing.T) {
	files := &SSLFiles{PrivateKey: "/etc/ovx/sw-key.pem", Certificate: "/etc/ovx/sw-cert.pem", CACert: "/etc/ovx/ca.pem"}
	for _, tc := range []struct {
		name       string
		mode       topology.Mode
		controller string
		files      *SSLFiles
		want       bool   // an SSL row is wanted
		error      string // "" for no error
	}{
		{"tcp target", topology.ModeController, "tcp:127.0.0.1:6653", files, false, ""},
		{"learn mode with an ssl target", topology.ModeLearn, "ssl:127.0.0.1:6653", nil, false, ""},
		{"ssl target with files", topology.ModeController, "ssl:127.0.0.1:6653", files, true, ""},
		{"ssl target without files", topology.ModeController, "ssl:127.0.0.1:6653", nil,
			false, "host host1: controller target ssl:127.0.0.1:6653 needs TLS files: missing --private-key, --certificate, --ca-cert"},
		{"ssl target with empty files", topology.ModeController, "ssl:127.0.0.1:6653", &SSLFiles{},
			false, "missing --private-key, --certificate, --ca-cert"},
		{"ssl target with a key only", topology.ModeController, "ssl:127.0.0.1:6653", &SSLFiles{PrivateKey: "/k.pem"},
			false, "needs TLS files: missing --certificate, --ca-cert"},
		{"ssl target with a relative path", topology.ModeController, "ssl:127.0.0.1:6653",
			&SSLFiles{PrivateKey: "/k.pem", Certificate: "cert.pem", CACert: "/ca.pem"},
			false, "TLS file paths must be absolute (ovs-vswitchd opens them from its own working directory): --certificate cert.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := topo(tc.mode)
			tp.Controller = tc.controller
			w, err := desiredSSL(tp, tp.Host("host1"), tc.files)
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (w != nil) != tc.want {
				t.Fatalf("desiredSSL = %+v, want an SSL row: %v", w, tc.want)
			}
			if w == nil {
				return
			}
			want := wantSSL{privateKey: files.PrivateKey, certificate: files.Certificate, caCert: files.CACert,
				externalIDs: map[string]string{KeyOwner: "hxtest", KeyHost: "host1"}}
			if !reflect.DeepEqual(*w, want) {
				t.Errorf("desiredSSL = %+v, want %+v", *w, want)
			}
		})
	}
}

func TestLocalVLANsRoundTrip(t *testing.T) {
	m := map[uint32]uint16{200: 2, 100: 1, 16777215: 4094}
	s := formatLocalVLANs(m)
	if s != "100=1,200=2,16777215=4094" {
		t.Fatalf("formatLocalVLANs = %q", s)
	}
	back, err := parseLocalVLANs(s)
	if err != nil || formatLocalVLANs(back) != s {
		t.Fatalf("parseLocalVLANs(%q) = %v, %v", s, back, err)
	}
	if m, err := parseLocalVLANs(""); err != nil || len(m) != 0 {
		t.Errorf("parseLocalVLANs(\"\") = %v, %v", m, err)
	}
	for _, bad := range []string{"100", "100=0", "100=4095", "0=1", "x=1", "100=1,100=2", "16777216=1", "100=1,"} {
		if _, err := parseLocalVLANs(bad); err == nil || !strings.Contains(err.Error(), KeyLocalVLANs) {
			t.Errorf("parseLocalVLANs(%q) error = %v", bad, err)
		}
	}
}

func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"unix:/var/run/openvswitch/db.sock", "tcp:127.0.0.1:6640", "tcp:[::1]:6640", "ssl:127.0.0.1:6640"} {
		if err := checkEndpoint(ok); err != nil {
			t.Errorf("checkEndpoint(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "unix:", "/var/run/openvswitch/db.sock", "tcp:127.0.0.1", "ssl:127.0.0.1", "punix:/x"} {
		if err := checkEndpoint(bad); err == nil {
			t.Errorf("checkEndpoint(%q) accepted", bad)
		}
	}
}

func TestConnectFailsClearly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Connect(ctx, "unix:/tmp/hx-no-such-dir/db.sock", nil)
	if err == nil || !strings.Contains(err.Error(), "connecting to OVSDB at unix:/tmp/hx-no-such-dir/db.sock") {
		t.Fatalf("Connect to a missing socket: %v", err)
	}
	// ssl: without the client's TLS files is refused before dialing,
	// naming the flags that give them.
	if _, err := Connect(ctx, "ssl:127.0.0.1:6640", nil); err == nil || !strings.Contains(err.Error(), "needs --db-private-key, --db-certificate and --db-ca-cert") {
		t.Fatalf("Connect to ssl: %v", err)
	}
}

func TestDesired(t *testing.T) {
	tp := topo(topology.ModeController)
	h := tp.Host("host1")
	alloc, err := tp.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := desired(tp, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range want {
		got = append(got, fmt.Sprintf("bridge %s dp=%s ctrl=%v", b.name, b.datapathType, len(b.controllers) == 1))
		for _, p := range b.ports {
			got = append(got, fmt.Sprintf("  %s %s %s", p.bridge, p.name, p.summary()))
		}
	}
	wantLines := []string{
		"bridge br-int dp=netdev ctrl=true",
		"  br-int br-int (internal, bridge local port)",
		"  br-int patch-int (patch peer=patch-tun)",
		"  br-int hxvm1 (vm network=tenant-a vni=100 tag=1)",
		"  br-int hxint1 (internal network=tenant-b vni=200 tag=2)",
		"bridge br-tun dp=netdev ctrl=true",
		"  br-tun br-tun (internal, bridge local port)",
		"  br-tun patch-tun (patch peer=patch-int ofport=1)",
		"  br-tun vx-host2 (vxlan remote_ip=192.168.50.2 dst_port=4789 key=flow ofport=10)",
		"  br-tun vx-host3 (vxlan remote_ip=192.168.50.3 dst_port=8472 key=flow ofport=11)",
	}
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("desired:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	// Both bridges are served by the controller, with the same connection
	// settings, each under its own datapath ID.
	wantCtrl := wantController{
		target: "tcp:127.0.0.1:6653", connectionMode: "out-of-band",
		rateLimit: 1000, burstLimit: 250, inactivityProbe: 5000,
		externalIDs: map[string]string{KeyOwner: "hxtest", KeyHost: "host1"},
	}
	for _, b := range want {
		if len(b.controllers) != 1 || !reflect.DeepEqual(*b.controllers[0], wantCtrl) {
			t.Errorf("%s controllers = %+v, want one %+v", b.name, b.controllers, wantCtrl)
		}
	}
	if want[0].controllers[0] == want[1].controllers[0] {
		t.Error("br-int and br-tun share one wantController")
	}
	if got := want[0].controllers[0].summary(); got != "(controller_rate_limit=1000/s controller_burst_limit=250 inactivity_probe=5000ms)" {
		t.Errorf("controller summary = %q", got)
	}
	intID, tunID := want[0].otherConfig["datapath-id"], want[1].otherConfig["datapath-id"]
	if tunID != fmt.Sprintf("%016x", topology.DatapathID("hxtest", "host1")) {
		t.Errorf("br-tun datapath-id = %q, want DatapathID's %016x", tunID, topology.DatapathID("hxtest", "host1"))
	}
	if intID != fmt.Sprintf("%016x", topology.BridgeDatapathID("hxtest", "host1", topology.BridgeInt)) || intID == tunID {
		t.Errorf("br-int datapath-id = %q (br-tun's %q), want BridgeDatapathID's %016x",
			intID, tunID, topology.BridgeDatapathID("hxtest", "host1", topology.BridgeInt))
	}
	for _, b := range want {
		if b.otherConfig["disable-in-band"] != "true" || len(b.otherConfig) != 2 {
			t.Errorf("%s other_config = %v", b.name, b.otherConfig)
		}
	}

	// Learn mode: no controller on either bridge, datapath IDs all the same.
	learn := topo(topology.ModeLearn)
	lw, err := desired(learn, learn.Host("host1"), alloc)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range lw {
		if len(b.controllers) != 0 || b.otherConfig["datapath-id"] != want[i].otherConfig["datapath-id"] {
			t.Errorf("learn mode %s: controllers %+v, datapath-id %q", b.name, b.controllers, b.otherConfig["datapath-id"])
		}
	}
	if want[0].externalIDs[KeyLocalVLANs] != "100=1,200=2" {
		t.Errorf("br-int external_ids = %v", want[0].externalIDs)
	}
	for _, b := range want {
		for _, p := range b.ports {
			if p.externalIDs[KeyOwner] != "hxtest" || p.externalIDs[KeyHost] != "host1" {
				t.Errorf("port %s without owner marks: %v", p.name, p.externalIDs)
			}
		}
	}
}

func TestDesiredRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*topology.Topology, *topology.Allocation)
		error string
	}{
		{"no VLAN for a VNI", func(_ *topology.Topology, a *topology.Allocation) { delete(a.LocalVLAN, 200) },
			"allocation has no local VLAN for VNI 200 (network tenant-b)"},
		{"no ofport for a peer", func(_ *topology.Topology, a *topology.Allocation) { delete(a.TunnelOFPort, "host3") },
			"allocation has no tunnel ofport for peer host3"},
		{"ofport taken by the patch port", func(_ *topology.Topology, a *topology.Allocation) { a.TunnelOFPort["host2"] = 1 },
			"allocation gives peer host2 tunnel ofport 1, outside 10..65279"},
		{"two peers on one ofport", func(_ *topology.Topology, a *topology.Allocation) { a.TunnelOFPort["host3"] = 10 },
			"allocation gives tunnel ofport 10 to both host2 and host3"},
		{"two VNIs on one VLAN", func(_ *topology.Topology, a *topology.Allocation) { a.LocalVLAN[200] = 1 },
			"allocation gives local VLAN 1 to both VNI 100 and VNI 200"},
		{"VM port named like a tunnel port", func(tp *topology.Topology, _ *topology.Allocation) { tp.Networks[0].Ports[0].Name = "vx-host2" },
			"port name vx-host2 is used twice on host host1"},
		{"VM port named like a bridge", func(tp *topology.Topology, _ *topology.Allocation) { tp.Networks[0].Ports[0].Name = "br-int" },
			"port name br-int is used twice on host host1"},
		{"controller mode without controller", func(tp *topology.Topology, _ *topology.Allocation) {
			tp.Hosts[0].Mode = topology.ModeController
			tp.Controller = ""
		}, "host host1 is in controller mode but the topology names no controller"},
		{"unnamed topology", func(tp *topology.Topology, _ *topology.Allocation) { tp.Name = "" }, "topology has no name"},
		{"unmanaged host", func(tp *topology.Topology, _ *topology.Allocation) { tp.Hosts[0].Managed = false }, "host host1 is not managed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := topo(topology.ModeLearn)
			h := tp.Host("host1")
			alloc, err := tp.Allocate(h, topology.Allocation{})
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(tp, &alloc)
			_, err = desired(tp, h, alloc)
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.error)
			}
		})
	}
}

// An internal port's declared MAC becomes its Interface's mac; VM ports'
// MACs belong to the VM and are never set.
func TestDesiredInternalPortMAC(t *testing.T) {
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	for _, n := range tp.Networks {
		for _, p := range n.Ports {
			p.MAC = net.HardwareAddr{0x52, 0x54, 0, 0, 9, byte(len(p.Name))}
		}
	}
	alloc, err := tp.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := desired(tp, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, b := range want {
		for _, p := range b.ports {
			switch p.name {
			case "hxint1":
				seen++
				if p.mac == nil || *p.mac != "52:54:00:00:09:06" {
					t.Errorf("internal port mac = %v", p.mac)
				}
			case "hxvm1":
				seen++
				if p.mac != nil {
					t.Errorf("vm port mac set to %s", *p.mac)
				}
			}
		}
	}
	if seen != 2 {
		t.Fatalf("saw %d of the 2 ports", seen)
	}
}
