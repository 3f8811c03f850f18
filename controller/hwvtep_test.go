package controller

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
)

const hwTopo = `name: hw
defaults: {mode: controller}
controller: tcp:10.0.0.254:6653
hosts:
  - {name: h1, vtep: 10.0.0.1}
  - {name: h2, vtep: 10.0.0.2}
  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}}
networks:
  - name: a
    vni: 100
    ports:
      - {host: h1, name: vm1, mac: "52:54:00:00:01:01", ip: 10.1.1.1/24}
      - {host: h2, name: vm2}
      - {host: tor1, name: p0, vlan: 0, mac: "52:54:00:00:09:09"}
  - name: b
    vni: 200
    ports:
      - {host: h1, name: vm3, mac: "52:54:00:00:02:01"}
      - {host: h2, name: vm4, mac: "52:54:00:00:02:02"}
`

// The switch's learned MACs become knowledge on the hardware VTEP host and
// go when the switch drops them; the switch is told of the MACs of the
// other hosts in its networks only, behind their VTEPs.
func TestHardwareVTEPKnowledge(t *testing.T) {
	s, err := NewServer(ServerOptions{Topology: parseTopo(t, hwTopo), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tor := s.Topology().Host("tor1")
	if hw := s.hardwareVTEPs(); len(hw) != 1 || hw[0] != tor {
		t.Fatalf("hardware VTEPs driven: %v", hw)
	}
	log := zaptest.NewLogger(t)
	server := mac("02:00:00:00:00:11")
	prev := s.observeLocal(tor, []hwvtep.LocalMAC{{VNI: 100, MAC: server}, {VNI: 100, MAC: mac("52:54:00:00:01:01")}}, nil, log)
	if e, ok := s.know.Lookup(key(100, "02:00:00:00:00:11")); !ok || e.Host != "tor1" || !e.Learned {
		t.Errorf("server MAC after the switch reported it: %+v, %v; want learned on tor1", e, ok)
	}
	if e, _ := s.know.Lookup(key(100, "52:54:00:00:01:01")); e.Host != "h1" {
		t.Errorf("a MAC declared on h1 that the switch reports stays on h1, got %s", e.Host)
	}
	v := s.know.Version()
	prev = s.observeLocal(tor, []hwvtep.LocalMAC{{VNI: 100, MAC: server}}, prev, log)
	if s.know.Version() != v {
		t.Errorf("reading the same MACs again changed the knowledge")
	}
	s.observeLocal(tor, nil, prev, log)
	if _, ok := s.know.Lookup(key(100, "02:00:00:00:00:11")); ok {
		t.Errorf("server MAC still known after the switch dropped it")
	}
	if _, ok := s.know.Lookup(key(100, "52:54:00:00:09:09")); !ok {
		t.Errorf("declared MAC of tor1 forgotten")
	}

	got := map[string]hwvtep.RemoteMAC{}
	for _, r := range s.remoteMACs(tor) {
		got[r.MAC.String()] = r
	}
	want := hwvtep.RemoteMAC{VNI: 100, MAC: mac("52:54:00:00:01:01"), IP: netip.MustParseAddr("10.1.1.1"), VTEP: netip.MustParseAddr("10.0.0.1")}
	if len(got) != 1 || got[want.MAC.String()].String() != want.String() || got[want.MAC.String()].IP != want.IP {
		t.Errorf("remote MACs for tor1 = %v, want only %v (vm1; not tor1's own, not network b's)", got, want)
	}
	// A MAC learned on h2 from a packet-in is told to the switch too.
	if _, err := s.know.Observe(key(100, "02:00:00:00:00:22"), "h2", netip.Addr{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var vteps []string
	for _, r := range s.remoteMACs(tor) {
		vteps = append(vteps, r.MAC.String()+"@"+r.VTEP.String())
	}
	slices.Sort(vteps)
	if !slices.Equal(vteps, []string{"02:00:00:00:00:22@10.0.0.2", "52:54:00:00:01:01@10.0.0.1"}) {
		t.Errorf("remote MACs for tor1 = %v", vteps)
	}
}
