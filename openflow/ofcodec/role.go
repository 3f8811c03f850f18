package ofcodec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Role is an OpenFlow controller role (ofp_controller_role). A connection
// starts EQUAL; a switch has at most one MASTER; a SLAVE may only read.
type Role uint32

// The roles of OpenFlow 1.3 (§7.3.9). OVS 3.1 renames master and slave
// primary and secondary in its logs; the values are the same.
const (
	RoleNoChange Role = 0 // a request that only asks for the current role
	RoleEqual    Role = 1
	RoleMaster   Role = 2
	RoleSlave    Role = 3
)

// String names the role as OpenFlow does.
func (r Role) String() string {
	switch r {
	case RoleNoChange:
		return "nochange"
	case RoleEqual:
		return "equal"
	case RoleMaster:
		return "master"
	case RoleSlave:
		return "slave"
	}
	return fmt.Sprintf("role(%d)", uint32(r))
}

// Valid reports whether r is one of the four roles (OVS refuses any other
// with OFPRRFC_BAD_ROLE).
func (r Role) Valid() bool { return r <= RoleSlave }

// Message types and errors of the role exchange, which libOpenflow lacks.
const (
	TypeRoleRequest = 24 // OFPT_ROLE_REQUEST
	TypeRoleReply   = 25 // OFPT_ROLE_REPLY

	// ErrorTypeRoleRequestFailed (OFPET_ROLE_REQUEST_FAILED) and its codes.
	ErrorTypeRoleRequestFailed = 11
	RoleErrorStale             = 0 // OFPRRFC_STALE: generation ID older than one seen
	RoleErrorUnsupported       = 1 // OFPRRFC_UNSUP
	RoleErrorBadRole           = 2 // OFPRRFC_BAD_ROLE

	// ErrorTypeBadRequest (OFPET_BAD_REQUEST) with BadRequestIsSlave
	// (OFPBRC_IS_SLAVE) answers a state change from a slave.
	ErrorTypeBadRequest = 1
	BadRequestIsSlave   = 10

	// GenerationIDNone is the generation ID of a role reply when no master
	// or slave request has set one yet (OVS sends all ones).
	GenerationIDNone = ^uint64(0)
)

// roleLen is the length of a role request or reply: the header, role u32,
// 4 bytes of padding, generation_id u64.
const roleLen = 24

// RoleMessage is an OFPT_ROLE_REQUEST or OFPT_ROLE_REPLY. It is a
// libOpenflow util.Message, so an ofconn.Conn sends it with its own xid.
type RoleMessage struct {
	Type         uint8 // TypeRoleRequest or TypeRoleReply
	Xid          uint32
	Role         Role
	GenerationID uint64
}

// NewRoleRequest asks for role with generation ID gen (ignored by the
// switch for RoleEqual and RoleNoChange).
func NewRoleRequest(role Role, gen uint64) *RoleMessage {
	return &RoleMessage{Type: TypeRoleRequest, Role: role, GenerationID: gen}
}

// Len is the encoded length.
func (m *RoleMessage) Len() uint16 { return roleLen }

// MarshalBinary encodes the message (OpenFlow 1.3).
func (m *RoleMessage) MarshalBinary() ([]byte, error) {
	if m.Type != TypeRoleRequest && m.Type != TypeRoleReply {
		return nil, fmt.Errorf("encoding a role message of type %d: want %d or %d", m.Type, TypeRoleRequest, TypeRoleReply)
	}
	b := make([]byte, roleLen)
	b[0], b[1] = 4, m.Type
	binary.BigEndian.PutUint16(b[2:], roleLen)
	binary.BigEndian.PutUint32(b[4:], m.Xid)
	binary.BigEndian.PutUint32(b[8:], uint32(m.Role))
	binary.BigEndian.PutUint64(b[16:], m.GenerationID)
	return b, nil
}

// UnmarshalBinary decodes a role request or reply (DecodeRole).
func (m *RoleMessage) UnmarshalBinary(b []byte) error {
	d, err := DecodeRole(b)
	if err != nil {
		return err
	}
	*m = d
	return nil
}

// ErrRoleLength is returned for a role message that is not 24 bytes long
// (OVS answers OFPBRC_BAD_LEN).
var ErrRoleLength = errors.New("role message is not 24 bytes long")

// DecodeRole decodes an OpenFlow 1.3 role request or reply. The role is
// returned as sent: Role.Valid says whether a switch would accept it.
func DecodeRole(frame []byte) (RoleMessage, error) {
	if len(frame) < 8 || frame[0] != 4 || (frame[1] != TypeRoleRequest && frame[1] != TypeRoleReply) {
		return RoleMessage{}, fmt.Errorf("decoding a role message: not an OpenFlow 1.3 role request or reply (%d bytes)", len(frame))
	}
	if len(frame) != roleLen || int(binary.BigEndian.Uint16(frame[2:])) != roleLen {
		return RoleMessage{}, fmt.Errorf("decoding a role message of %d bytes (header says %d): %w", len(frame), binary.BigEndian.Uint16(frame[2:]), ErrRoleLength)
	}
	return RoleMessage{
		Type:         frame[1],
		Xid:          binary.BigEndian.Uint32(frame[4:]),
		Role:         Role(binary.BigEndian.Uint32(frame[8:])),
		GenerationID: binary.BigEndian.Uint64(frame[16:]),
	}, nil
}

// GenerationStale reports whether generation ID gen is older than last, the
// newest one a switch has seen: their difference, read as a signed 64-bit
// number, is negative (OpenFlow 1.3 §6.3.5), so the IDs may wrap around.
func GenerationStale(gen, last uint64) bool { return int64(gen-last) < 0 }

// Role status, the ONF extension that tells an OpenFlow 1.3 connection its
// role changed (OpenFlow 1.4's OFPT_ROLE_STATUS): ONF experimenter type
// 1911, then role u32, reason u8, 3 bytes of padding, generation_id u64.
const (
	roleStatusExpType = 1911
	roleStatusLen     = 32
	experimenterONF   = 0x4f4e4600

	RoleStatusMasterRequest = 0 // OFPCRR_MASTER_REQUEST: another controller became master
	RoleStatusConfig        = 1 // OFPCRR_CONFIG
	RoleStatusExperimenter  = 2 // OFPCRR_EXPERIMENTER
)

// RoleStatus is an ONF role status: the switch changed a connection's role
// without being asked on that connection.
type RoleStatus struct {
	Role         Role
	Reason       uint8
	GenerationID uint64
}

// EncodeRoleStatus encodes s as OVS sends it to an OpenFlow 1.3 connection.
func EncodeRoleStatus(s RoleStatus, xid uint32) []byte {
	b := make([]byte, roleStatusLen)
	b[0], b[1] = 4, 4 // OFPT_EXPERIMENTER
	binary.BigEndian.PutUint16(b[2:], roleStatusLen)
	binary.BigEndian.PutUint32(b[4:], xid)
	binary.BigEndian.PutUint32(b[8:], experimenterONF)
	binary.BigEndian.PutUint32(b[12:], roleStatusExpType)
	binary.BigEndian.PutUint32(b[16:], uint32(s.Role))
	b[20] = s.Reason
	binary.BigEndian.PutUint64(b[24:], s.GenerationID)
	return b
}

// DecodeRoleStatus decodes an ONF role status; ok is false for any other
// message (a frame of another type, or a role status of the wrong length).
func DecodeRoleStatus(frame []byte) (s RoleStatus, ok bool) {
	if len(frame) != roleStatusLen || frame[0] != 4 || frame[1] != 4 || int(binary.BigEndian.Uint16(frame[2:])) != roleStatusLen ||
		binary.BigEndian.Uint32(frame[8:]) != experimenterONF || binary.BigEndian.Uint32(frame[12:]) != roleStatusExpType {
		return RoleStatus{}, false
	}
	return RoleStatus{
		Role:         Role(binary.BigEndian.Uint32(frame[16:])),
		Reason:       frame[20],
		GenerationID: binary.BigEndian.Uint64(frame[24:]),
	}, true
}
