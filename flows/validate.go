package flows

import (
	"errors"
	"fmt"
	"slices"
)

// MatchField is one field of Match, named as ovs-ofctl names it.
type MatchField uint8

// The fields of Match. EthType covers its shorthands (arp, ip, ...).
const (
	MatchInPort MatchField = iota
	MatchTunID
	MatchVLAN
	MatchEthSrc
	MatchEthDst
	MatchEthType
	MatchIPProto
	MatchARPSPA
	MatchARPTPA
	MatchARPOp
	MatchICMPType
	MatchIPv6Src
	MatchNDTarget
	numMatchFields
)

// String is the field's ovs-ofctl name.
func (f MatchField) String() string {
	switch f {
	case MatchInPort:
		return "in_port"
	case MatchTunID:
		return "tun_id"
	case MatchVLAN:
		return "dl_vlan"
	case MatchEthSrc:
		return "dl_src"
	case MatchEthDst:
		return "dl_dst"
	case MatchEthType:
		return "dl_type"
	case MatchIPProto:
		return "nw_proto"
	case MatchARPSPA:
		return "arp_spa"
	case MatchARPTPA:
		return "arp_tpa"
	case MatchARPOp:
		return "arp_op"
	case MatchICMPType:
		return "icmp_type"
	case MatchIPv6Src:
		return "ipv6_src"
	case MatchNDTarget:
		return "nd_target"
	}
	return fmt.Sprintf("field%d", uint8(f))
}

// fieldSet is a set of MatchFields, one bit each.
type fieldSet uint16

func (s fieldSet) has(f MatchField) bool { return s&(1<<f) != 0 }

// fields is the set of fields m matches (a zero field is a wildcard).
func (m Match) fields() fieldSet {
	var s fieldSet
	set := func(f MatchField, on bool) {
		if on {
			s |= 1 << f
		}
	}
	set(MatchInPort, m.InPort != 0)
	set(MatchTunID, m.HasTunID)
	set(MatchVLAN, m.HasVLAN)
	set(MatchEthSrc, m.EthSrc != nil)
	set(MatchEthDst, m.EthDst != nil || m.EthDstMask != nil)
	set(MatchEthType, m.EthType != 0)
	set(MatchIPProto, m.IPProto != 0)
	set(MatchARPSPA, m.ArpSPA.IsValid())
	set(MatchARPTPA, m.ArpTPA.IsValid())
	set(MatchARPOp, m.ArpOp != 0)
	set(MatchICMPType, m.HasICMPType)
	set(MatchIPv6Src, m.IPv6Src.IsValid())
	set(MatchNDTarget, m.NDTarget.IsValid())
	return s
}

// maxProblems bounds the problems one Validate error lists: a systematic
// bug in a list of 100,000 flows is clear from the first ones.
const maxProblems = 100

// Validate checks br-tun flows against Pipeline: every flow sits in a
// declared table, at one of its priorities, matching only its fields; a
// priority-PriorityMiss flow matches everything; goto_table is the last
// action and continues in one of the table's Next tables; learn() writes
// into a declared table at one of its priorities; every action is one of
// this package's. The error lists each problem with the flow's text. A
// violation is a bug of whoever built the flows.
func Validate(fl []Flow) error { return validate("br-tun", Pipeline(), fl) }

// ValidateInt checks br-int flows against IntPipeline, as Validate does.
func ValidateInt(fl []Flow) error { return validate("br-int", IntPipeline(), fl) }

func validate(bridge string, pipeline []Table, fl []Flow) error {
	var byID [256]*Table
	allowed := [256]fieldSet{}
	for i := range pipeline {
		tb := &pipeline[i]
		byID[tb.ID] = tb
		for _, f := range tb.Fields {
			allowed[tb.ID] |= 1 << f
		}
	}
	var problems []error
	more := 0
	for _, f := range fl {
		for _, p := range checkFlow(f, byID[f.Table], allowed[f.Table], &byID) {
			if len(problems) == maxProblems {
				more++
				continue
			}
			problems = append(problems, fmt.Errorf("%s:%s", p, f))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if more > 0 {
		problems = append(problems, fmt.Errorf("and %d more problems", more))
	}
	return fmt.Errorf("flows break the %s pipeline contract:\n%w", bridge, errors.Join(problems...))
}

// checkFlow returns what is wrong with f, in table tb (nil: undeclared)
// whose flows may match fields.
func checkFlow(f Flow, tb *Table, fields fieldSet, byID *[256]*Table) []string {
	if tb == nil {
		return []string{fmt.Sprintf("table %d is not declared", f.Table)}
	}
	var out []string
	if !slices.Contains(tb.Priorities, f.Priority) {
		out = append(out, fmt.Sprintf("table %d (%s) has no priority %d (declared: %v)", tb.ID, tb.Name, f.Priority, tb.Priorities))
	}
	if extra := f.Match.fields() &^ fields; extra != 0 {
		out = append(out, fmt.Sprintf("table %d (%s) may not match %s (declared: %v)", tb.ID, tb.Name, extra, tb.Fields))
	}
	if f.Priority == PriorityMiss && f.Match.fields() != 0 {
		out = append(out, fmt.Sprintf("table %d (%s): the miss flow (priority %d) matches %s", tb.ID, tb.Name, PriorityMiss, f.Match.fields()))
	}
	for i, a := range f.Actions {
		switch a := a.(type) {
		case GotoTable:
			if i != len(f.Actions)-1 {
				out = append(out, fmt.Sprintf("table %d (%s): goto_table is not the last action", tb.ID, tb.Name))
			}
			if !slices.Contains(tb.Next, a.Table) {
				out = append(out, fmt.Sprintf("table %d (%s) may not continue in table %d (declared: %v)", tb.ID, tb.Name, a.Table, tb.Next))
			}
		case Learn:
			if to := byID[a.Table]; to == nil {
				out = append(out, fmt.Sprintf("table %d (%s): learn() writes into undeclared table %d", tb.ID, tb.Name, a.Table))
			} else if !slices.Contains(to.Priorities, a.Priority) {
				out = append(out, fmt.Sprintf("table %d (%s): learn() writes priority %d into table %d (declared: %v)", tb.ID, tb.Name, a.Priority, a.Table, to.Priorities))
			}
		case Output, Controller, PushVLAN, PopVLAN, SetVLANVID, SetTunID, SetEthSrc, SetARPOp, SetARPSHA, SetARPSPA, Move,
			SetIPv6Src, SetICMPv6Type, SetNDReserved, SetNDOptionsType:
		default:
			// A decoded-only action (resubmit, ...) could lead anywhere.
			out = append(out, fmt.Sprintf("table %d (%s): action %s is not one the pipeline uses", tb.ID, tb.Name, a))
		}
	}
	return out
}

// String lists the set's fields, comma-separated.
func (s fieldSet) String() string {
	var b []byte
	for f := range numMatchFields {
		if s.has(f) {
			if len(b) > 0 {
				b = append(b, ',')
			}
			b = append(b, f.String()...)
		}
	}
	return string(b)
}
