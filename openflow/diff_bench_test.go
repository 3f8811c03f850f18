package openflow

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// controllerFlows are n flows as a controller installs them on br-tun: two
// table-20 entries for each ARP responder, with content cookies.
func controllerFlows(n int) []flows.Flow {
	out := make([]flows.Flow, 0, n)
	for i := 0; len(out) < n; i++ {
		vlan := uint16(i%100 + 1)
		mac := net.HardwareAddr{0x52, 0x54, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		f := flows.Flow{Table: flows.TableUnicast, Priority: 2,
			Match:   flows.Match{HasVLAN: true, VLAN: vlan, EthDst: mac},
			Actions: []flows.Action{flows.PopVLAN{}, flows.SetTunID{ID: 1000 + uint64(vlan)}, flows.Output{Port: uint32(10 + i%50)}}}
		out = append(out, flows.WithContentCookie(f, flows.CookieController))
		if i%2 == 1 && len(out) < n {
			ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			f := flows.Flow{Table: flows.TableARP, Priority: 2,
				Match: flows.Match{EthType: flows.EthTypeARP, HasVLAN: true, VLAN: vlan, ArpTPA: ip, ArpOp: 1},
				Actions: []flows.Action{flows.Move{Src: flows.FieldEthSrc, Dst: flows.FieldEthDst}, flows.SetEthSrc{MAC: mac},
					flows.SetARPOp{Op: 2}, flows.Move{Src: flows.FieldARPSHA, Dst: flows.FieldARPTHA},
					flows.Move{Src: flows.FieldARPSPA, Dst: flows.FieldARPTPA}, flows.SetARPSHA{MAC: mac},
					flows.SetARPSPA{IP: ip}, flows.Output{Port: flows.PortInPort}}}
			out = append(out, flows.WithContentCookie(f, flows.CookieController))
		}
	}
	return out
}

// dumpOf is fl as a switch dumps them, scanned.
func dumpOf(tb testing.TB, fl []flows.Flow) []ofcodec.RawFlow {
	var body []byte
	for _, f := range fl {
		body = append(body, dumped(tb, f, 0)...)
	}
	raw, err := ofcodec.ScanFlowStats(body, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

const benchFlows = 100000

func BenchmarkEncodeSide(b *testing.B) {
	fl := controllerFlows(benchFlows)
	for b.Loop() {
		encodeSide(fl, true)
	}
}

func BenchmarkCheckWire(b *testing.B) {
	fl := controllerFlows(benchFlows)
	want := encodeSide(fl, true)
	for b.Loop() {
		if err := checkWire(fl, want, flows.CookieOwned, flows.ControllerReconcileMask); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoopDiff is a no-op reconcile's diff against a dump, scan
// included.
func BenchmarkNoopDiff(b *testing.B) {
	fl := controllerFlows(benchFlows)
	want := encodeSide(fl, true)
	raw := dumpOf(b, fl)
	for b.Loop() {
		have := dumpSide(raw)
		p := pairSides(want, have)
		if d := p.diffOf(want, have); !d.Empty() {
			b.Fatal("not empty")
		}
	}
}

func BenchmarkScanFlowStats(b *testing.B) {
	var body []byte
	for _, f := range controllerFlows(benchFlows) {
		body = append(body, dumped(b, f, 0)...)
	}
	for b.Loop() {
		if _, err := ofcodec.ScanFlowStats(body, make([]ofcodec.RawFlow, 0, ofcodec.CountFlowStats(body))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBundle(b *testing.B) {
	fl := controllerFlows(benchFlows)
	want := encodeSide(fl, true)
	buf := make([]byte, 0, 64<<10+1024)
	for b.Loop() {
		for i := range fl {
			w := &want.bin[i]
			var err error
			if buf, err = ofcodec.AppendBundleAddMod(buf, uint32(i), 1, ofcodec.BundleAtomic, ofcodec.ModOf(fl[i], ofcodec.CommandAdd, w.match, w.instr)); err != nil {
				b.Fatal(err)
			}
			if len(buf) > 64<<10 {
				buf = buf[:0]
			}
		}
	}
}
