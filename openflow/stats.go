package openflow

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/contiv/libOpenflow/openflow13"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// Multipart types this file asks for.
const (
	multipartFlow     = 1  // OFPMP_FLOW
	multipartPortDesc = 13 // OFPMP_PORT_DESC
	portDescLen       = 64 // sizeof(struct ofp_port)
)

// Ports reads the switch's port descriptions (OFPMP_PORT_DESC).
func (s *Switch) Ports(ctx context.Context) ([]ofconn.Port, error) {
	body := make([]byte, 8) // type, flags, pad
	binary.BigEndian.PutUint16(body, multipartPortDesc)
	parts, err := s.conn.RequestMultipart(ctx, ofconn.Raw(ofconn.TypeMultipartReq, body))
	if err != nil {
		return nil, fmt.Errorf("port description request: %w", err)
	}
	var out []ofconn.Port
	for i, p := range parts {
		ports, err := DecodePortDescReply(p.Raw)
		if err != nil {
			return nil, fmt.Errorf("port description reply part %d: %w", i, err)
		}
		out = append(out, ports...)
	}
	return out, nil
}

// DecodePortDescReply decodes one OFPMP_PORT_DESC multipart reply.
func DecodePortDescReply(frame []byte) ([]ofconn.Port, error) {
	if len(frame) < 16 || frame[1] != ofconn.TypeMultipartReply {
		return nil, fmt.Errorf("not a multipart reply (%d bytes)", len(frame))
	}
	if t := binary.BigEndian.Uint16(frame[8:]); t != multipartPortDesc {
		return nil, fmt.Errorf("multipart reply of type %d, not port description", t)
	}
	body := frame[16:]
	if len(body)%portDescLen != 0 {
		return nil, fmt.Errorf("port description body of %d bytes is not a whole number of ports", len(body))
	}
	out := make([]ofconn.Port, 0, len(body)/portDescLen)
	for ; len(body) > 0; body = body[portDescLen:] {
		b := body[:portDescLen]
		u := func(i int) uint32 { return binary.BigEndian.Uint32(b[i:]) }
		name, _, _ := strings.Cut(string(b[16:32]), "\x00")
		out = append(out, ofconn.Port{
			No:     u(0),
			HWAddr: net.HardwareAddr(append([]byte(nil), b[8:14]...)),
			Name:   name,
			Config: u(32), State: u(36), Curr: u(40), Advertised: u(44), Supported: u(48), Peer: u(52),
			CurrSpeed: u(56), MaxSpeed: u(60),
		})
	}
	return out, nil
}

// FlowStat is a flow read back with its counters.
type FlowStat struct {
	ofcodec.Decoded
	Packets uint64
	Bytes   uint64
}

// DumpStats reads the flows of table (openflow13.OFPTT_ALL for every table)
// whose cookie matches cookie under mask, with their packet and byte counts.
func (s *Switch) DumpStats(ctx context.Context, table uint8, cookie, mask uint64) ([]FlowStat, error) {
	req := openflow13.NewFlowStatsRequest()
	req.TableId = table
	req.Cookie, req.CookieMask = cookie&mask, mask
	mp := &openflow13.MultipartRequest{Header: openflow13.NewOfp13Header(), Type: openflow13.MultipartType_Flow, Body: req}
	mp.Header.Type = openflow13.Type_MultiPartRequest
	parts, err := s.conn.RequestMultipart(ctx, mp)
	if err != nil {
		return nil, fmt.Errorf("flow stats request: %w", err)
	}
	var out []FlowStat
	for i, p := range parts {
		fl, err := DecodeFlowStatsCounters(p.Raw)
		if err != nil {
			return nil, fmt.Errorf("flow stats reply part %d: %w", i, err)
		}
		out = append(out, fl...)
	}
	return out, nil
}

// DecodeFlowStatsCounters decodes one flow stats multipart reply, counters
// included (ofcodec decodes the flows; this adds what it leaves out).
func DecodeFlowStatsCounters(frame []byte) ([]FlowStat, error) {
	fl, _, err := ofcodec.DecodeFlowStatsReply(frame)
	if err != nil {
		return nil, err
	}
	out := make([]FlowStat, len(fl))
	body := frame[16:]
	for i := range fl {
		// DecodeFlowStatsReply checked every entry's length against body.
		n := int(binary.BigEndian.Uint16(body))
		out[i] = FlowStat{Decoded: fl[i], Packets: binary.BigEndian.Uint64(body[32:]), Bytes: binary.BigEndian.Uint64(body[40:])}
		body = body[n:]
	}
	return out, nil
}
