package ofconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the only OpenFlow version this package speaks (1.3).
const Version = 4

// HeaderLen is the length of the OpenFlow header every message starts with.
const HeaderLen = 8

// OpenFlow 1.3 message types this package handles itself.
const (
	TypeHello          = 0
	TypeError          = 1
	TypeEchoRequest    = 2
	TypeEchoReply      = 3
	TypeExperimenter   = 4
	TypeFeaturesReq    = 5
	TypeFeaturesReply  = 6
	TypePacketIn       = 10
	TypeFlowRemoved    = 11
	TypePortStatus     = 12
	TypePacketOut      = 13
	TypeFlowMod        = 14
	TypeMultipartReq   = 18
	TypeMultipartReply = 19
	TypeBarrierReq     = 20
	TypeBarrierReply   = 21
)

// Experimenter IDs of the extensions OVS speaks.
const (
	ExperimenterNX  uint32 = 0x00002320 // Nicira
	ExperimenterONF uint32 = 0x4f4e4600 // ONF (bundles over OpenFlow 1.3)
)

// MultipartReplyMore is the flag of a multipart reply that has more parts.
const MultipartReplyMore = 1

// Message is one message read from the switch. Raw is the whole frame in a
// buffer of its own: the receiver may keep it.
type Message struct {
	Version uint8
	Type    uint8
	Xid     uint32
	Raw     []byte
	// Parsed is the decoded asynchronous message (*PacketIn, *PortStatus or
	// *FlowRemoved); ParseErr says why one could not be decoded. Other
	// messages are left raw.
	Parsed   any
	ParseErr error
}

// Body is the message after its 8-byte header.
func (m Message) Body() []byte { return m.Raw[HeaderLen:] }

// Experimenter returns the experimenter ID and type of an experimenter
// message; ok is false for other messages or a truncated one.
func (m Message) Experimenter() (id, typ uint32, ok bool) {
	if m.Type != TypeExperimenter || len(m.Raw) < 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(m.Raw[8:]), binary.BigEndian.Uint32(m.Raw[12:]), true
}

// MultipartFlags returns the flags of a multipart reply (0 if m is not one or
// is truncated).
func (m Message) MultipartFlags() uint16 {
	if m.Type != TypeMultipartReply || len(m.Raw) < 16 {
		return 0
	}
	return binary.BigEndian.Uint16(m.Raw[10:])
}

// errFrameTooShort means a header announced a length below the header's own:
// the stream cannot be resynchronised after it.
var errFrameTooShort = errors.New("OpenFlow header announces a length shorter than the header")

// maxFrame is the longest message OpenFlow's 16-bit length allows.
const maxFrame = 0xffff

// ReadFrame reads one OpenFlow message from r into a fresh buffer: the 8-byte
// header, then as many bytes as its length field says.
func ReadFrame(r io.Reader) ([]byte, error) { return readFrame(r, maxFrame) }

// readFrame is ReadFrame refusing messages longer than limit.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n < HeaderLen {
		return nil, fmt.Errorf("%w (%d bytes, type %d)", errFrameTooShort, n, hdr[1])
	}
	if n > limit {
		return nil, fmt.Errorf("a %d-byte message of type %d before the handshake completed (at most %d)", n, hdr[1], limit)
	}
	frame := make([]byte, n)
	copy(frame, hdr[:])
	if _, err := io.ReadFull(r, frame[HeaderLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading a %d-byte message of type %d: %w", n, hdr[1], err)
	}
	return frame, nil
}

// Decode turns a frame read by ReadFrame into a Message, decoding the
// asynchronous messages. It never panics and never calls libOpenflow's
// parser (which panics on unknown experimenter messages, loops forever on a
// packet-out and misreads port-status).
func Decode(frame []byte) Message {
	m := Message{Raw: frame}
	if len(frame) < HeaderLen {
		m.ParseErr = fmt.Errorf("message of %d bytes is shorter than the OpenFlow header", len(frame))
		return m
	}
	m.Version, m.Type, m.Xid = frame[0], frame[1], binary.BigEndian.Uint32(frame[4:])
	if m.Version != Version {
		return m
	}
	var err error
	switch m.Type {
	case TypePacketIn:
		m.Parsed, err = DecodePacketIn(frame)
	case TypeFlowRemoved:
		m.Parsed, err = DecodeFlowRemoved(frame)
	case TypePortStatus:
		m.Parsed, err = DecodePortStatus(frame)
	}
	if err != nil {
		m.Parsed, m.ParseErr = nil, err
	}
	return m
}

// Error is an OpenFlow error message from the switch (ofp_error_msg),
// including experimenter errors, which carry bundle failures.
type Error struct {
	Xid          uint32
	Type         uint16
	Code         uint16 // exp_type for experimenter errors
	Experimenter uint32 // only for Type 0xffff
	Data         []byte // the start of the offending request, as the switch sent it back
}

// ErrorTypeExperimenter is the error type of experimenter errors.
const ErrorTypeExperimenter = 0xffff

// DecodeError decodes an OFPT_ERROR message.
func DecodeError(frame []byte) (*Error, error) {
	if len(frame) < 12 || frame[1] != TypeError {
		return nil, fmt.Errorf("not an OpenFlow error message (%d bytes)", len(frame))
	}
	e := &Error{
		Xid:  binary.BigEndian.Uint32(frame[4:]),
		Type: binary.BigEndian.Uint16(frame[8:]),
		Code: binary.BigEndian.Uint16(frame[10:]),
	}
	data := frame[12:]
	if e.Type == ErrorTypeExperimenter {
		if len(data) < 4 {
			return nil, errors.New("experimenter error message without an experimenter ID")
		}
		e.Experimenter = binary.BigEndian.Uint32(data)
		data = data[4:]
	}
	e.Data = append([]byte(nil), data...)
	return e, nil
}

// Error names the error type and code, and the request that caused it.
func (e *Error) Error() string {
	name := errorName(e.Type, e.Code, e.Experimenter)
	if req := e.request(); req != "" {
		return fmt.Sprintf("switch replied %s to %s", name, req)
	}
	return "switch replied " + name
}

// request names the offending request from the data the switch echoes back.
func (e *Error) request() string {
	if len(e.Data) < HeaderLen {
		return ""
	}
	t := e.Data[1]
	if t == TypeExperimenter && len(e.Data) >= 16 {
		return fmt.Sprintf("experimenter message 0x%x/%d", binary.BigEndian.Uint32(e.Data[8:]), binary.BigEndian.Uint32(e.Data[12:]))
	}
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("message type %d", t)
}

var typeNames = map[uint8]string{
	TypeHello: "HELLO", TypeEchoRequest: "ECHO_REQUEST", TypeFeaturesReq: "FEATURES_REQUEST",
	TypePacketOut: "PACKET_OUT", TypeFlowMod: "FLOW_MOD", 15: "GROUP_MOD", 16: "PORT_MOD", 17: "TABLE_MOD",
	TypeMultipartReq: "MULTIPART_REQUEST", TypeBarrierReq: "BARRIER_REQUEST", 24: "ROLE_REQUEST",
	28: "SET_ASYNC", 29: "METER_MOD",
}

var errorTypes = map[uint16]string{
	0: "HELLO_FAILED", 1: "BAD_REQUEST", 2: "BAD_ACTION", 3: "BAD_INSTRUCTION", 4: "BAD_MATCH",
	5: "FLOW_MOD_FAILED", 6: "GROUP_MOD_FAILED", 7: "PORT_MOD_FAILED", 8: "TABLE_MOD_FAILED",
	9: "QUEUE_OP_FAILED", 10: "SWITCH_CONFIG_FAILED", 11: "ROLE_REQUEST_FAILED", 12: "METER_MOD_FAILED",
	13: "TABLE_FEATURES_FAILED",
}

var errorCodes = map[uint16][]string{
	0: {"INCOMPATIBLE", "EPERM"},
	1: {"BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM", "BAD_LEN",
		"BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT", "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW"},
	2: {"BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT", "EPERM",
		"TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT", "UNSUPPORTED_ORDER", "BAD_TAG",
		"BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT"},
	3: {"UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK",
		"BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM"},
	4: {"BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS",
		"BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"},
	5: {"UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS"},
}

var bundleCodes = []string{"UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES",
	"BAD_TYPE", "BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY",
	"MSG_FAILED", "TIMEOUT", "BUNDLE_IN_PROGRESS"}

// errorName renders an error type and code as OpenFlow names them.
func errorName(typ, code uint16, experimenter uint32) string {
	if typ == ErrorTypeExperimenter {
		if experimenter == ExperimenterONF && code >= 2300 && int(code-2300) < len(bundleCodes) {
			return "OFPBFC_" + bundleCodes[code-2300]
		}
		return fmt.Sprintf("experimenter error 0x%x/%d", experimenter, code)
	}
	t, ok := errorTypes[typ]
	if !ok {
		return fmt.Sprintf("error type %d code %d", typ, code)
	}
	if codes := errorCodes[typ]; int(code) < len(codes) {
		return fmt.Sprintf("OFPET_%s/%s", t, codes[code])
	}
	return fmt.Sprintf("OFPET_%s code %d", t, code)
}
