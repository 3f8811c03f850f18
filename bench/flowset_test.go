package main

import (
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func TestGeneratedTopologyShape(t *testing.T) {
	s := Size{Hosts: 20, Networks: 20, Ports: 200}
	tp, err := genTopology(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Hosts) != 20 || len(tp.Networks) != 20 {
		t.Fatalf("%d hosts, %d networks", len(tp.Hosts), len(tp.Networks))
	}
	ports := 0
	for _, n := range tp.Networks {
		ports += len(n.Ports)
		hosts := map[string]bool{}
		for _, p := range n.Ports {
			hosts[p.Host.Name] = true
			if p.MAC == nil || !p.IP.IsValid() {
				t.Fatalf("port %s of %s has no MAC or IP", p.Name, n.Name)
			}
		}
		if len(hosts) != 10 {
			t.Errorf("network %s spans %d hosts, want 10 (one port each)", n.Name, len(hosts))
		}
	}
	if ports != 200 {
		t.Errorf("%d ports, want 200", ports)
	}
	// With as many networks as hosts, every host is in exactly k networks.
	for _, h := range tp.Hosts {
		if n := len(tp.NetworksOn(h)); n != 10 {
			t.Errorf("host %s is in %d networks, want 10", h.Name, n)
		}
		if h.Mode != topology.ModeController {
			t.Errorf("host %s in %s mode", h.Name, h.Mode)
		}
	}
}

func TestFlowSetHasExactlyTheWantedFlows(t *testing.T) {
	for _, n := range []int{300, 1000, 2500} {
		fs, err := flowSetOf(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs.flows) != n {
			t.Errorf("%d flows, want %d", len(fs.flows), n)
		}
		keys := map[string]bool{}
		tables := map[uint8]int{}
		for _, f := range fs.flows {
			if f.Cookie&reconcileMask != reconcileCookie&reconcileMask {
				t.Fatalf("flow %s outside the reconciled cookie range", f)
			}
			if keys[f.Key()] {
				t.Fatalf("two flows of key %s", f.Key())
			}
			keys[f.Key()] = true
			tables[f.Table]++
		}
		// The set is a controller's: pipeline, tunnel classification,
		// unicast entries and ARP responders all present.
		for _, tb := range []uint8{flows.TableClassify, flows.TableFromPort, flows.TableFromTun, flows.TableUnicast, flows.TableFlood} {
			if tables[tb] == 0 {
				t.Errorf("%d flows: none in table %d (%v)", n, tb, tables)
			}
		}
		if !strings.HasPrefix(fs.flows[0].String(), " cookie=0x7678") {
			t.Errorf("flow text %q does not start as ovs-ofctl prints it", fs.flows[0].String())
		}
	}
	if _, err := buildFlowSet(Size{Hosts: 50, Networks: 50, Ports: 2500}, 100); err == nil {
		t.Error("a topology bigger than the wanted flow count was accepted")
	}
}

func TestExtraPortIsASmallChange(t *testing.T) {
	fs, err := flowSetOf(3000)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := fs.withExtraPort()
	if err != nil {
		t.Fatal(err)
	}
	for peer, port := range fs.alloc.TunnelOFPort {
		if changed.alloc.TunnelOFPort[peer] != port {
			t.Errorf("peer %s moved from port %d to %d", peer, port, changed.alloc.TunnelOFPort[peer])
		}
	}
	d := openflow.ComputeDiff(changed.flows, fs.flows)
	n := len(d.Add) + len(d.Modify) + len(d.Delete)
	if n < 3 || n > 10 || len(d.Delete) != 0 { // a handful, as small_change_flowmods wants
		t.Errorf("one more port changed %d flows (%d deleted):\n%s", n, len(d.Delete), d)
	}
}
