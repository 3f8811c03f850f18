package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// OpenFlow 1.3 message types and constants the emulator handles beyond
// those ofconn names.
const (
	typeGetConfigReq   = 7
	typeGetConfigReply = 8
	typeSetConfig      = 9
	typeRoleRequest    = 24
	typeRoleReply      = 25
	typeSetAsync       = 28

	mpFlow     = 1  // OFPMP_FLOW
	mpPortDesc = 13 // OFPMP_PORT_DESC

	bundleControl = 2300
	bundleAdd     = 2301
	bundleOpen    = 0
	bundleClose   = 2
	bundleCommit  = 4
	bundleDiscard = 6

	fmAdd          = 0
	fmModifyStrict = 2
	fmDelete       = 3
	fmDeleteStrict = 4

	maxMessage  = 0xffff
	flowStatsHd = 48 // ofp_flow_stats up to its match
)

// emuSwitch is a minimal OpenFlow 1.3 switch: enough of br-tun for the
// controller to serve it. It answers the handshake, echoes, barriers, role
// and config requests, keeps a flow table (add, strict and wildcard delete,
// replace on the same table, priority and match), applies ONF bundles
// atomically, answers flow-stats and port-description multipart requests
// (split in parts under 64 KiB), and sends packet-ins on demand. It counts
// the flow-mods it applied and reports when a watched MAC's table-20 entry
// was acknowledged (the barrier or bundle commit that followed it).
type emuSwitch struct {
	dpid  uint64
	ports []emuPort

	wmu sync.Mutex // guards nc and w, which change when the switch reconnects
	nc  net.Conn
	w   *bufio.Writer

	mu      sync.Mutex
	table   map[string]*emuFlow
	bundles map[uint32][][]byte // open bundles: their flow-mods, in order

	flowMods atomic.Uint64
	commits  atomic.Uint64
	// lastMod is when a flow-mod was last applied (Unix ns): the fan-out
	// waits for every switch to fall quiet between measurements.
	lastMod    atomic.Int64
	up         atomic.Bool   // connected
	stopped    atomic.Bool   // closed by us: do not reconnect
	reconnects atomic.Uint64 // connections the controller ended

	// watch is the MAC whose table-20 entry is awaited; pending says a
	// flow-mod carrying it was applied and its acknowledgement is due.
	watch   atomic.Pointer[emuWatch]
	pending bool // guarded by mu
}

// emuWatch is a MAC a switch waits for; ack is called once with the time
// its entry was acknowledged.
type emuWatch struct {
	mac  net.HardwareAddr
	ack  func(time.Time)
	done atomic.Bool
}

// emuPort is one port the switch describes.
type emuPort struct {
	no   uint32
	name string
}

// emuFlow is one installed flow, kept as the flow-stats entry the switch
// returns for it (counters zero), so dumps are copies.
type emuFlow struct {
	table  uint8
	cookie uint64
	entry  []byte
}

// newEmuSwitch makes the br-tun of host h as apply leaves it for the
// controller: its datapath ID, the patch port and a tunnel port per peer
// (numbered by alloc), and the allocation advertisement flows.
func newEmuSwitch(t *topology.Topology, h *topology.Host, alloc topology.Allocation, dpid uint64) (*emuSwitch, error) {
	s := &emuSwitch{dpid: dpid, table: map[string]*emuFlow{}, bundles: map[uint32][][]byte{}}
	s.ports = append(s.ports, emuPort{topology.PatchOFPort, ovsdb.PatchTun})
	for _, p := range t.Peers(h) {
		s.ports = append(s.ports, emuPort{alloc.TunnelOFPort[p.Name], ovsdb.TunnelPortName(p.Name)})
	}
	for _, f := range flows.CompileAllocation(alloc) {
		fm, err := ofcodec.FlowMod(f, ofcodec.CommandAdd)
		if err != nil {
			return nil, err
		}
		b, err := ofconn.Marshal(fm, 0)
		if err != nil {
			return nil, err
		}
		if code := s.applyFlowMod(b); code != 0 {
			return nil, fmt.Errorf("advertisement flow %q rejected (code %d)", f.String(), code)
		}
	}
	s.flowMods.Store(0)
	return s, nil
}

// connect dials the controller, says hello and serves the connection in
// the background. Like OVS, the switch dials again when the controller
// drops it (after 1 s, backing off to 8 s), keeping its flows.
func (s *emuSwitch) connect(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	go func() {
		backoff := time.Second
		for {
			s.serveConn(nc)
			if s.stopped.Load() {
				return
			}
			s.reconnects.Add(1)
			for {
				time.Sleep(backoff)
				backoff = min(2*backoff, 8*time.Second)
				if s.stopped.Load() {
					return
				}
				if nc, err = net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
					break
				}
			}
		}
	}()
	return nil
}

// serve answers one connection in the background, without reconnecting.
func (s *emuSwitch) serve(nc net.Conn) { go s.serveConn(nc) }

// close ends the connection for good.
func (s *emuSwitch) close() {
	s.stopped.Store(true)
	s.wmu.Lock()
	if s.nc != nil {
		s.nc.Close()
	}
	s.wmu.Unlock()
}

// serveConn says hello on nc and answers it until it ends.
func (s *emuSwitch) serveConn(nc net.Conn) {
	s.wmu.Lock()
	s.nc, s.w = nc, bufio.NewWriterSize(nc, 64<<10)
	s.wmu.Unlock()
	if s.stopped.Load() {
		nc.Close()
		return
	}
	s.write(header(ofconn.TypeHello, 8, 1))
	s.flush()
	s.up.Store(true)
	defer s.up.Store(false)
	r := bufio.NewReaderSize(nc, 64<<10)
	for {
		frame, err := ofconn.ReadFrame(r)
		if err != nil {
			nc.Close()
			s.mu.Lock()
			clear(s.bundles) // OVS discards open bundles with the connection
			s.mu.Unlock()
			return
		}
		s.handle(frame)
		// Answer in batches: flush once nothing more is waiting.
		if r.Buffered() == 0 {
			s.flush()
		}
	}
}

func (s *emuSwitch) write(b []byte) {
	s.wmu.Lock()
	if s.w != nil {
		s.w.Write(b)
	}
	s.wmu.Unlock()
}

func (s *emuSwitch) flush() {
	s.wmu.Lock()
	if s.w != nil {
		s.w.Flush()
	}
	s.wmu.Unlock()
}

// header builds an OpenFlow 1.3 message of n bytes with its header set.
func header(typ uint8, n int, xid uint32) []byte {
	b := make([]byte, n)
	b[0], b[1] = ofconn.Version, typ
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

// reply copies req's xid into a message of type typ with body.
func reply(req []byte, typ uint8, body []byte) []byte {
	b := header(typ, ofconn.HeaderLen+len(body), binary.BigEndian.Uint32(req[4:]))
	copy(b[ofconn.HeaderLen:], body)
	return b
}

// errorReply is an OFPT_ERROR for req with up to 64 of its bytes.
func errorReply(req []byte, typ, code uint16) []byte {
	data := req[:min(len(req), 64)]
	b := header(ofconn.TypeError, 12+len(data), binary.BigEndian.Uint32(req[4:]))
	binary.BigEndian.PutUint16(b[8:], typ)
	binary.BigEndian.PutUint16(b[10:], code)
	copy(b[12:], data)
	return b
}

// handle answers one message from the controller.
func (s *emuSwitch) handle(m []byte) {
	switch m[1] {
	case ofconn.TypeHello, typeSetConfig, typeSetAsync, ofconn.TypePacketOut, ofconn.TypeEchoReply:
	case ofconn.TypeEchoRequest:
		s.write(reply(m, ofconn.TypeEchoReply, m[ofconn.HeaderLen:]))
	case ofconn.TypeFeaturesReq:
		body := make([]byte, 24)
		binary.BigEndian.PutUint64(body, s.dpid)
		binary.BigEndian.PutUint32(body[8:], 0) // n_buffers
		body[12] = 254                          // n_tables
		binary.BigEndian.PutUint32(body[16:], 0x4f)
		s.write(reply(m, ofconn.TypeFeaturesReply, body))
	case typeGetConfigReq:
		s.write(reply(m, typeGetConfigReply, []byte{0, 0, 0xff, 0xff}))
	case typeRoleRequest:
		s.write(reply(m, typeRoleReply, m[ofconn.HeaderLen:]))
	case ofconn.TypeBarrierReq:
		s.write(reply(m, ofconn.TypeBarrierReply, nil))
		s.acknowledge()
	case ofconn.TypeFlowMod:
		if code := s.applyFlowMod(m); code != 0 {
			s.write(errorReply(m, 5, code)) // OFPET_FLOW_MOD_FAILED
		}
	case ofconn.TypeMultipartReq:
		s.multipart(m)
	case ofconn.TypeExperimenter:
		s.experimenter(m)
	default:
		s.write(errorReply(m, 1, 1)) // OFPET_BAD_REQUEST / OFPBRC_BAD_TYPE
	}
}

// acknowledge reports the watched MAC's entry once a flow-mod carrying it
// has been followed by a barrier or a bundle commit.
func (s *emuSwitch) acknowledge() {
	s.mu.Lock()
	due := s.pending
	s.pending = false
	s.mu.Unlock()
	if !due {
		return
	}
	if w := s.watch.Load(); w != nil && w.done.CompareAndSwap(false, true) {
		w.ack(time.Now())
	}
}

// flowKey is what makes two flows the same flow: table, priority, match.
func flowKey(table uint8, prio uint16, oxm []byte) string {
	k := make([]byte, 3+len(oxm))
	k[0] = table
	binary.BigEndian.PutUint16(k[1:], prio)
	copy(k[3:], oxm)
	return string(k)
}

// checkFlowMod returns 0 for a flow-mod the emulator can apply, else an
// OFPET_FLOW_MOD_FAILED code: BAD_COMMAND (6) for a malformed message, a
// command it does not implement (modify, a wildcard delete with match
// fields: a controller clearing a bridge sends none), BAD_TABLE_ID (2).
func checkFlowMod(m []byte) uint16 {
	p, ok := parseFlowMod(m)
	switch {
	case !ok:
		return 6
	case p.command == fmAdd && p.table > 254:
		return 2
	case p.command == fmAdd, p.command == fmModifyStrict, p.command == fmDeleteStrict:
		return 0
	case p.command == fmDelete && len(p.oxm) == 0:
		return 0
	}
	return 6
}

// parsedMod is a flow-mod's fields.
type parsedMod struct {
	cookie, cookieMask uint64
	table, command     uint8
	idle, hard, prio   uint16
	flags              uint16
	oxm, instructions  []byte
}

// parseFlowMod reads an OpenFlow 1.3 flow-mod; ok is false when it is
// malformed.
func parseFlowMod(m []byte) (parsedMod, bool) {
	var p parsedMod
	if len(m) < 56 {
		return p, false
	}
	p.cookie, p.cookieMask = binary.BigEndian.Uint64(m[8:]), binary.BigEndian.Uint64(m[16:])
	p.table, p.command = m[24], m[25]
	p.idle, p.hard, p.prio = binary.BigEndian.Uint16(m[26:]), binary.BigEndian.Uint16(m[28:]), binary.BigEndian.Uint16(m[30:])
	p.flags = binary.BigEndian.Uint16(m[44:])
	mtype, mlen := binary.BigEndian.Uint16(m[48:]), int(binary.BigEndian.Uint16(m[50:]))
	padded := (mlen + 7) / 8 * 8
	if mtype != 1 || mlen < 4 || 48+padded > len(m) {
		return p, false
	}
	p.oxm, p.instructions = m[52:48+mlen], m[48+padded:]
	return p, true
}

// applyFlowMod applies one flow-mod; it returns 0 or checkFlowMod's code.
func (s *emuSwitch) applyFlowMod(m []byte) uint16 {
	if code := checkFlowMod(m); code != 0 {
		return code
	}
	p, _ := parseFlowMod(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch p.command {
	case fmAdd, fmModifyStrict:
		padded := (4 + len(p.oxm) + 7) / 8 * 8
		e := make([]byte, flowStatsHd+padded+len(p.instructions))
		binary.BigEndian.PutUint16(e, uint16(len(e)))
		e[2] = p.table
		binary.BigEndian.PutUint16(e[12:], p.prio)
		binary.BigEndian.PutUint16(e[14:], p.idle)
		binary.BigEndian.PutUint16(e[16:], p.hard)
		binary.BigEndian.PutUint16(e[18:], p.flags)
		binary.BigEndian.PutUint64(e[24:], p.cookie)
		binary.BigEndian.PutUint16(e[48:], 1)
		binary.BigEndian.PutUint16(e[50:], uint16(4+len(p.oxm)))
		copy(e[52:], p.oxm)
		copy(e[flowStatsHd+padded:], p.instructions)
		s.table[flowKey(p.table, p.prio, p.oxm)] = &emuFlow{table: p.table, cookie: p.cookie, entry: e}
		if p.table == flows.TableUnicast {
			if w := s.watch.Load(); w != nil && bytes.Contains(p.oxm, w.mac) {
				s.pending = true
			}
		}
	case fmDeleteStrict:
		k := flowKey(p.table, p.prio, p.oxm)
		if f, ok := s.table[k]; ok && f.cookie&p.cookieMask == p.cookie&p.cookieMask {
			delete(s.table, k)
		}
	case fmDelete:
		for k, f := range s.table {
			if (p.table == 0xff || f.table == p.table) && f.cookie&p.cookieMask == p.cookie&p.cookieMask {
				delete(s.table, k)
			}
		}
	}
	s.flowMods.Add(1)
	s.lastMod.Store(time.Now().UnixNano())
	return 0
}

// multipart answers flow-stats and port-description requests.
func (s *emuSwitch) multipart(m []byte) {
	if len(m) < 16 {
		s.write(errorReply(m, 1, 6)) // BAD_LEN
		return
	}
	switch binary.BigEndian.Uint16(m[8:]) {
	case mpFlow:
		if len(m) < 56 {
			s.write(errorReply(m, 1, 6))
			return
		}
		table := m[16]
		cookie, mask := binary.BigEndian.Uint64(m[32:]), binary.BigEndian.Uint64(m[40:])
		var entries [][]byte
		s.mu.Lock()
		for _, f := range s.table {
			if (table == 0xff || f.table == table) && f.cookie&mask == cookie&mask {
				entries = append(entries, f.entry)
			}
		}
		s.mu.Unlock()
		s.multipartReply(m, mpFlow, entries)
	case mpPortDesc:
		entries := make([][]byte, len(s.ports))
		for i, p := range s.ports {
			e := make([]byte, 64)
			binary.BigEndian.PutUint32(e, p.no)
			copy(e[8:14], []byte{0x02, 0, byte(s.dpid >> 16), byte(s.dpid >> 8), byte(s.dpid), byte(p.no)})
			copy(e[16:32], p.name)
			entries[i] = e
		}
		s.multipartReply(m, mpPortDesc, entries)
	default:
		s.write(errorReply(m, 1, 2)) // OFPBRC_BAD_MULTIPART
	}
}

// multipartReply sends entries in as many parts as it takes to keep each
// under OpenFlow's 64 KiB, all but the last flagged MORE.
func (s *emuSwitch) multipartReply(req []byte, typ uint16, entries [][]byte) {
	xid := binary.BigEndian.Uint32(req[4:])
	part := func(body []byte, more bool) {
		b := header(ofconn.TypeMultipartReply, 16+len(body), xid)
		binary.BigEndian.PutUint16(b[8:], typ)
		if more {
			binary.BigEndian.PutUint16(b[10:], ofconn.MultipartReplyMore)
		}
		copy(b[16:], body)
		s.write(b)
	}
	var body []byte
	for _, e := range entries {
		if 16+len(body)+len(e) > maxMessage {
			part(body, true)
			body = body[:0]
		}
		body = append(body, e...)
	}
	part(body, false)
}

// experimenter handles ONF bundles; anything else is refused.
func (s *emuSwitch) experimenter(m []byte) {
	if len(m) < 24 || binary.BigEndian.Uint32(m[8:]) != ofconn.ExperimenterONF {
		s.write(errorReply(m, 1, 3)) // OFPBRC_BAD_EXPERIMENTER
		return
	}
	id := binary.BigEndian.Uint32(m[16:])
	switch binary.BigEndian.Uint32(m[12:]) {
	case bundleControl:
		typ := binary.BigEndian.Uint16(m[20:])
		if typ%2 != 0 || typ > bundleDiscard {
			s.write(bundleError(m, 6)) // OFPBFC_BAD_TYPE
			return
		}
		s.mu.Lock()
		ops, open := s.bundles[id]
		switch {
		case typ == bundleOpen && open:
			s.mu.Unlock()
			s.write(bundleError(m, 3)) // OFPBFC_BUNDLE_EXIST
			return
		case typ != bundleOpen && !open:
			s.mu.Unlock()
			s.write(bundleError(m, 2)) // OFPBFC_BAD_ID
			return
		case typ == bundleOpen:
			s.bundles[id] = nil
		case typ == bundleCommit || typ == bundleDiscard:
			delete(s.bundles, id)
		}
		s.mu.Unlock()
		if typ == bundleCommit {
			// All or nothing: check every message before applying any.
			for _, op := range ops {
				if code := checkFlowMod(op); code != 0 {
					s.write(bundleError(m, 13)) // OFPBFC_MSG_FAILED
					return
				}
			}
			for _, op := range ops {
				s.applyFlowMod(op)
			}
			s.commits.Add(1)
		}
		r := reply(m, ofconn.TypeExperimenter, m[ofconn.HeaderLen:24])
		binary.BigEndian.PutUint16(r[20:], typ+1)
		s.write(r)
		if typ == bundleCommit {
			s.acknowledge()
		}
	case bundleAdd:
		inner := m[24:]
		if len(inner) < ofconn.HeaderLen || inner[1] != ofconn.TypeFlowMod {
			s.write(bundleError(m, 10)) // OFPBFC_MSG_UNSUP
			return
		}
		if code := checkFlowMod(inner); code != 0 {
			s.write(errorReply(m, 5, code))
			return
		}
		s.mu.Lock()
		ops, open := s.bundles[id]
		if open {
			s.bundles[id] = append(ops, bytes.Clone(inner))
		}
		s.mu.Unlock()
		if !open {
			s.write(bundleError(m, 2))
		}
	default:
		s.write(errorReply(m, 1, 4)) // OFPBRC_BAD_EXP_TYPE
	}
}

// bundleError is an ONF experimenter error (code 2300 + c) for req.
func bundleError(req []byte, c uint16) []byte {
	data := req[:min(len(req), 64)]
	b := header(ofconn.TypeError, 16+len(data), binary.BigEndian.Uint32(req[4:]))
	binary.BigEndian.PutUint16(b[8:], ofconn.ErrorTypeExperimenter)
	binary.BigEndian.PutUint16(b[10:], 2300+c)
	binary.BigEndian.PutUint32(b[12:], ofconn.ExperimenterONF)
	copy(b[16:], data)
	return b
}

// packetIn sends what table 1 of a controller-mode br-tun sends for a frame
// from an unknown local source: an ARP request from mac (sender ip) tagged
// with the network's local VLAN, in from the patch port, reason "action",
// with the table-1 flow's cookie owner.
func (s *emuSwitch) packetIn(mac net.HardwareAddr, ip, target netip.Addr, vlan uint16) {
	frame := make([]byte, 0, 46)
	frame = append(frame, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	frame = append(frame, mac...)
	frame = binary.BigEndian.AppendUint16(frame, 0x8100)
	frame = binary.BigEndian.AppendUint16(frame, vlan&0x0fff)
	frame = binary.BigEndian.AppendUint16(frame, 0x0806)
	frame = append(frame, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet/IPv4, request
	frame = append(frame, mac...)
	frame = append(frame, ip.AsSlice()...)
	frame = append(frame, 0, 0, 0, 0, 0, 0)
	frame = append(frame, target.AsSlice()...)

	const matchLen = 4 + 8 // ofp_match header + in_port OXM
	b := header(ofconn.TypePacketIn, 24+16+2+len(frame), 0)
	binary.BigEndian.PutUint32(b[8:], 0xffffffff) // no buffer
	binary.BigEndian.PutUint16(b[12:], uint16(len(frame)))
	b[14], b[15] = 1, flows.TableFromPort // OFPR_ACTION
	binary.BigEndian.PutUint64(b[16:], flows.CookieOwned|1)
	binary.BigEndian.PutUint16(b[24:], 1)
	binary.BigEndian.PutUint16(b[26:], matchLen)
	binary.BigEndian.PutUint32(b[28:], 0x80000004) // OXM in_port, 4 bytes
	binary.BigEndian.PutUint32(b[32:], topology.PatchOFPort)
	copy(b[24+16+2:], frame)
	s.write(b)
	s.flush()
}

// flowCount is how many flows the switch holds.
func (s *emuSwitch) flowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.table)
}

// tableBytes is the size of the flow table's entries, for the emulator's
// own memory share.
func (s *emuSwitch) tableBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, f := range s.table {
		n += len(k) + len(f.entry)
	}
	return n
}
