package openflowtest

import (
	"encoding/binary"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// ONF bundle messages (experimenter types) and control types.
const (
	bundleControl = 2300
	bundleAdd     = 2301

	bundleOpen    = 0
	bundleClose   = 2
	bundleCommit  = 4
	bundleDiscard = 6
)

// bundle is an open (or closed, not yet committed) bundle of a connection.
type bundle struct {
	flags  uint16
	closed bool
	mods   []flowMod
	msgs   [][]byte // the added messages, for the error of a failed commit
}

// experimenter handles ONF bundles; anything else is refused.
func (c *Conn) experimenter(m []byte) {
	switch {
	case len(m) < 16:
		c.fail(m, errBadLen)
	case binary.BigEndian.Uint32(m[8:]) != ofconn.ExperimenterONF:
		c.fail(m, errBadExp)
	case binary.BigEndian.Uint32(m[12:]) == bundleControl:
		c.bundleControl(m)
	case binary.BigEndian.Uint32(m[12:]) == bundleAdd:
		c.bundleAdd(m)
	default:
		c.fail(m, errBadExpType)
	}
}

// bundleControl opens, closes, commits or discards a bundle as OVS's
// ofp-bundle does: a bundle that is misused (opened twice, closed twice,
// other flags) is dropped along with the error.
func (c *Conn) bundleControl(m []byte) {
	if len(m) < 24 {
		c.fail(m, errBadLen)
		return
	}
	id, typ, flags := binary.BigEndian.Uint32(m[16:]), binary.BigEndian.Uint16(m[20:]), binary.BigEndian.Uint16(m[22:])
	if typ != bundleOpen && typ != bundleClose && typ != bundleCommit && typ != bundleDiscard {
		c.fail(m, errBundleBadType)
		return
	}
	b := c.bundles[id]
	var e ofError
	switch {
	case typ == bundleOpen && b != nil:
		e = errBundleBadID
	case typ == bundleOpen:
		c.bundles[id] = &bundle{flags: flags}
	case b == nil:
		e = errBundleBadID
	case typ == bundleClose && b.closed:
		e = errBundleClosed
	case (typ == bundleClose || typ == bundleCommit) && b.flags != flags:
		e = errBundleBadFlags
	case typ == bundleClose:
		b.closed = true
	case typ == bundleCommit:
		e = c.commit(b)
	}
	if e != errNone || typ == bundleCommit || typ == bundleDiscard {
		delete(c.bundles, id)
	}
	if e != errNone {
		c.fail(m, e)
		return
	}
	r := reply(m, ofconn.TypeExperimenter, m[ofconn.HeaderLen:24])
	binary.BigEndian.PutUint16(r[20:], typ+1)
	binary.BigEndian.PutUint16(r[22:], 0)
	c.write(r)
	if typ == bundleCommit {
		c.sw.acknowledge()
	}
}

// commit applies b's flow-mods, all or none. When one is refused the
// switch answers it (with its own xid) and the commit fails, as in OVS.
func (c *Conn) commit(b *bundle) ofError {
	if i, e := c.sw.applyAll(b.mods); e != errNone {
		c.fail(b.msgs[i], e)
		return errBundleFailed
	}
	c.sw.bundles.Add(1)
	return errNone
}

// bundleAdd checks a flow-mod and adds it to its bundle (opening the bundle
// if needed, as OVS does). A refused add leaves the bundle as it was.
func (c *Conn) bundleAdd(m []byte) {
	if len(m) < 24+ofconn.HeaderLen {
		c.fail(m, errBadLen)
		return
	}
	id, flags, inner := binary.BigEndian.Uint32(m[16:]), binary.BigEndian.Uint16(m[22:]), m[24:]
	var p flowMod
	var e ofError
	switch {
	case int(binary.BigEndian.Uint16(inner[2:])) != len(inner):
		e = errBundleMsgLen
	case xidOf(inner) != xidOf(m):
		e = errBundleMsgXID
	case inner[1] != ofconn.TypeFlowMod:
		e = errBundleMsgUnsup
	default:
		p, e = parseFlowMod(inner)
	}
	if e != errNone {
		c.fail(m, e)
		return
	}
	b := c.bundles[id]
	switch {
	case b == nil:
		b = &bundle{flags: flags}
		c.bundles[id] = b
	case b.closed:
		e = errBundleClosed
	case b.flags != flags:
		e = errBundleBadFlags
	}
	if e != errNone {
		delete(c.bundles, id)
		c.fail(m, e)
		return
	}
	b.mods, b.msgs = append(b.mods, p), append(b.msgs, inner)
}
