package ofcodec

import (
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// The types below are actions that only come out of decoding: things a
// switch holds that package flows has no type for (learned flows' loads,
// foreign flows' actions, anything malformed). flows.Action's marker method
// is unexported, so each embeds a nil flows.Action only to satisfy it; its
// own String is what renders. They exist so a decoded flow renders exactly
// (or, when this package does not understand something, at least visibly)
// and a diff never misses a difference.

// Load is NXAST_REG_LOAD: it writes Value into a subfield. OVS encodes the
// loads of learned flows this way: load:0x64->NXM_NX_TUN_ID[].
type Load struct {
	flows.Action
	Dst   Subfield
	Value uint64
}

// String renders the load as ovs-ofctl does.
func (a Load) String() string { return "load:" + cHex(a.Value) + "->" + a.Dst.String() }

// MoveBits is NXAST_REG_MOVE between subfields that flows.Move (whole
// fields of the pipeline's list) does not express.
type MoveBits struct {
	flows.Action
	Src, Dst Subfield
}

// String renders the move as ovs-ofctl does.
func (a MoveBits) String() string { return "move:" + a.Src.String() + "->" + a.Dst.String() }

// Text is an action (or instruction) this package decoded and renders as
// ovs-ofctl does, but package flows has no type for: output:LOCAL,
// set_field of other fields, resubmit, write_actions, a learn with other
// specs, ...
type Text struct {
	flows.Action
	S string
}

// String is the action's ovs-ofctl text.
func (a Text) String() string { return a.S }

// Unknown is something in a flow this package could not decode: an action,
// instruction, match field or flag. It renders as unknown(...) with what it
// knows, so the flow never compares equal to a compiled one.
type Unknown struct {
	flows.Action
	What string
}

// String renders unknown(...).
func (a Unknown) String() string { return "unknown(" + a.What + ")" }

// MatchExtra carries the match fields of a decoded flow that flows.Match
// cannot hold (a masked vlan_tci, a register, a masked dl_src, ...), in
// ovs-ofctl's notation. The decoder puts it first in the flow's actions, so
// the flow renders differently from any compiled one; Decoded.MatchLossy is
// set too, as the flow's Key no longer describes its real match.
type MatchExtra struct {
	flows.Action
	Fields []string
}

// String renders extra_match(...).
func (a MatchExtra) String() string { return "extra_match(" + strings.Join(a.Fields, ",") + ")" }
