package openflowtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

const testTopo = `
name: emu
defaults: {mode: controller, datapath: netdev}
controller: tcp:127.0.0.1:6653
hosts:
  - {name: h1, vtep: 192.0.2.1}
  - {name: h2, vtep: 192.0.2.2}
  - {name: h3, vtep: 192.0.2.3}
networks:
  - name: a
    vni: 100
    ports:
      - {host: h1, name: a1}
      - {host: h2, name: a2}
      - {host: h3, name: a3}
  - name: b
    vni: 200
    ports:
      - {host: h1, name: b1}
      - {host: h3, name: b3}
`

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tunnelBridge is h1's br-tun of testTopo, emulated.
type tunnelBridge struct {
	topo  *topology.Topology
	host  *topology.Host
	alloc topology.Allocation
	sw    *openflowtest.Switch
}

func newTunnelBridge(t *testing.T) tunnelBridge {
	t.Helper()
	topo, err := topology.Parse([]byte(testTopo))
	if err != nil {
		t.Fatal(err)
	}
	h := topo.Host("h1")
	alloc, err := topo.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	c := openflowtest.TunnelBridge(topo, h, alloc)
	c.Backoff, c.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	sw, err := openflowtest.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	return tunnelBridge{topo, h, alloc, sw}
}

// compiled is what a controller installs on the bridge: the pipeline and a
// unicast entry (with its ARP responder) per endpoint.
func (b tunnelBridge) compiled(t *testing.T, eps []flows.Endpoint) []flows.Flow {
	t.Helper()
	prog, err := flows.Compile(b.topo, b.host, b.alloc)
	if err != nil {
		t.Fatal(err)
	}
	return append(slices.Clone(prog.Tun), flows.CompileEndpoints(b.topo, b.host, b.alloc, eps)...)
}

// remoteEndpoints are n MACs with an IP each on h2 in network a.
func remoteEndpoints(n int) []flows.Endpoint {
	eps := make([]flows.Endpoint, n)
	for i := range eps {
		eps[i] = flows.Endpoint{VNI: 100, Host: "h2", MAC: net.HardwareAddr{0x52, 0x54, 0x02, 0, byte(i >> 8), byte(i)},
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})}}
	}
	return eps
}

// client connects the project's OpenFlow client to s in memory.
func client(t *testing.T, s *openflowtest.Switch) *openflow.Switch {
	t.Helper()
	c := ofconn.NewConn(s.Pipe(), nil)
	if err := c.Handshake(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	sw := openflow.New(c, nil)
	t.Cleanup(func() { sw.Close() })
	return sw
}

func texts(fl []flows.Flow) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.String()
	}
	slices.Sort(out)
	return out
}

func TestServesTheOpenFlowClient(t *testing.T) {
	b := newTunnelBridge(t)
	sw := client(t, b.sw)
	ctx := ctxFor(t)
	if got, want := sw.Conn().DatapathID(), topology.BridgeDatapathID(b.topo.Name, "h1", topology.BridgeTun); got != want {
		t.Fatalf("datapath ID %016x, want %016x", got, want)
	}
	// The advertisement apply leaves reads back as the allocation.
	adv, err := sw.Dump(ctx, flows.CookieAllocation, flows.CookieOwnerMask)
	if err != nil {
		t.Fatal(err)
	}
	if got := flows.LocalVLANsFromFlows(adv); fmt.Sprint(got) != fmt.Sprint(b.alloc.LocalVLAN) {
		t.Fatalf("advertised local VLANs %v, want %v", got, b.alloc.LocalVLAN)
	}
	ports, err := sw.Ports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b.topo.Peers(b.host) {
		want := topology.TunnelPortName(p.Name)
		if !slices.ContainsFunc(ports, func(q ofconn.Port) bool { return q.Name == want && q.No == b.alloc.TunnelOFPort[p.Name] }) {
			t.Errorf("no port %s numbered %d in %v", want, b.alloc.TunnelOFPort[p.Name], ports)
		}
	}
	if !slices.ContainsFunc(ports, func(q ofconn.Port) bool { return q.Name == topology.PatchTun && q.No == topology.PatchOFPort }) {
		t.Errorf("no patch port in %v", ports)
	}
}

// TestReconcileAndDumpInParts: thousands of flows (flow stats replies in
// several parts), installed, read back, left alone, then cut down.
func TestReconcileAndDumpInParts(t *testing.T) {
	b := newTunnelBridge(t)
	sw := client(t, b.sw)
	ctx := ctxFor(t)
	want := b.compiled(t, remoteEndpoints(600))
	res, err := sw.Reconcile(ctx, want, flows.CookieOwned, flows.ControllerReconcileMask)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.sw.TableBytes(); n < 2*0xffff {
		t.Fatalf("the table holds %d bytes: too few for a dump in three parts", n)
	}
	c := b.sw.Counters()
	if res.FlowMods != len(want) || c.FlowMods != uint64(len(want)) || c.Bundles != 1 {
		t.Fatalf("first reconcile: %d flow-mods sent, switch applied %d in %d bundles; want %d in 1", res.FlowMods, c.FlowMods, c.Bundles, len(want))
	}
	got, err := sw.Dump(ctx, flows.CookieOwned, flows.ControllerReconcileMask)
	if err != nil {
		t.Fatal(err)
	}
	if d := openflow.ComputeDiff(want, got); !d.Empty() || len(got) != len(want) {
		t.Fatalf("the switch holds %d flows other than the %d installed:\n%s", len(got), len(want), d)
	}
	all, err := b.sw.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if exp := texts(append(slices.Clone(want), flows.CompileAllocation(b.alloc)...)); !slices.Equal(all, exp) {
		t.Fatalf("Dump: %d flows, want %d", len(all), len(exp))
	}
	if res, err := sw.Reconcile(ctx, want, flows.CookieOwned, flows.ControllerReconcileMask); err != nil || res.FlowMods != 0 {
		t.Fatalf("second reconcile: %d flow-mods, %v; want none", res.FlowMods, err)
	}
	if after := b.sw.Counters(); after.FlowMods != c.FlowMods || after.Bundles != c.Bundles {
		t.Fatalf("a no-op reconcile reached the switch: %+v, was %+v", after, c)
	}
	res, err = sw.Reconcile(ctx, want[:10], flows.CookieOwned, flows.ControllerReconcileMask)
	if err != nil || res.Deleted != len(want)-10 {
		t.Fatalf("cut to 10 flows: deleted %d (%v), want %d", res.Deleted, err, len(want)-10)
	}
	if n := b.sw.FlowCount(); n != 10+len(flows.CompileAllocation(b.alloc)) {
		t.Fatalf("the switch holds %d flows, want %d", n, 10+len(flows.CompileAllocation(b.alloc)))
	}
}

func TestBundlesAreAllOrNothing(t *testing.T) {
	b := newTunnelBridge(t)
	sw := client(t, b.sw)
	ctx := ctxFor(t)
	want := b.compiled(t, nil)
	before, _ := b.sw.Dump()

	// Refused when added: a message a bundle cannot hold, and one whose
	// header does not give its length.
	good, err := ofcodec.FlowMod(want[0], ofcodec.CommandAdd)
	if err != nil {
		t.Fatal(err)
	}
	for want, bad := range map[string]util.Message{"MSG_UNSUP": openflow13.NewEchoRequest(), "MSG_BAD_LEN": ofconn.Raw(99, nil)} {
		err = sw.Bundle(ctx, []util.Message{good, bad}, nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("bundle with a bad message: %v, want OFPBFC_%s", err, want)
		}
	}

	// Refused at the commit: the switch turns one flow down.
	victim := want[len(want)/2]
	b.sw.RejectFlowMods(func(f flows.Flow) bool { return f.String() == victim.String() })
	_, err = sw.Reconcile(ctx, want, flows.CookieOwned, flows.ControllerReconcileMask)
	var ofErr *ofconn.Error
	if err == nil || !errors.As(err, &ofErr) || !strings.Contains(err.Error(), "MSG_FAILED") {
		t.Fatalf("reconcile with a refused flow: %v, want the commit failed", err)
	}
	if after, _ := b.sw.Dump(); !slices.Equal(after, before) {
		t.Fatalf("a refused bundle changed the switch:\n%s", strings.Join(after, "\n"))
	}
	if c := b.sw.Counters(); c.FlowMods != 0 || c.Bundles != 0 || c.Errors != 4 {
		t.Fatalf("counters %+v, want no flow-mod, no bundle, 4 errors (two adds, the refused flow, the commit)", c)
	}
	b.sw.RejectFlowMods(nil)
	if res, err := sw.Reconcile(ctx, want, flows.CookieOwned, flows.ControllerReconcileMask); err != nil || res.Added != len(want) {
		t.Fatalf("reconcile once accepted: %+v, %v", res, err)
	}
}

func TestWatchAcknowledgesAfterCommit(t *testing.T) {
	b := newTunnelBridge(t)
	sw := client(t, b.sw)
	ctx := ctxFor(t)
	eps := remoteEndpoints(1)
	acked := make(chan time.Time, 1)
	b.sw.Watch(flows.TableUnicast, eps[0].MAC, func(at time.Time) { acked <- at })
	if _, err := sw.Reconcile(ctx, b.compiled(t, nil), flows.CookieOwned, flows.ControllerReconcileMask); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
		t.Fatal("acknowledged before the watched MAC's entry was sent")
	default:
	}
	start := time.Now()
	if _, err := sw.Reconcile(ctx, b.compiled(t, eps), flows.CookieOwned, flows.ControllerReconcileMask); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-acked:
		if at.Before(start) {
			t.Fatalf("acknowledged at %v, outside the reconcile", at)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the MAC's table-20 entry was never acknowledged")
	}
}

func TestFlowModSemantics(t *testing.T) {
	b := newTunnelBridge(t)
	sw := client(t, b.sw)
	ctx := ctxFor(t)
	out := func(p uint32) []flows.Action { return []flows.Action{flows.Output{Port: p}} }
	f := flows.Flow{Table: 4, Priority: 9, Cookie: flows.CookieOwned | 1, IdleTimeout: 5, Actions: out(1)}
	g := flows.Flow{Table: 5, Priority: 9, Cookie: flows.CookieController | 2, Actions: out(2)}
	if err := sw.Install(ctx, []flows.Flow{f, g}); err != nil {
		t.Fatal(err)
	}
	send := func(fm util.Message) []ofconn.BatchError {
		t.Helper()
		failed, err := sw.Conn().SendBatch(ctx, []util.Message{fm})
		if err != nil {
			t.Fatal(err)
		}
		return failed
	}
	// MODIFY_STRICT changes the actions and keeps the cookie (OpenFlow 1.3).
	m := f
	m.Cookie, m.Actions = flows.CookieOwned|7, out(10)
	fm, _ := ofcodec.FlowMod(m, ofcodec.CommandModifyStrict)
	fm.CookieMask = 0
	if failed := send(fm); len(failed) > 0 {
		t.Fatal(failed[0].Err)
	}
	kept := f
	kept.Actions = out(10)
	// A non-strict delete of everything under a cookie mask.
	del, _ := ofcodec.FlowMod(flows.Flow{Cookie: flows.CookieController}, ofcodec.CommandDeleteStrict)
	del.Command, del.TableId, del.CookieMask = 3, 0xff, flows.CookieOwnerMask // OFPFC_DELETE, every table
	if failed := send(del); len(failed) > 0 {
		t.Fatal(failed[0].Err)
	}
	rest, _ := b.sw.Flows()
	rest = slices.DeleteFunc(rest, func(f flows.Flow) bool { return f.Table == flows.TableAllocation })
	if got, want := texts(rest), texts([]flows.Flow{kept}); !slices.Equal(got, want) {
		t.Fatalf("after modify and delete: %q, want %q", got, want)
	}
	// What the emulator does not do is refused, not done wrong.
	nonStrict, _ := ofcodec.FlowMod(flows.Flow{Table: 4, Match: flows.Match{InPort: 1}}, ofcodec.CommandDeleteStrict)
	nonStrict.Command = 3
	readOnly, _ := ofcodec.FlowMod(flows.Flow{Table: 254, Priority: 1, Actions: out(1)}, ofcodec.CommandAdd)
	for name, msg := range map[string]util.Message{"non-strict delete with a match": nonStrict, "add to table 254": readOnly} {
		failed := send(msg)
		if len(failed) != 1 || failed[0].Err.Type != 1 || failed[0].Err.Code != 5 {
			t.Errorf("%s: %v, want OFPBRC_EPERM", name, failed)
		}
	}
}

// TestRedialsLikeOVS: a switch whose connection ends dials the controller
// again, keeping its flows.
func TestRedialsLikeOVS(t *testing.T) {
	b := newTunnelBridge(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := b.sw.Connect("tcp:" + l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		nc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := ofconn.NewConn(nc, nil)
		if err := c.Handshake(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		if got := b.sw.Conns(); len(got) != 1 || !got[0].Primary() {
			t.Fatalf("connection %d: the switch has %d connections", i, len(got))
		}
		c.Close()
	}
	if n := b.sw.Counters().Reconnects; n < 1 {
		t.Fatalf("%d reconnections counted", n)
	}
	if n := b.sw.FlowCount(); n != len(flows.CompileAllocation(b.alloc)) {
		t.Fatalf("%d flows after reconnecting", n)
	}
}
