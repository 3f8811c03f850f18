package openflowtest

import (
	"encoding/binary"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// handle answers one message from the controller, in order: a barrier's
// reply follows the answers to everything before it.
func (c *Conn) handle(m []byte) {
	s := c.sw
	if m[0] != ofconn.Version && m[1] != ofconn.TypeHello {
		c.fail(m, errBadVersion)
		return
	}
	if changesState(m) && c.Role() == ofcodec.RoleSlave {
		c.fail(m, errIsSlave)
		return
	}
	switch m[1] {
	case ofconn.TypeHello, ofconn.TypeEchoReply:
	case ofconn.TypeEchoRequest:
		c.write(reply(m, ofconn.TypeEchoReply, m[ofconn.HeaderLen:]))
	case ofconn.TypeFeaturesReq:
		c.write(featuresReply(m, s.dpid))
	case typeGetConfigReq, typeSetConfig, typeSetAsync:
		c.config(m)
	case ofcodec.TypeRoleRequest:
		c.roleRequest(m)
	case ofconn.TypeBarrierReq:
		s.barriers.Add(1)
		c.write(reply(m, ofconn.TypeBarrierReply, nil))
		s.acknowledge()
	case ofconn.TypeFlowMod:
		p, e := parseFlowMod(m)
		if e == errNone {
			_, e = s.applyAll([]flowMod{p})
		}
		if e != errNone {
			c.fail(m, e)
		}
	case ofconn.TypePacketOut:
		s.packetOuts.Add(1)
	case ofconn.TypeMultipartReq:
		c.multipart(m)
	case ofconn.TypeExperimenter:
		c.experimenter(m)
	default:
		c.fail(m, errBadType)
	}
}

// changesState reports whether m would change the switch, which OVS refuses
// from a slave: flow, group, port, table and meter mods, packet-outs, and
// bundle messages.
func changesState(m []byte) bool {
	switch m[1] {
	case ofconn.TypePacketOut, ofconn.TypeFlowMod, typeGroupMod, typePortMod, typeTableMod, typeMeterMod:
		return true
	case ofconn.TypeExperimenter:
		return len(m) >= 16 && binary.BigEndian.Uint32(m[8:]) == ofconn.ExperimenterONF &&
			(binary.BigEndian.Uint32(m[12:]) == bundleControl || binary.BigEndian.Uint32(m[12:]) == bundleAdd)
	}
	return false
}

// config answers GET_CONFIG and takes SET_CONFIG's miss_send_len; SET_ASYNC
// (its masks are not emulated) makes a passive connection take asynchronous
// messages, as in OVS.
func (c *Conn) config(m []byte) {
	s := c.sw
	switch m[1] {
	case typeGetConfigReq:
		s.mu.Lock()
		body := []byte{0, 0, byte(c.missSendLen >> 8), byte(c.missSendLen)}
		s.mu.Unlock()
		c.write(reply(m, typeGetConfigReply, body))
	case typeSetConfig:
		if len(m) < 12 {
			c.fail(m, errBadLen)
			return
		}
		s.mu.Lock()
		c.missSendLen = binary.BigEndian.Uint16(m[10:])
		s.mu.Unlock()
	case typeSetAsync:
		s.mu.Lock()
		if c.missSendLen == 0 {
			c.missSendLen = defaultMissSendLen
		}
		s.mu.Unlock()
	}
}

// roleRequest applies a role request as OVS 3.1 does (ofproto's
// handle_role_request): MASTER and SLAVE requests must carry a generation
// ID no older than the newest seen, which they then set; becoming MASTER
// demotes the master there was, which is told with a role status; the reply
// carries the role and the newest generation ID (all ones when none).
func (c *Conn) roleRequest(m []byte) {
	s := c.sw
	s.roleRequests.Add(1)
	req, err := ofcodec.DecodeRole(m)
	if err != nil {
		c.fail(m, errBadLen)
		return
	}
	if !req.Role.Valid() {
		c.fail(m, errRoleBadRole)
		return
	}
	var demoted []*Conn
	s.mu.Lock()
	if req.Role != ofcodec.RoleNoChange {
		if req.Role != ofcodec.RoleEqual {
			if s.electionSet && ofcodec.GenerationStale(req.GenerationID, s.election) {
				s.mu.Unlock()
				c.fail(m, errRoleStale)
				return
			}
			s.election, s.electionSet = req.GenerationID, true
		}
		if req.Role == ofcodec.RoleMaster && c.role != ofcodec.RoleMaster {
			for o := range s.conns {
				if o.role == ofcodec.RoleMaster {
					o.role = ofcodec.RoleSlave
					demoted = append(demoted, o)
				}
			}
		}
		c.role = req.Role
	}
	rep := ofcodec.RoleMessage{Type: ofcodec.TypeRoleReply, Xid: req.Xid, Role: c.role, GenerationID: ofcodec.GenerationIDNone}
	if s.electionSet {
		rep.GenerationID = s.election
	}
	s.mu.Unlock()
	b, _ := rep.MarshalBinary() // a role reply always encodes
	c.write(b)
	status := ofcodec.EncodeRoleStatus(ofcodec.RoleStatus{Role: ofcodec.RoleSlave, Reason: ofcodec.RoleStatusMasterRequest, GenerationID: rep.GenerationID}, 0)
	for _, o := range demoted {
		o.send(status)
	}
}

// multipart answers flow-stats and port-description requests.
func (c *Conn) multipart(m []byte) {
	if len(m) < 16 {
		c.fail(m, errBadLen)
		return
	}
	switch binary.BigEndian.Uint16(m[8:]) {
	case mpFlow:
		c.flowStats(m)
	case mpPortDesc:
		s := c.sw
		ports := s.Ports()
		entries := make([][]byte, len(ports))
		for i, p := range ports {
			entries[i] = portDesc(p, s.dpid)
		}
		c.multipartReply(m, mpPortDesc, entries)
	default:
		c.fail(m, errBadMultipart)
	}
}

// flowStats answers a flow stats request for a table (or all) and a cookie
// under a mask; match and out_port filters are not emulated.
func (c *Conn) flowStats(m []byte) {
	if len(m) < 56 {
		c.fail(m, errBadLen)
		return
	}
	table := m[16]
	outPort, outGroup := binary.BigEndian.Uint32(m[20:]), binary.BigEndian.Uint32(m[24:])
	cookie, mask := binary.BigEndian.Uint64(m[32:]), binary.BigEndian.Uint64(m[40:])
	if outPort != portAny || outGroup != portAny || binary.BigEndian.Uint16(m[50:]) > 4 {
		c.fail(m, errEPERM)
		return
	}
	s := c.sw
	var entries [][]byte
	s.mu.Lock()
	for _, e := range s.table {
		// Entries are never changed in place: sharing them is safe.
		if (table == tableAll || e.table == table) && e.cookie&mask == cookie&mask {
			entries = append(entries, e.stats)
		}
	}
	s.mu.Unlock()
	c.multipartReply(m, mpFlow, entries)
}

// multipartReply sends entries in as many parts as it takes to keep each
// under OpenFlow's 64 KiB, all but the last flagged MORE.
func (c *Conn) multipartReply(req []byte, typ uint16, entries [][]byte) {
	part := func(body []byte, more bool) {
		b := header(ofconn.TypeMultipartReply, 16+len(body), xidOf(req))
		binary.BigEndian.PutUint16(b[8:], typ)
		if more {
			binary.BigEndian.PutUint16(b[10:], ofconn.MultipartReplyMore)
		}
		copy(b[16:], body)
		c.write(b)
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
