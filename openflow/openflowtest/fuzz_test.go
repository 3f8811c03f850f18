package openflowtest

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// FuzzHandle: whatever a controller sends, the switch neither panics nor
// writes a frame whose header lies about its length.
func FuzzHandle(f *testing.F) {
	flow := flows.Flow{Table: 20, Priority: 5, Cookie: flows.CookieOwned | 1, Match: flows.Match{HasVLAN: true, VLAN: 3},
		Actions: []flows.Action{flows.PopVLAN{}, flows.Output{Port: 10}}}
	fm, err := ofcodec.FlowMod(flow, ofcodec.CommandAdd)
	if err != nil {
		f.Fatal(err)
	}
	stats := openflow13.NewFlowStatsRequest()
	stats.TableId = 0xff
	msgs := []util.Message{
		fm,
		openflow13.NewBundleControl(&openflow13.BundleControl{BundleID: 1, Type: openflow13.OFPBCT_OPEN_REQUEST}),
		openflow13.NewBundleAdd(&openflow13.BundleAdd{BundleID: 1, Message: fm}),
		openflow13.NewBundleControl(&openflow13.BundleControl{BundleID: 1, Type: openflow13.OFPBCT_COMMIT_REQUEST}),
		ofcodec.NewRoleRequest(ofcodec.RoleSlave, 7),
		&openflow13.MultipartRequest{Header: openflow13.NewOfp13Header(), Type: openflow13.MultipartType_Flow, Body: stats},
		ofconn.Raw(ofconn.TypeMultipartReq, []byte{0, 13, 0, 0, 0, 0, 0, 0}),
		ofconn.Raw(ofconn.TypeBarrierReq, nil),
	}
	var all []byte
	for i, m := range msgs {
		if mp, ok := m.(*openflow13.MultipartRequest); ok {
			mp.Header.Type = openflow13.Type_MultiPartRequest
		}
		b, err := ofconn.Marshal(m, uint32(i+1))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := New(Config{DatapathID: 1, Flows: []flows.Flow{flow}})
		if err != nil {
			t.Fatal(err)
		}
		ctl, sw := net.Pipe()
		c := s.newConn(sw, true)
		out := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(ctl)
			out <- b
		}()
		r := bytes.NewReader(in)
		for {
			m, err := ofconn.ReadFrame(r)
			if err != nil {
				break
			}
			c.handle(m)
		}
		c.flush()
		sw.Close()
		for b := bytes.NewReader(<-out); b.Len() > 0; {
			if _, err := ofconn.ReadFrame(b); err != nil {
				t.Fatalf("the switch wrote a bad frame: %v", err)
			}
		}
	})
}
