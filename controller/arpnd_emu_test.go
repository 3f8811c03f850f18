package controller

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// ARP, neighbour discovery and unmanaged peers against emulated switches:
// what each kind of report teaches the controller and what every switch
// then holds.

// emuStarted is testTopo's hosts, emulated and synced with a controller.
func emuStarted(t *testing.T) ([]*emuHost, *runningServer) {
	t.Helper()
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	srv, _ := emuServer(t, topo, hosts, ServerOptions{})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, 6) })
	return hosts, srv
}

// settled waits until every switch reflects the knowledge and holds what it
// says.
func settled(t *testing.T, hosts []*emuHost, srv *runningServer) {
	t.Helper()
	v := srv.Knowledge().Version()
	eventually(t, 5*time.Second, "knowledge pushed everywhere", func() bool { return srv.synced(v, 6) })
	checkEmulated(t, srv.Topology(), hosts, srv.Server)
}

// holds reports whether sw has a flow whose text contains every part.
func holds(t *testing.T, sw *openflowtest.Switch, parts ...string) bool {
	t.Helper()
	dump, err := sw.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(dump, func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	})
}

// A neighbour solicitation reported by table 1 teaches its sender's MAC and
// IPv6 address; the other hosts then answer solicitations for it.
func TestLearnIPv6FromSolicitationEmulated(t *testing.T) {
	hosts, srv := emuStarted(t)
	h1, h2 := emuHostNamed(hosts, "h1"), emuHostNamed(hosts, "h2")
	const vm, ip6 = "52:54:00:00:06:02", "fd00::62"
	frame := ndFrameIn(h2.alloc.LocalVLAN[100], 135, vm, ip6, "fd00::1", mac(vm))
	if n := h2.tun.SendPacketIn(openflowtest.UnknownSource(frame)); n != 1 {
		t.Fatalf("packet-in reached %d controllers", n)
	}
	eventually(t, 5*time.Second, "MAC and IPv6 learned", func() bool {
		e, ok := srv.Knowledge().Lookup(key(100, vm))
		return ok && e.Host == "h2" && slices.Contains(e.IPs, netip.MustParseAddr(ip6))
	})
	settled(t, hosts, srv)
	if !holds(t, h1.tun, "table=3", "nd_target="+ip6, "set_field:"+vm+"->eth_src", "goto_table:4") {
		t.Errorf("h1 has no ND responder for %s", ip6)
	}
	if !holds(t, h2.tun, "table=1", "priority=4", "dl_src="+vm, "ipv6_src="+ip6) {
		t.Errorf("h2 still reports %s's solicitations", vm)
	}
}

// A gratuitous ARP reported from another host moves the MAC there; one
// from another MAC (a VIP taken over) moves the IP to that MAC, and every
// host's responder then answers with the new owner.
func TestGratuitousARPMovesMACAndIPEmulated(t *testing.T) {
	hosts, srv := emuStarted(t)
	h1, h2, h3 := emuHostNamed(hosts, "h1"), emuHostNamed(hosts, "h2"), emuHostNamed(hosts, "h3")
	vm, other, vip := mac("52:54:00:00:07:02"), mac("52:54:00:00:07:03"), netip.MustParseAddr("10.1.0.50")
	garp := func(e *emuHost, src []byte) {
		frame := openflowtest.ARPRequest(src, vip, vip, e.alloc.LocalVLAN[100])
		if n := e.tun.SendPacketIn(openflowtest.UnknownSource(frame)); n != 1 {
			t.Fatalf("packet-in reached %d controllers", n)
		}
	}
	owner := func(host, m string) func() bool {
		return func() bool {
			e, ok := srv.Knowledge().Lookup(key(100, m))
			return ok && e.Host == host && slices.Contains(e.IPs, vip)
		}
	}
	garp(h2, vm)
	eventually(t, 5*time.Second, "VIP learned on h2", owner("h2", vm.String()))
	settled(t, hosts, srv)

	garp(h3, vm) // the VM migrated to h3
	eventually(t, 5*time.Second, "MAC moved to h3 with its IP", owner("h3", vm.String()))
	settled(t, hosts, srv)
	if !holds(t, h1.tun, "table=20", "dl_dst="+vm.String(), fmt.Sprintf("output:%d", h1.alloc.TunnelOFPort["h3"])) {
		t.Errorf("h1's table 20 does not send %s to h3", vm)
	}

	garp(h1, other) // keepalived on h1 took the VIP over
	eventually(t, 5*time.Second, "VIP moved to the other MAC", owner("h1", other.String()))
	if e, _ := srv.Knowledge().Lookup(key(100, vm.String())); slices.Contains(e.IPs, vip) {
		t.Errorf("the old owner still has the VIP: %+v", e)
	}
	settled(t, hosts, srv)
	for _, e := range []*emuHost{h2, h3} {
		if !holds(t, e.tun, "table=3", "arp_tpa="+vip.String(), "set_field:"+other.String()+"->eth_src") {
			t.Errorf("%s does not answer for the VIP with its new owner %s", e.h.Name, other)
		}
	}
}

// Table 2 reports frames from an unmanaged peer's tunnel: the MAC is learned
// on that peer and every host sends to it directly. The same report from a
// managed peer's tunnel is ignored: that peer reports its own.
func TestUnmanagedPeerLearnedFromTunnelEmulated(t *testing.T) {
	hosts, srv := emuStarted(t)
	h1, h2, h3 := emuHostNamed(hosts, "h1"), emuHostNamed(hosts, "h2"), emuHostNamed(hosts, "h3")
	vm := mac("52:54:00:00:09:22")
	fromTunnel := func(e *emuHost, peer string) openflowtest.PacketIn {
		frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.92"), netip.MustParseAddr("10.1.0.1"), e.alloc.LocalVLAN[100])
		return openflowtest.PacketIn{Reason: openflowtest.ReasonAction, Table: flows.TableFromTun, Cookie: flows.CookieOwned | 1,
			InPort: e.alloc.TunnelOFPort[peer], TunnelID: 100, Data: frame}
	}
	ignored := srv.Stats().PacketIns[resultIgnored]
	h1.tun.SendPacketIn(fromTunnel(h1, "h2"))
	eventually(t, 5*time.Second, "report from a managed peer's tunnel ignored", func() bool {
		return srv.Stats().PacketIns[resultIgnored] > ignored
	})
	if _, ok := srv.Knowledge().Lookup(key(100, vm.String())); ok {
		t.Fatal("learned a MAC from a managed peer's tunnel")
	}

	h1.tun.SendPacketIn(fromTunnel(h1, "kv"))
	eventually(t, 5*time.Second, "MAC learned on the unmanaged peer", func() bool {
		e, ok := srv.Knowledge().Lookup(key(100, vm.String()))
		return ok && e.Host == "kv" && slices.Contains(e.IPs, netip.MustParseAddr("10.1.0.92"))
	})
	settled(t, hosts, srv)
	for _, e := range []*emuHost{h1, h2, h3} {
		port := fmt.Sprintf("in_port=%d", e.alloc.TunnelOFPort["kv"])
		if !holds(t, e.tun, "table=20", "dl_dst="+vm.String(), fmt.Sprintf("output:%d", e.alloc.TunnelOFPort["kv"])) {
			t.Errorf("%s's table 20 does not send %s to kv", e.h.Name, vm)
		}
		if !holds(t, e.tun, "table=2", "priority=2", port, "dl_src="+vm.String()) {
			t.Errorf("%s still reports %s from kv's tunnel", e.h.Name, vm)
		}
	}
}
