package openflowtest_test

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// rawConn is a bare OpenFlow connection to a fresh emulated switch.
func rawConn(t *testing.T) (*openflowtest.Switch, *ofconn.Conn) {
	t.Helper()
	emu, err := openflowtest.New(openflowtest.Config{DatapathID: 0x77})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	c := ofconn.NewConn(emu.Pipe(), nil)
	if err := c.Handshake(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return emu, c
}

func pipelinedFlow(prio uint16, mac string) flows.Flow {
	m, _ := net.ParseMAC(mac)
	return flows.WithContentCookie(flows.Flow{Table: flows.TableUnicast, Priority: prio,
		Match: flows.Match{HasVLAN: true, VLAN: 1, EthDst: m}, Actions: []flows.Action{flows.Output{Port: 2}}}, flows.CookieOwned)
}

// TestPipelinedBundleAsOVS: a bundle's open, adds and commit written at
// once are handled in order, as OVS does: an add rejected on arrival (its
// inner xid differs) is answered with an error and left out, and the
// commit applies the others; the commit's reply comes last.
func TestPipelinedBundleAsOVS(t *testing.T) {
	emu, c := rawConn(t)
	good, bad := pipelinedFlow(5, "52:54:00:00:00:01"), pipelinedFlow(6, "52:54:00:00:00:02")
	const id = 9
	acked := make(chan time.Time, 1)
	emu.Watch(flows.TableUnicast, good.Match.EthDst, func(at time.Time) { acked <- at })
	last, errs, err := c.Exchange(ctxFor(t), 3, func(b []byte, i int, xid uint32) ([]byte, error) {
		switch i {
		case 0:
			return ofcodec.AppendBundleControl(b, xid, id, ofcodec.BundleOpen, ofcodec.BundleAtomic), nil
		case 1:
			return ofcodec.AppendBundleAdd(b, xid, id, ofcodec.BundleAtomic, good, ofcodec.CommandAdd)
		}
		start := len(b)
		b, err := ofcodec.AppendBundleAdd(b, xid, id, ofcodec.BundleAtomic, bad, ofcodec.CommandAdd)
		binary.BigEndian.PutUint32(b[start+24+4:], xid+1000) // the inner message's xid
		return b, err
	}, func(b []byte, xid uint32, _ error) []byte {
		return ofcodec.AppendBundleControl(b, xid, id, ofcodec.BundleCommit, ofcodec.BundleAtomic)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Index != 2 {
		t.Errorf("errors %v, want one for the add with the wrong inner xid", errs)
	}
	if exp, typ, ok := last.Experimenter(); !ok || exp != ofconn.ExperimenterONF || typ != 2300 || binary.BigEndian.Uint16(last.Raw[20:]) != ofcodec.BundleCommitReply {
		t.Errorf("last reply: type %d, want the commit's", last.Type)
	}
	got, err := emu.Flows()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].String() != good.String() {
		t.Errorf("switch holds %v, want only %s", got, good)
	}
	if c := emu.Counters(); c.Bundles != 1 || c.FlowMods != 1 {
		t.Errorf("counters %+v, want 1 flow-mod in 1 bundle", c)
	}
	select {
	case <-acked:
	case <-time.After(5 * time.Second):
		t.Error("the committed entry was never acknowledged")
	}
}

// TestFlowModsThenBarrierAsOVS: plain flow-mods and a barrier written at
// once: a refused one is answered before the barrier's reply, the others
// are applied, and the barrier acknowledges them.
func TestFlowModsThenBarrierAsOVS(t *testing.T) {
	emu, c := rawConn(t)
	good, bad := pipelinedFlow(5, "52:54:00:00:00:01"), pipelinedFlow(6, "52:54:00:00:00:02")
	emu.RejectFlowMods(func(f flows.Flow) bool { return f.String() == bad.String() })
	acked := make(chan time.Time, 1)
	emu.Watch(flows.TableUnicast, good.Match.EthDst, func(at time.Time) { acked <- at })
	fl := []flows.Flow{bad, good}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last, errs, err := c.Exchange(ctx, 2, func(b []byte, i int, xid uint32) ([]byte, error) {
		return ofcodec.AppendFlowMod(b, xid, fl[i], ofcodec.CommandAdd)
	}, func(b []byte, xid uint32, _ error) []byte { return ofconn.AppendBarrier(b, xid) })
	if err != nil || last.Type != ofconn.TypeBarrierReply || len(errs) != 1 || errs[0].Index != 0 {
		t.Fatalf("last reply type %d, errors %v, %v; want the barrier's reply and one error for message 0", last.Type, errs, err)
	}
	if c := emu.Counters(); c.Bundles != 0 || c.FlowMods != 1 || c.Barriers != 1 {
		t.Errorf("counters %+v, want 1 flow-mod, 1 barrier, no bundle", c)
	}
	select {
	case <-acked:
	case <-time.After(5 * time.Second):
		t.Error("the entry was never acknowledged")
	}
}
