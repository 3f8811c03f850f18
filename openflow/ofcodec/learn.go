package ofcodec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Learn spec header bits (nx_learn_spec_header).
const (
	learnSrcImmediate = 1 << 13
	learnDstMask      = 3 << 11
	learnDstMatch     = 0
	learnDstLoad      = 1 << 11
	learnDstOutput    = 2 << 11
	learnBitsMask     = 0x3ff
)

// Learn flags.
const (
	learnSendFlowRem   = 1 << 0
	learnDeleteLearned = 1 << 1
)

const learnFixed = 32 // nx_action_learn before its specs

// learnSpec is one flow_mod_spec of a learn action.
type learnSpec struct {
	kind     uint16 // src immediate bit | dst kind
	bits     int
	src, dst Subfield
	imm      []byte
}

func (s learnSpec) String() string {
	switch s.kind {
	case learnSrcImmediate | learnDstMatch:
		if s.dst.Whole() {
			return s.dst.f.mf + "=" + formatValue(s.dst.f, immValue(s.imm, s.dst.f.bytes()))
		}
		return s.dst.String() + "=" + putHex(s.imm)
	case learnDstMatch:
		if s.src.Field == s.dst.Field && s.src.Ofs == s.dst.Ofs {
			return s.dst.String()
		}
		return s.dst.String() + "=" + s.src.String()
	case learnSrcImmediate | learnDstLoad:
		return "load:" + putHex(s.imm) + "->" + s.dst.String()
	case learnDstLoad:
		return "load:" + s.src.String() + "->" + s.dst.String()
	case learnDstOutput:
		return "output:" + s.src.String()
	}
	return fmt.Sprintf("unknown_spec_0x%x", s.kind)
}

// immValue right-aligns an immediate in a field of n bytes.
func immValue(imm []byte, n int) []byte {
	out := make([]byte, n)
	if len(imm) > n {
		imm = imm[len(imm)-n:]
	}
	copy(out[n-len(imm):], imm)
	return out
}

// decodeLearn decodes NXAST_LEARN. The pipeline's own learn becomes a
// flows.Learn; any other renders as ovs-ofctl's learn(...) text.
func decodeLearn(a []byte) flows.Action {
	if len(a) < learnFixed {
		return Unknown{What: fmt.Sprintf("short learn 0x%x", a)}
	}
	idle, hard, prio := u16(a[10:]), u16(a[12:]), u16(a[14:])
	cookie, flags, table := u64(a[16:]), u16(a[24:]), a[26]
	finIdle, finHard := u16(a[28:]), u16(a[30:])
	specs, err := parseLearnSpecs(a[learnFixed:])
	if err != nil {
		return Unknown{What: fmt.Sprintf("learn: %v", err)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "learn(table=%d", table)
	if idle != 0 {
		fmt.Fprintf(&b, ",idle_timeout=%d", idle)
	}
	if hard != 0 {
		fmt.Fprintf(&b, ",hard_timeout=%d", hard)
	}
	if finIdle != 0 {
		fmt.Fprintf(&b, ",fin_idle_timeout=%d", finIdle)
	}
	if finHard != 0 {
		fmt.Fprintf(&b, ",fin_hard_timeout=%d", finHard)
	}
	if prio != flows.DefaultPriority {
		fmt.Fprintf(&b, ",priority=%d", prio)
	}
	if flags&learnSendFlowRem != 0 {
		b.WriteString(",send_flow_rem")
	}
	if flags&learnDeleteLearned != 0 {
		b.WriteString(",delete_learned")
	}
	if other := flags &^ (learnSendFlowRem | learnDeleteLearned); other != 0 {
		fmt.Fprintf(&b, ",unknown_flags=0x%x", other)
	}
	if cookie != 0 {
		fmt.Fprintf(&b, ",cookie=%#x", cookie)
	}
	for _, s := range specs {
		b.WriteString("," + s.String())
	}
	b.WriteString(")")
	text := b.String()
	ours := flows.Learn{Table: table, HardTimeout: hard, Priority: prio, Cookie: cookie}
	if ours.String() == text {
		return ours
	}
	return Text{S: text}
}

func parseLearnSpecs(b []byte) ([]learnSpec, error) {
	var specs []learnSpec
	for len(b) >= 2 {
		h := u16(b)
		if h == 0 { // padding
			break
		}
		b = b[2:]
		s := learnSpec{kind: h &^ learnBitsMask, bits: int(h & learnBitsMask)}
		if s.bits == 0 {
			return nil, fmt.Errorf("spec 0x%04x of zero bits", h)
		}
		if h&learnSrcImmediate != 0 {
			n := 2 * ((s.bits + 15) / 16)
			if len(b) < n {
				return nil, fmt.Errorf("immediate of %d bytes past the end", n)
			}
			s.imm, b = b[:n], b[n:]
		} else {
			if len(b) < 6 {
				return nil, fmt.Errorf("source field past the end")
			}
			s.src, b = subfieldOf(u32(b), int(u16(b[4:])), s.bits), b[6:]
		}
		switch h & learnDstMask {
		case learnDstMatch, learnDstLoad:
			if len(b) < 6 {
				return nil, fmt.Errorf("destination field past the end")
			}
			s.dst, b = subfieldOf(u32(b), int(u16(b[4:])), s.bits), b[6:]
		case learnDstOutput:
			if h&learnSrcImmediate != 0 {
				return nil, fmt.Errorf("output spec with an immediate source")
			}
		default:
			return nil, fmt.Errorf("spec 0x%04x of unknown destination", h)
		}
		if s.kind&learnSrcImmediate != 0 && s.kind&learnDstMask == learnDstMatch && s.dst.f == nil {
			return nil, fmt.Errorf("match on unknown field %s", s.dst.Field)
		}
		specs = append(specs, s)
	}
	for _, c := range b {
		if c != 0 {
			return nil, fmt.Errorf("trailing bytes after the specs")
		}
	}
	return specs, nil
}

// encodeLearn builds the NXAST_LEARN of a flows.Learn. The specs are read
// from the action's own text, so what is installed is exactly what the flow
// renders as.
func encodeLearn(l flows.Learn) (*openflow13.NXActionLearn, error) {
	text := l.String()
	inner, ok := strings.CutPrefix(text, "learn(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return nil, fmt.Errorf("learn action %q: not learn(...)", text)
	}
	a := openflow13.NewNXActionLearn()
	a.TableID, a.HardTimeout, a.Priority, a.Cookie = l.Table, l.HardTimeout, l.Priority, l.Cookie
	for _, item := range strings.Split(strings.TrimSuffix(inner, ")"), ",") {
		if k, _, _ := strings.Cut(item, "="); k == "table" || k == "hard_timeout" || k == "priority" || k == "cookie" {
			continue // carried by the header fields above
		}
		spec, err := learnSpecFromText(item)
		if err != nil {
			return nil, fmt.Errorf("learn action %q: %w", text, err)
		}
		a.LearnSpecs = append(a.LearnSpecs, spec)
	}
	return a, nil
}

// learnSpecFromText parses the spec forms the pipeline's learn uses:
// F[..] (match a field on itself), F[..]=G[..], load:VALUE->F[..],
// load:G[..]->F[..] and output:G[..].
func learnSpecFromText(s string) (*openflow13.NXLearnSpec, error) {
	specField := func(sf Subfield) *openflow13.NXLearnSpecField {
		h := sf.f.header()
		return &openflow13.NXLearnSpecField{Field: &openflow13.MatchField{
			Class: uint16(h >> 16), Field: uint8(h>>9) & 0x7f, Length: uint8(h)}, Ofs: uint16(sf.Ofs)}
	}
	switch {
	case strings.HasPrefix(s, "output:"):
		src, err := ParseSubfield(strings.TrimPrefix(s, "output:"))
		if err != nil {
			return nil, err
		}
		return &openflow13.NXLearnSpec{Header: openflow13.NewLearnHeaderOutputFromField(uint16(src.Bits)), SrcField: specField(src)}, nil
	case strings.HasPrefix(s, "load:"):
		from, to, ok := strings.Cut(strings.TrimPrefix(s, "load:"), "->")
		if !ok {
			return nil, fmt.Errorf("spec %q: want load:SRC->DST", s)
		}
		dst, err := ParseSubfield(to)
		if err != nil {
			return nil, err
		}
		if strings.Contains(from, "[") {
			src, err := ParseSubfield(from)
			if err != nil {
				return nil, err
			}
			if src.Bits != dst.Bits {
				return nil, fmt.Errorf("spec %q: %d bits loaded into %d", s, src.Bits, dst.Bits)
			}
			return &openflow13.NXLearnSpec{Header: openflow13.NewLearnHeaderLoadFromField(uint16(dst.Bits)),
				SrcField: specField(src), DstField: specField(dst)}, nil
		}
		v, err := strconv.ParseUint(from, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("spec %q: value: %w", s, err)
		}
		n := 2 * ((dst.Bits + 15) / 16)
		imm := make([]byte, 8)
		for i := range imm {
			imm[7-i] = byte(v >> (8 * i))
		}
		if n < 8 {
			imm = imm[8-n:]
		} else {
			imm = immValue(imm, n)
		}
		return &openflow13.NXLearnSpec{Header: openflow13.NewLearnHeaderLoadFromValue(uint16(dst.Bits)),
			SrcValue: imm, DstField: specField(dst)}, nil
	}
	to, from, hasSrc := strings.Cut(s, "=")
	dst, err := ParseSubfield(to)
	if err != nil {
		return nil, err
	}
	src := dst
	if hasSrc {
		if src, err = ParseSubfield(from); err != nil {
			return nil, err
		}
		if src.Bits != dst.Bits {
			return nil, fmt.Errorf("spec %q: %d bits matched against %d", s, src.Bits, dst.Bits)
		}
	}
	return &openflow13.NXLearnSpec{Header: openflow13.NewLearnHeaderMatchFromField(uint16(dst.Bits)),
		SrcField: specField(src), DstField: specField(dst)}, nil
}
