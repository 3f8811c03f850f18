package ofcodec

import (
	"fmt"
)

// RawFlow is one ofp_flow_stats entry of a flow stats reply, checked to be
// well formed but decoded only as far as asked: a diff compares cookies,
// tables, priorities, matches and instructions as they came, and decodes
// (Decode) only the flows that change. It aliases the reply's buffer.
type RawFlow []byte

// Table is the flow's table.
func (r RawFlow) Table() uint8 { return r[2] }

// Priority is the flow's priority.
func (r RawFlow) Priority() uint16 { return u16(r[12:]) }

// IdleTimeout is the flow's idle timeout.
func (r RawFlow) IdleTimeout() uint16 { return u16(r[14:]) }

// HardTimeout is the flow's hard timeout.
func (r RawFlow) HardTimeout() uint16 { return u16(r[16:]) }

// Flags are the flow's OFPFF_* flags.
func (r RawFlow) Flags() uint16 { return u16(r[18:]) }

// Cookie is the flow's cookie.
func (r RawFlow) Cookie() uint64 { return u64(r[24:]) }

// Match is the flow's OXM fields exactly as the switch sent them.
func (r RawFlow) Match() []byte { return r[flowStatsFixed+4 : flowStatsFixed+int(u16(r[50:]))] }

// Instructions is the flow's instruction list as the switch sent it.
func (r RawFlow) Instructions() []byte {
	return r[flowStatsFixed+(int(u16(r[50:]))+7)/8*8:]
}

// Decode decodes the whole entry, as DecodeFlowStats does.
func (r RawFlow) Decode() Decoded {
	d, _ := decodeEntry(r) // cannot fail: ScanFlowStats checked the entry
	return d
}

// CountFlowStats counts the entries of a flow stats reply body up to the
// first whose length does not add up, so that a caller gathering several
// parts sizes its slice once.
func CountFlowStats(body []byte) int {
	n := 0
	for len(body) >= flowStatsFixed+8 {
		l := int(u16(body))
		if l < flowStatsFixed+8 || l > len(body) {
			break
		}
		n++
		body = body[l:]
	}
	return n
}

// ScanFlowStatsReply is DecodeFlowStatsReply without the decoding: it
// appends the reply's entries to out, each checked as DecodeFlowStats checks
// it, and fails where DecodeFlowStatsReply fails.
func ScanFlowStatsReply(frame []byte, out []RawFlow) ([]RawFlow, bool, error) {
	if len(frame) < 16 || frame[1] != typeMultipartRep {
		return out, false, fmt.Errorf("not a multipart reply (%d bytes)", len(frame))
	}
	if n := int(u16(frame[2:])); n != len(frame) {
		return out, false, fmt.Errorf("multipart reply says %d bytes but has %d", n, len(frame))
	}
	if t := u16(frame[8:]); t != multipartFlow {
		return out, false, fmt.Errorf("multipart reply of type %d, not flow stats", t)
	}
	out, err := ScanFlowStats(frame[16:], out)
	return out, u16(frame[10:])&1 != 0, err
}

// ScanFlowStats appends the entries of a flow stats reply body to out: the
// entries before the first malformed one, and an error naming it.
func ScanFlowStats(body []byte, out []RawFlow) ([]RawFlow, error) {
	for i := 0; len(body) > 0; i++ {
		if len(body) < flowStatsFixed+8 {
			return out, fmt.Errorf("flow stats entry %d: %d bytes left, too short for an entry", i, len(body))
		}
		n := int(u16(body))
		if n < flowStatsFixed+8 || n > len(body) {
			return out, fmt.Errorf("flow stats entry %d: length %d outside 56..%d", i, n, len(body))
		}
		if err := checkEntry(body[:n]); err != nil {
			return out, fmt.Errorf("flow stats entry %d: %w", i, err)
		}
		out = append(out, RawFlow(body[:n:n]))
		body = body[n:]
	}
	return out, nil
}

// checkEntry checks what decodeEntry needs of an entry of at least 56 bytes:
// an OXM match that fits.
func checkEntry(e []byte) error {
	mtype, mlen := u16(e[48:]), int(u16(e[50:]))
	if mtype != matchTypeOXM {
		return fmt.Errorf("match of type %d, not OXM", mtype)
	}
	if padded := (mlen + 7) / 8 * 8; mlen < 4 || flowStatsFixed+padded > len(e) {
		return fmt.Errorf("match length %d does not fit the %d-byte entry", mlen, len(e))
	}
	return nil
}
