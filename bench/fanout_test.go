package main

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/controller"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// TestFanoutThroughTheController runs the project's controller in-process
// with a few emulated switches: a packet-in for a new MAC on one must reach
// every other as an acknowledged table-20 entry.
func TestFanoutThroughTheController(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the controller (a few seconds)")
	}
	const s = 4
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := topology.Parse([]byte(fanoutTopology(s, l.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := controller.NewServer(controller.ServerOptions{Topology: tp, Listeners: []net.Listener{l}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Run(ctx, nil) }()
	defer func() { cancel(); <-stopped }()

	var emus []*openflowtest.Switch
	var vlan uint16
	for _, h := range tp.Hosts {
		alloc, err := tp.Allocate(h, topology.Allocation{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := openflowtest.New(openflowtest.TunnelBridge(tp, h, alloc))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Connect(l.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		emus = append(emus, e)
		vlan = alloc.LocalVLAN[tp.Networks[0].VNI]
	}
	if waiting, err := waitSynced(ctx, emus, 30*time.Second, nil); err != nil || waiting > 0 {
		t.Fatalf("%d switches not programmed: %v", waiting, err)
	}
	before := emus[1].FlowCount()

	mac := net.HardwareAddr{0x52, 0x54, 0x03, 0, 0, 9}
	var left atomic.Int32
	left.Store(s - 1)
	done := make(chan struct{})
	for _, e := range emus[1:] {
		e.Watch(flows.TableUnicast, mac, func(time.Time) {
			if left.Add(-1) == 0 {
				close(done)
			}
		})
	}
	counts := make([]openflowtest.Counters, len(emus))
	for i, e := range emus {
		counts[i] = e.Counters()
	}
	emus[0].SendPacketIn(openflowtest.UnknownSource(openflowtest.ARPRequest(mac, netip.MustParseAddr("10.250.0.9"), netip.MustParseAddr("10.250.0.1"), vlan)))
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%d of %d switches never acknowledged the new MAC (controller stats %+v)", left.Load(), s-1, srv.Stats())
	}
	if err := waitQuiet(ctx, emus); err != nil {
		t.Fatal(err)
	}
	// Each other switch got exactly the flows the compiler gives the new
	// endpoint there (unicast entry, ARP responder, gratuitous ARP ones).
	ep := flows.Endpoint{VNI: tp.Networks[0].VNI, MAC: mac, Host: tp.Hosts[0].Name,
		IPs: []netip.Addr{netip.MustParseAddr("10.250.0.9")}, Learned: true}
	alloc1, err := tp.Allocate(tp.Hosts[1], topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	want := before + len(flows.CompileEndpoints(tp, tp.Hosts[1], alloc1, []flows.Endpoint{ep}))
	if got := emus[1].FlowCount(); got != want || want <= before {
		t.Errorf("switch 1 holds %d flows after the new MAC, want %d", got, want)
	}
	// One round trip each: the adds and one barrier, no bundle.
	for i, e := range emus[1:] {
		c, b := e.Counters(), counts[i+1]
		if c.Bundles != b.Bundles || c.Barriers != b.Barriers+1 {
			t.Errorf("switch %d: %d bundles and %d barriers for the new MAC, want none and one", i+1, c.Bundles-b.Bundles, c.Barriers-b.Barriers)
		}
	}
	if st := srv.Stats(); st.PacketIns["learned"] != 1 {
		t.Errorf("controller packet-in results %v, want one learned", st.PacketIns)
	}
}
