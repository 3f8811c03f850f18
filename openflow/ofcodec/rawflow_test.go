package ofcodec_test

import (
	"bytes"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// FuzzScanFlowStats: the scanner never panics, accepts exactly what the
// decoder accepts, and each entry's fields, read in place, are the decoded
// flow's; so is a strict delete by its raw match.
func FuzzScanFlowStats(f *testing.F) {
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
	f.Add(entry(nil, []byte{0, 1, 0, 8, 9, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := ofcodec.ScanFlowStats(body, nil)
		dec, derr := ofcodec.DecodeFlowStats(body)
		if len(raw) != len(dec) || (err == nil) != (derr == nil) {
			t.Fatalf("scan: %d entries (%v), decode: %d (%v)", len(raw), err, len(dec), derr)
		}
		if n := ofcodec.CountFlowStats(body); n < len(raw) {
			t.Fatalf("counted %d entries, scanned %d", n, len(raw))
		}
		for i, r := range raw {
			d := dec[i]
			fl := d.Flow
			if r.Table() != fl.Table || r.Priority() != fl.Priority || r.Cookie() != fl.Cookie || r.IdleTimeout() != fl.IdleTimeout ||
				r.HardTimeout() != fl.HardTimeout || r.Flags() != d.Flags || !bytes.Equal(r.Match(), d.Match) {
				t.Fatalf("entry %d read in place differs from its decoding %s", i, fl)
			}
			if len(r.Instructions()) > len(r) {
				t.Fatalf("entry %d: instructions longer than the entry", i)
			}
			got, aerr := ofcodec.AppendDeleteStrict(nil, 1, 1, ofcodec.BundleAtomic, r)
			if _, lerr := ofcodec.DeleteStrict(d); (aerr == nil) != (lerr == nil) || (aerr == nil && len(got) == 0) {
				t.Fatalf("entry %d: strict delete %v, libOpenflow's %v", i, aerr, lerr)
			}
		}
	})
}
