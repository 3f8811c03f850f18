package ofcodec_test

import (
	"encoding/binary"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// FuzzDecodeFlowStats: arbitrary bytes never panic the decoder, and a flow
// it decodes entirely into package flows' types encodes and decodes back to
// the same text.
func FuzzDecodeFlowStats(f *testing.F) {
	var all []byte
	for _, fl := range allFlows() {
		fm, err := ofcodec.FlowMod(fl, ofcodec.CommandAdd)
		if err != nil {
			f.Fatal(err)
		}
		e := statsEntry(f, fm, 0)
		f.Add(e)
		all = append(all, e...)
	}
	f.Add(all)
	f.Add(entry([]byte{0x00, 0x01, 0x00, 0x04, 0, 0, 0, 5}, applyActions([]byte{0x12, 0x34, 0x00, 0x08, 1, 2, 3, 4})))
	f.Add(entry(nil, []byte{0, 1, 0, 8, 9, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ofcodec.DecodeFlowStats(body)
		frame := make([]byte, 16, 16+len(body))
		frame[0], frame[1] = 4, 19
		binary.BigEndian.PutUint16(frame[8:], 1)
		frame = append(frame, body...)
		if len(frame) <= 0xffff {
			binary.BigEndian.PutUint16(frame[2:], uint16(len(frame)))
			if got2, _, err2 := ofcodec.DecodeFlowStatsReply(frame); len(got2) != len(got) || (err == nil) != (err2 == nil) {
				t.Fatalf("reply decodes %d flows (%v), body %d (%v)", len(got2), err2, len(got), err)
			}
		}
		for _, d := range got {
			text := d.Flow.String()
			_ = d.Flow.Key()
			if _, err := ofcodec.DeleteStrict(d); err != nil && !d.MatchLossy {
				t.Fatalf("decoded flow %s has a match that cannot be sent back: %v", text, err)
			}
			if d.MatchLossy || !onlyFlowsTypes(d.Flow) {
				continue
			}
			fm, err := ofcodec.FlowMod(d.Flow, ofcodec.CommandAdd)
			if err != nil {
				continue // a flow the codec refuses to send (Check)
			}
			again, err := ofcodec.DecodeFlowStats(statsEntry(t, fm, 0))
			if err != nil || len(again) != 1 || again[0].Flow.String() != text {
				t.Fatalf("decoded %s\nre-encoded and decoded: %v %v", text, again, err)
			}
		}
	})
}

func onlyFlowsTypes(f flows.Flow) bool {
	for _, a := range f.Actions {
		switch a.(type) {
		case ofcodec.Text, ofcodec.Unknown, ofcodec.MatchExtra, ofcodec.MoveBits:
			return false
		}
	}
	return true
}
