package flows

import "github.com/cespare/xxhash/v2"

// Cookies mark ownership. The top 16 bits say who owns a flow; for flows the
// compiler produces the low 48 bits are a hash of the flow's own contents, so the
// cookie changes exactly when the flow does. A reconcile therefore recognises
// every flow that is already right from its cookie alone, whoever installed it
// and however often the controller restarted; no generation counter is needed.
const (
	CookieOwnerMask uint64 = 0xffff << 48
	// CookieOwned marks flows compiled by ovs-vxctl (reconciled by diff).
	CookieOwned uint64 = 0x7678 << 48
	// CookieLearned marks table 20 entries created by learn(); the low bits
	// hold the VNI. Reconcile never touches them: they age out by themselves.
	CookieLearned uint64 = 0x7679 << 48
	// CookieController marks table 20 entries the controller installs for MACs
	// it knows; the low bits hold the VNI.
	CookieController uint64 = 0x767a << 48
)

// WithContentCookie returns f with Cookie = owner | a hash of its contents
// (its binary form, see binary.go; the cookie itself aside).
func WithContentCookie(f Flow, owner uint64) Flow {
	var buf [256]byte
	f.Cookie = contentCookie(appendBinary(buf[:0], &f), owner)
	return f
}

// setContentCookies gives every flow of fl its content cookie, with one
// scratch buffer for all.
func setContentCookies(fl []Flow, owner uint64) {
	buf := make([]byte, 0, 512)
	for i := range fl {
		buf = appendBinary(buf[:0], &fl[i])
		fl[i].Cookie = contentCookie(buf, owner)
	}
}

// contentCookie is owner | the hash of a flow's binary form bin.
func contentCookie(bin []byte, owner uint64) uint64 {
	return owner&CookieOwnerMask | contentHash(bin)&^CookieOwnerMask
}

// contentHash is XXH64 (seed 0) of b: a published function, so cookies are
// the same in every process and version that encodes flows alike; 8 bytes
// a step (FNV-1a, a byte a step, was a tenth of a compile).
func contentHash(b []byte) uint64 { return xxhash.Sum64(b) }
