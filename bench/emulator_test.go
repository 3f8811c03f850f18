package main

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contiv/libOpenflow/util"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

// emulated starts an emulator for host 0 of a small generated topology and
// connects the project's own OpenFlow client to it.
func emulated(t *testing.T) (*emuSwitch, *openflow.Switch, *flowSet) {
	t.Helper()
	fs, err := buildFlowSet(Size{Hosts: 6, Networks: 6, Ports: 18}, 200)
	if err != nil {
		t.Fatal(err)
	}
	dpid := ovsdb.BridgeDatapathID(fs.topo.Name, fs.host.Name, flows.BridgeTun)
	emu, err := newEmuSwitch(fs.topo, fs.host, fs.alloc, dpid)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if nc, err := l.Accept(); err == nil {
			emu.serve(nc)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sw, err := openflow.Dial(ctx, "tcp:"+l.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close(); emu.close() })
	if got := sw.Conn().DatapathID(); got != dpid {
		t.Fatalf("datapath ID %016x, want %016x", got, dpid)
	}
	return emu, sw, fs
}

func TestEmulatorServesTheControllersClient(t *testing.T) {
	emu, sw, fs := emulated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The advertisement apply leaves is there, and reads back as the
	// allocation.
	adv, err := sw.Dump(ctx, flows.CookieAllocation, flows.CookieOwnerMask)
	if err != nil {
		t.Fatal(err)
	}
	if got := flows.LocalVLANsFromFlows(adv); len(got) == 0 || len(got) != len(fs.alloc.LocalVLAN) {
		t.Fatalf("advertised local VLANs %v, want %v", got, fs.alloc.LocalVLAN)
	}
	ports, err := sw.Ports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fs.topo.Peers(fs.host) {
		want := ovsdb.TunnelPortName(p.Name)
		if !slices.ContainsFunc(ports, func(q ofconn.Port) bool { return q.Name == want && q.No == fs.alloc.TunnelOFPort[p.Name] }) {
			t.Errorf("no port %s numbered %d in %v", want, fs.alloc.TunnelOFPort[p.Name], ports)
		}
	}

	res, err := sw.Reconcile(ctx, fs.flows, reconcileCookie, reconcileMask)
	if err != nil {
		t.Fatal(err)
	}
	if res.FlowMods != len(fs.flows) {
		t.Fatalf("first reconcile sent %d flow-mods, want %d", res.FlowMods, len(fs.flows))
	}
	got, err := sw.Dump(ctx, reconcileCookie, reconcileMask)
	if err != nil {
		t.Fatal(err)
	}
	if d := openflow.ComputeDiff(fs.flows, got); !d.Empty() {
		t.Fatalf("the emulator holds other flows than were installed:\n%s", d)
	}
	if res, err := sw.Reconcile(ctx, fs.flows, reconcileCookie, reconcileMask); err != nil || res.FlowMods != 0 {
		t.Fatalf("second reconcile: %d flow-mods, %v; want 0, nil", res.FlowMods, err)
	}
	// A smaller set: the rest is deleted (strictly, by the installed match).
	res, err = sw.Reconcile(ctx, fs.flows[:10], reconcileCookie, reconcileMask)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != len(fs.flows)-10 {
		t.Fatalf("deleted %d, want %d", res.Deleted, len(fs.flows)-10)
	}
	if n := emu.flowCount(); n != 10+len(adv) {
		t.Fatalf("emulator holds %d flows, want %d", n, 10+len(adv))
	}
}

func TestEmulatorRejectsAndDiscardsBadBundles(t *testing.T) {
	_, sw, fs := emulated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A good flow-mod and one the switch refuses, in one bundle: the
	// switch must apply neither.
	good, err := ofcodec.FlowMod(fs.flows[0], ofcodec.CommandAdd)
	if err != nil {
		t.Fatal(err)
	}
	err = sw.Bundle(ctx, []util.Message{good, ofconn.Raw(99, nil)}, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("bundle of an unsupported message: %v, want a rejection", err)
	}
	if got, err := sw.Dump(ctx, reconcileCookie, reconcileMask); err != nil || len(got) != 0 {
		t.Fatalf("after the rejected bundle: %d flows, %v", len(got), err)
	}
}

func TestEmulatorAcknowledgesWatchedMAC(t *testing.T) {
	emu, sw, fs := emulated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nets := fs.topo.NetworksOn(fs.host)
	peer := fs.topo.FloodPeers(fs.host, nets[0])[0]
	mac := net.HardwareAddr{0x52, 0x54, 0x02, 0, 0, 1}
	acked := make(chan time.Time, 1)
	emu.watch.Store(&emuWatch{mac: mac, ack: func(t time.Time) { acked <- t }})
	eps := []flows.Endpoint{{VNI: nets[0].VNI, MAC: mac, Host: peer.Name}}
	want := append(slices.Clone(fs.flows), flows.CompileEndpoints(fs.topo, fs.host, fs.alloc, eps)...)
	if _, err := sw.Reconcile(ctx, want, reconcileCookie, reconcileMask); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
	case <-time.After(5 * time.Second):
		t.Fatal("the MAC's table-20 entry was never acknowledged")
	}
}
