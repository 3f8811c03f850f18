package hwvtep

import (
	"fmt"
	"slices"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// Why the controller cannot drive a network on a switch, the "reason"
// label of its metric.
const (
	NotDrivenMissing = "logical_switch_missing"  // no logical switch has the VNI: apply has not run
	NotDrivenNotOurs = "logical_switch_not_ours" // one has, but ovs-vxctl did not create it for this host
)

// NotDriven is a network of a hardware VTEP whose Ucast_Macs_Remote the
// controller cannot keep: it only writes into logical switches apply made.
type NotDriven struct {
	VNI    uint32
	Reason string // NotDrivenMissing or NotDrivenNotOurs
	Detail string // for the log: which switch and whose
}

// NotDriven lists the networks among vnis that have no logical switch of
// ours (made by apply for host of topology) at the last Sync, sorted.
func (c *Client) NotDriven(topology, host string, vnis []uint32) []NotDriven {
	return notDriven(c.lswitches, marks{owner: topology, host: host}, vnis)
}

func notDriven(lswitches []*hwvtep.LogicalSwitch, m marks, vnis []uint32) []NotDriven {
	ours := map[uint32]bool{}
	theirs := map[uint32]*hwvtep.LogicalSwitch{}
	for _, ls := range lswitches {
		if ls.TunnelKey == nil || *ls.TunnelKey <= 0 {
			continue
		}
		v := uint32(*ls.TunnelKey)
		if m.owns(ls) {
			ours[v] = true
		} else if theirs[v] == nil {
			theirs[v] = ls
		}
	}
	var out []NotDriven
	for _, v := range vnis {
		switch ls := theirs[v]; {
		case ours[v]:
		case ls != nil:
			out = append(out, NotDriven{VNI: v, Reason: NotDrivenNotOurs,
				Detail: fmt.Sprintf("logical switch %s has tunnel_key %d but %s", quote(ls.Name), v, ownerOf(ls))})
		default:
			out = append(out, NotDriven{VNI: v, Reason: NotDrivenMissing,
				Detail: fmt.Sprintf("no logical switch has tunnel_key %d (run apply --host %s)", v, m.host)})
		}
	}
	slices.SortFunc(out, func(a, b NotDriven) int { return int(a.VNI) - int(b.VNI) })
	return out
}
