package openflowtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// Flow-mod commands (OFPFC_*).
const (
	fmAdd          = 0
	fmModify       = 1
	fmModifyStrict = 2
	fmDelete       = 3
	fmDeleteStrict = 4

	tableAll      = 0xff // OFPTT_ALL
	tableReadOnly = 254  // OVS's hidden internal table
	flowStatsHd   = 48   // ofp_flow_stats up to its match
)

// flowMod is a parsed OpenFlow 1.3 flow-mod.
type flowMod struct {
	cookie, cookieMask uint64
	table, command     uint8
	idle, hard, prio   uint16
	flags              uint16
	oxm, instructions  []byte
}

// parseFlowMod reads a flow-mod and refuses what the emulator cannot do
// (the checks OVS makes when it decodes one, before any table is touched):
// a malformed message, an unknown command, a buffer ID (the switch buffers
// nothing), and what it does not emulate — non-strict modify and delete with
// match fields, out_port and out_group filters — with OFPBRC_EPERM.
func parseFlowMod(m []byte) (flowMod, ofError) {
	var p flowMod
	// Its flow-stats entry is as long as the flow-mod: one that would not
	// fit in a multipart reply could never be dumped.
	if len(m) < 56 || len(m) > maxMessage-16 {
		return p, errBadLen
	}
	p.cookie, p.cookieMask = binary.BigEndian.Uint64(m[8:]), binary.BigEndian.Uint64(m[16:])
	p.table, p.command = m[24], m[25]
	p.idle, p.hard, p.prio = binary.BigEndian.Uint16(m[26:]), binary.BigEndian.Uint16(m[28:]), binary.BigEndian.Uint16(m[30:])
	bufferID, outPort, outGroup := binary.BigEndian.Uint32(m[32:]), binary.BigEndian.Uint32(m[36:]), binary.BigEndian.Uint32(m[40:])
	p.flags = binary.BigEndian.Uint16(m[44:])
	mtype, mlen := binary.BigEndian.Uint16(m[48:]), int(binary.BigEndian.Uint16(m[50:]))
	padded := (mlen + 7) / 8 * 8
	if mtype != 1 || mlen < 4 || 48+padded > len(m) {
		return p, errBadMatchLen
	}
	p.oxm, p.instructions = m[52:48+mlen], m[48+padded:]
	switch {
	case p.command > fmDeleteStrict:
		return p, errBadCommand
	case p.command <= fmModifyStrict && bufferID != noBuffer:
		return p, errBufferUnknown
	case (p.command == fmModify || p.command == fmDelete) && len(p.oxm) > 0:
		return p, errEPERM
	case p.command >= fmDelete && (outPort != portAny || outGroup != portAny):
		return p, errEPERM
	}
	return p, errNone
}

// entry is one installed flow, kept as the flow-stats entry the switch
// returns for it (durations zero, counters as AddPackets set them).
type entry struct {
	table  uint8
	cookie uint64
	oxm    []byte
	stats  []byte
}

// newEntry is the flow p adds.
func newEntry(p flowMod) *entry {
	stats := p.statsEntry(p.cookie)
	return &entry{table: p.table, cookie: p.cookie, oxm: stats[52 : 52+len(p.oxm)], stats: stats}
}

// flowKey is what makes two flows the same flow: table, priority, match.
func flowKey(table uint8, prio uint16, oxm []byte) string {
	k := make([]byte, 3+len(oxm))
	k[0] = table
	binary.BigEndian.PutUint16(k[1:], prio)
	copy(k[3:], oxm)
	return string(k)
}

// statsEntry is the ofp_flow_stats of the flow p adds (or modifies to).
func (p flowMod) statsEntry(cookie uint64) []byte {
	padded := (4 + len(p.oxm) + 7) / 8 * 8
	e := make([]byte, flowStatsHd+padded+len(p.instructions))
	binary.BigEndian.PutUint16(e, uint16(len(e)))
	e[2] = p.table
	binary.BigEndian.PutUint16(e[12:], p.prio)
	binary.BigEndian.PutUint16(e[14:], p.idle)
	binary.BigEndian.PutUint16(e[16:], p.hard)
	binary.BigEndian.PutUint16(e[18:], p.flags)
	binary.BigEndian.PutUint64(e[24:], cookie)
	binary.BigEndian.PutUint16(e[48:], 1)
	binary.BigEndian.PutUint16(e[50:], uint16(4+len(p.oxm)))
	copy(e[52:], p.oxm)
	copy(e[flowStatsHd+padded:], p.instructions)
	return e
}

// flow decodes the flow p is about (no actions for a delete).
func (p flowMod) flow() (flows.Flow, error) { return decodeEntry(p.statsEntry(p.cookie)) }

// decodeEntry decodes one ofp_flow_stats.
func decodeEntry(stats []byte) (flows.Flow, error) {
	d, err := ofcodec.DecodeFlowStats(stats)
	if err != nil {
		return flows.Flow{}, fmt.Errorf("decoding a flow of table %d: %w", stats[2], err)
	}
	if len(d) != 1 {
		return flows.Flow{}, fmt.Errorf("decoding a flow of table %d: %d flows in one entry", stats[2], len(d))
	}
	return d[0].Flow, nil
}

// check is what OVS finds wrong with p only when it applies it (so, in a
// bundle, at commit): a table that cannot take flows, or a flow the test
// told the switch to refuse. s.mu is held.
func (s *Switch) check(p flowMod) ofError {
	if p.command == fmAdd || p.command == fmModifyStrict {
		switch {
		case p.table == tableAll:
			return errBadTableID
		case p.table == tableReadOnly:
			return errEPERM
		}
	}
	if s.reject != nil {
		if f, err := p.flow(); err != nil || s.reject(f) {
			return errFlowModEPERM
		}
	}
	return errNone
}

// apply changes the table as p says; s.mu is held and check(p) passed.
// OpenFlow 1.3 semantics: an add replaces the flow of the same table,
// priority and match (counters reset); a modify changes the instructions,
// timeouts and flags of the flows it matches and keeps their cookie and
// counters, and adds nothing when none matches; deletes and modifies take
// only flows whose cookie matches under the cookie mask.
func (s *Switch) apply(p flowMod) {
	cookieOK := func(e *entry) bool { return e.cookie&p.cookieMask == p.cookie&p.cookieMask }
	tableOK := func(e *entry) bool { return p.table == tableAll || e.table == p.table }
	k := flowKey(p.table, p.prio, p.oxm)
	switch p.command {
	case fmAdd:
		s.table[k] = newEntry(p)
		s.noteAdd(p)
	case fmModifyStrict:
		if e, ok := s.table[k]; ok && cookieOK(e) {
			s.modify(e, p)
		}
	case fmModify:
		for _, e := range s.table {
			if tableOK(e) && cookieOK(e) {
				s.modify(e, p)
			}
		}
	case fmDeleteStrict:
		if e, ok := s.table[k]; ok && cookieOK(e) {
			delete(s.table, k)
		}
	case fmDelete:
		for k, e := range s.table {
			if tableOK(e) && cookieOK(e) {
				delete(s.table, k)
			}
		}
	}
	s.flowMods.Add(1)
	s.lastMod.Store(time.Now().UnixNano())
}

// modify gives e p's instructions, timeouts and flags; s.mu is held.
func (s *Switch) modify(e *entry, p flowMod) {
	q := p
	q.table, q.oxm = e.table, e.oxm
	q.prio = binary.BigEndian.Uint16(e.stats[12:])
	stats := q.statsEntry(e.cookie)
	copy(stats[32:48], e.stats[32:48]) // packet and byte counts
	e.stats, e.oxm = stats, stats[52:52+len(e.oxm)]
	s.noteAdd(q)
}

// noteAdd marks the watched flow's acknowledgement as due when p installs
// it; s.mu is held.
func (s *Switch) noteAdd(p flowMod) {
	if w := s.watch.Load(); w != nil && p.table == w.table && bytes.Contains(p.oxm, w.match) {
		s.pending = true
	}
}

// applyAll applies mods atomically: every one is checked before any is
// applied. On failure it returns the index of the refused one and why.
func (s *Switch) applyAll(mods []flowMod) (int, ofError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range mods {
		if e := s.check(p); e != errNone {
			return i, e
		}
	}
	for _, p := range mods {
		s.apply(p)
	}
	return 0, errNone
}
