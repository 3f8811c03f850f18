package openflowtest

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The switch's side of OpenFlow 1.3: the messages a switch sends, which no
// controller-side package encodes.

// OpenFlow 1.3 message types the switch handles beyond those ofconn names.
const (
	typeGetConfigReq   = 7
	typeGetConfigReply = 8
	typeSetConfig      = 9
	typeGroupMod       = 15
	typePortMod        = 16
	typeTableMod       = 17
	typeSetAsync       = 28
	typeMeterMod       = 29

	mpFlow     = 1  // OFPMP_FLOW
	mpPortDesc = 13 // OFPMP_PORT_DESC

	maxMessage  = 0xffff
	portDescLen = 64 // sizeof(struct ofp_port)

	defaultMissSendLen = 128 // OFP_DEFAULT_MISS_SEND_LEN
	noBuffer           = 0xffffffff
	portAny            = 0xffffffff // OFPP_ANY, and OFPG_ANY
)

// ofError is an OpenFlow error: its type in the high 16 bits, its code in
// the low ones (experimenter errors: type ofconn.ErrorTypeExperimenter and
// the ONF code). Zero, HELLO_FAILED/INCOMPATIBLE, which the switch never
// sends, means no error.
type ofError uint32

func (e ofError) typ() uint16  { return uint16(e >> 16) }
func (e ofError) code() uint16 { return uint16(e) }

// The errors the switch sends.
const (
	errNone          ofError = 0
	errBadVersion    ofError = 1<<16 | 0  // OFPBRC_BAD_VERSION
	errBadType       ofError = 1<<16 | 1  // OFPBRC_BAD_TYPE
	errBadMultipart  ofError = 1<<16 | 2  // OFPBRC_BAD_MULTIPART
	errBadExp        ofError = 1<<16 | 3  // OFPBRC_BAD_EXPERIMENTER
	errBadExpType    ofError = 1<<16 | 4  // OFPBRC_BAD_EXP_TYPE
	errEPERM         ofError = 1<<16 | 5  // OFPBRC_EPERM: read-only table, or not emulated
	errBadLen        ofError = 1<<16 | 6  // OFPBRC_BAD_LEN
	errBufferUnknown ofError = 1<<16 | 8  // OFPBRC_BUFFER_UNKNOWN: the switch buffers nothing
	errBadTableID    ofError = 1<<16 | 9  // OFPBRC_BAD_TABLE_ID
	errIsSlave       ofError = 1<<16 | 10 // OFPBRC_IS_SLAVE
	errBadMatchLen   ofError = 4<<16 | 1  // OFPBMC_BAD_LEN
	errFlowModEPERM  ofError = 5<<16 | 4  // OFPFMFC_EPERM: refused by Switch.RejectFlowMods
	errBadCommand    ofError = 5<<16 | 6  // OFPFMFC_BAD_COMMAND

	errRoleStale   = ofError(ofcodec.ErrorTypeRoleRequestFailed<<16 | ofcodec.RoleErrorStale)
	errRoleBadRole = ofError(ofcodec.ErrorTypeRoleRequestFailed<<16 | ofcodec.RoleErrorBadRole)

	// ONF bundle errors (OFPBFC_*).
	errBundle         ofError = ofconn.ErrorTypeExperimenter<<16 | 2300
	errBundleBadID    ofError = errBundle + 2
	errBundleClosed   ofError = errBundle + 4
	errBundleBadType  ofError = errBundle + 6
	errBundleBadFlags ofError = errBundle + 7
	errBundleMsgLen   ofError = errBundle + 8
	errBundleMsgXID   ofError = errBundle + 9
	errBundleMsgUnsup ofError = errBundle + 10
	errBundleFailed   ofError = errBundle + 13
)

// header builds an OpenFlow 1.3 message of n bytes with its header set.
func header(typ uint8, n int, xid uint32) []byte {
	b := make([]byte, n)
	b[0], b[1] = ofconn.Version, typ
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

func xidOf(m []byte) uint32 { return binary.BigEndian.Uint32(m[4:]) }

// reply copies req's xid into a message of type typ with body.
func reply(req []byte, typ uint8, body []byte) []byte {
	b := header(typ, ofconn.HeaderLen+len(body), xidOf(req))
	copy(b[ofconn.HeaderLen:], body)
	return b
}

// errorMsg is the OFPT_ERROR e for req, with up to 64 of req's bytes.
func errorMsg(req []byte, e ofError) []byte {
	data := req[:min(len(req), 64)]
	fixed := 12
	if e.typ() == ofconn.ErrorTypeExperimenter {
		fixed = 16
	}
	b := header(ofconn.TypeError, fixed+len(data), xidOf(req))
	binary.BigEndian.PutUint16(b[8:], e.typ())
	binary.BigEndian.PutUint16(b[10:], e.code())
	if e.typ() == ofconn.ErrorTypeExperimenter {
		binary.BigEndian.PutUint32(b[12:], ofconn.ExperimenterONF)
	}
	copy(b[fixed:], data)
	return b
}

// featuresReply answers a features request as OVS does: no buffers, 254
// tables (table 254 is OVS's hidden one), flow/table/port/group/queue stats.
func featuresReply(req []byte, dpid uint64) []byte {
	body := make([]byte, 24)
	binary.BigEndian.PutUint64(body, dpid)
	body[12] = 254
	binary.BigEndian.PutUint32(body[16:], 0x4f)
	return reply(req, ofconn.TypeFeaturesReply, body)
}

// portDesc encodes p as an ofp_port; a port without a hardware address gets
// a local one made of the datapath ID and the port number.
func portDesc(p ofconn.Port, dpid uint64) []byte {
	e := make([]byte, portDescLen)
	u := func(i int, v uint32) { binary.BigEndian.PutUint32(e[i:], v) }
	u(0, p.No)
	if len(p.HWAddr) == 6 {
		copy(e[8:14], p.HWAddr)
	} else {
		copy(e[8:14], []byte{0x02, byte(dpid >> 16), byte(dpid >> 8), byte(dpid), byte(p.No >> 8), byte(p.No)})
	}
	copy(e[16:31], p.Name) // 16 bytes, NUL-terminated
	u(32, p.Config)
	u(36, p.State)
	u(40, p.Curr)
	u(44, p.Advertised)
	u(48, p.Supported)
	u(52, p.Peer)
	u(56, p.CurrSpeed)
	u(60, p.MaxSpeed)
	return e
}

// Port-status reasons (OFPPR_*).
const (
	portAdded    = 0
	portDeleted  = 1
	portModified = 2
)

// portStatus is an unsolicited OFPT_PORT_STATUS.
func portStatus(reason uint8, p ofconn.Port, dpid uint64) []byte {
	b := header(ofconn.TypePortStatus, 16+portDescLen, 0)
	b[8] = reason
	copy(b[16:], portDesc(p, dpid))
	return b
}

// PacketIn is what the switch sends the controller about a packet.
type PacketIn struct {
	Reason   uint8  // OFPR_NO_MATCH 0, OFPR_ACTION 1, OFPR_INVALID_TTL 2
	Table    uint8  // the table whose flow sent it
	Cookie   uint64 // that flow's cookie
	InPort   uint32
	TunnelID uint64 // put in the match when not zero (a packet from a tunnel)
	Data     []byte // the packet, as the controller receives it
}

// Packet-in reasons.
const (
	ReasonNoMatch = 0 // OFPR_NO_MATCH: a table miss
	ReasonAction  = 1 // OFPR_ACTION: a CONTROLLER action
)

// encode builds the OFPT_PACKET_IN (unbuffered).
func (p PacketIn) encode() []byte {
	matchLen := 4 + 8 // ofp_match header, in_port
	if p.TunnelID != 0 {
		matchLen += 12
	}
	padded := (matchLen + 7) / 8 * 8
	b := header(ofconn.TypePacketIn, 24+padded+2+len(p.Data), 0)
	binary.BigEndian.PutUint32(b[8:], noBuffer)
	binary.BigEndian.PutUint16(b[12:], uint16(len(p.Data)))
	b[14], b[15] = p.Reason, p.Table
	binary.BigEndian.PutUint64(b[16:], p.Cookie)
	binary.BigEndian.PutUint16(b[24:], 1) // OFPMT_OXM
	binary.BigEndian.PutUint16(b[26:], uint16(matchLen))
	binary.BigEndian.PutUint32(b[28:], 0x80000004) // OXM in_port, 4 bytes
	binary.BigEndian.PutUint32(b[32:], p.InPort)
	if p.TunnelID != 0 {
		binary.BigEndian.PutUint32(b[36:], 0x80004c08) // OXM tunnel_id, 8 bytes
		binary.BigEndian.PutUint64(b[40:], p.TunnelID)
	}
	copy(b[24+padded+2:], p.Data)
	return b
}

// UnknownSource is the packet-in table 1 of a controller-mode br-tun sends
// for a frame from br-int (the patch port) whose source it does not know:
// reason action, from a flow with the compiled flows' cookie owner.
func UnknownSource(frame []byte) PacketIn {
	return PacketIn{Reason: ReasonAction, Table: flows.TableFromPort, Cookie: flows.CookieOwned | 1, InPort: topology.PatchOFPort, Data: frame}
}

// ARPRequest is a broadcast ARP request from src (sender address ip) for
// target, tagged with vlan as br-int hands a network's frames to br-tun.
func ARPRequest(src net.HardwareAddr, ip, target netip.Addr, vlan uint16) []byte {
	f := make([]byte, 0, 46)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, src...)
	f = binary.BigEndian.AppendUint16(f, 0x8100)
	f = binary.BigEndian.AppendUint16(f, vlan&0x0fff)
	f = binary.BigEndian.AppendUint16(f, 0x0806)
	f = append(f, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet/IPv4, request
	f = append(f, src...)
	f = append(f, ip.AsSlice()...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	f = append(f, target.AsSlice()...)
	return f
}
