package flows

// Cookies mark ownership. The top 16 bits say who owns a flow; for flows the
// compiler produces the low 48 bits are a hash of the flow's own text, so the
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

// WithContentCookie returns f with Cookie = owner | hash of its text.
func WithContentCookie(f Flow, owner uint64) Flow {
	f.Cookie = 0
	f.Cookie = owner&CookieOwnerMask | fnv64a(f.String())&^CookieOwnerMask
	return f
}

// fnv64a is FNV-1a of s, as hash/fnv computes it, without the allocations
// of a hash.Hash and of s as bytes: Compile hashes every flow it makes.
func fnv64a(s string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
