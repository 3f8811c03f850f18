package controller

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The fan-out of an incremental update: one MAC's change goes to every
// br-tun of its network, a thousand of them, each on its session's
// goroutine. What a switch gets from one endpoint depends on the endpoint
// and on three things of the switch's alone: whether the endpoint is on
// it, its local VLAN of the network and its tunnel port to the endpoint's
// host. Allocate numbers every host alike, so a MAC has a couple of
// variants however many switches there are: each is compiled, its Keys
// rendered and its flow-mods encoded once (endpointMemo), and the switches
// of that variant share those bytes. A switch numbered otherwise gets a
// variant of its own, still compiled once for every switch like it: the
// content cookie hashes the VLAN and port, so bytes patched per switch
// would need their cookie recomputed anyway.

// memoMax bounds the memo: past it, it starts over (each entry holds a few
// flows; a MAC's change adds a couple of entries).
const memoMax = 4096

// endpointMemo holds flows.CompileEndpoints of single endpoints for one
// topology, encoded, by everything the result depends on. It is safe for
// concurrent use: every session's goroutine reads and fills it; an entry
// never changes once stored.
type endpointMemo struct {
	// seed hashes the flows' Keys of every entry, and of every cache
	// built for the topology: a switch then needs no hashing of its own.
	seed    maphash.Seed
	changes changesMemo

	mu sync.RWMutex
	m  map[MACKey][]*memoEntry // a MAC's variants: a handful
	n  int                     // entries in m
}

func newEndpointMemo() *endpointMemo {
	return &endpointMemo{m: map[MACKey][]*memoEntry{}, seed: maphash.MakeSeed()}
}

// variant is an endpoint less its MACKey, and what a switch adds to it
// (CompileEndpoints reads nothing else of the host and its allocation):
// whether the endpoint is local, the network's local VLAN, the tunnel port
// to its host.
type variant struct {
	host    string
	ips     []netip.Addr
	learned bool
	local   bool
	vlan    uint16
	hasVLAN bool
	port    uint32 // 0 for a local endpoint, which no tunnel port changes
	hasPort bool
}

func (v *variant) equal(o *variant) bool {
	return v.host == o.host && v.learned == o.learned && v.local == o.local && v.vlan == o.vlan &&
		v.hasVLAN == o.hasVLAN && v.port == o.port && v.hasPort == o.hasPort && slices.Equal(v.ips, o.ips)
}

// memoEntry is the flows one endpoint gives one kind of switch, in wire
// form, with the text of each flow's Key and its hash (what flowCache
// holds), and the flows again in the order of their Keys, as an update
// sends them.
type memoEntry struct {
	v      variant
	flows  []openflow.Encoded
	keys   []string
	hashes []uint64 // by the seed the entry was made with
	sorted []openflow.Encoded
}

// variantOf is e's variant for the switch of c.
func (c *flowCache) variantOf(e flows.Endpoint) variant {
	v := variant{host: e.Host, ips: e.IPs, learned: e.Learned, local: e.Host == c.h.Name}
	v.vlan, v.hasVLAN = c.alloc.LocalVLAN[e.VNI]
	if !v.local {
		v.port, v.hasPort = c.alloc.TunnelOFPort[e.Host]
	}
	return v
}

// compile is CompileEndpoints of e alone for the switch of c, from the memo
// when another switch of the same kind compiled it already. A nil memo
// (the topology was replaced) compiles every time, hashing with c's seed.
func (m *endpointMemo) compile(c *flowCache, key MACKey, e flows.Endpoint) *memoEntry {
	if m == nil {
		return newMemoEntry(c, e, c.seed)
	}
	v := c.variantOf(e)
	if got := m.lookup(key, &v); got != nil {
		return got
	}
	// Compiled unlocked: a few sessions may compile the same entry at
	// once, which costs less than making the others wait.
	got := newMemoEntry(c, e, m.seed)
	got.v = v
	got.v.ips = slices.Clone(e.IPs) // the entry must not share a caller's slice
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n >= memoMax {
		clear(m.m)
		m.n = 0
	}
	m.m[key] = append(m.m[key], got)
	m.n++
	return got
}

func (m *endpointMemo) lookup(key MACKey, v *variant) *memoEntry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, en := range m.m[key] {
		if en.v.equal(v) {
			return en
		}
	}
	return nil
}

func newMemoEntry(c *flowCache, e flows.Endpoint, seed maphash.Seed) *memoEntry {
	fl := flows.CompileEndpoints(c.t, c.h, c.alloc, []flows.Endpoint{e})
	en := &memoEntry{flows: openflow.Encode(fl), keys: make([]string, len(fl)), hashes: make([]uint64, len(fl))}
	for i, f := range fl {
		en.keys[i] = f.Key()
		en.hashes[i] = maphash.String(seed, en.keys[i])
	}
	order := make([]int, len(fl))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(en.keys[a], en.keys[b]) })
	en.sorted = make([]openflow.Encoded, len(fl))
	for i, j := range order {
		en.sorted[i] = en.flows[j]
	}
	return en
}

// memo is the endpoint memo of the topology c was compiled for, or nil
// when a reload replaced it or c hashes with another seed.
func (s *session) memo(c *flowCache) *endpointMemo {
	if m := s.memoFor(c.t); m != nil && m.seed == c.seed {
		return m
	}
	return nil
}

// memoFor is the endpoint memo of topology t, or nil when a reload
// replaced it.
func (s *session) memoFor(t *topology.Topology) *endpointMemo {
	if st := s.srv.topo(); st.t == t {
		return st.memo
	}
	return nil
}

// changesMemo is the last answer of Knowledge.ChangesSince: after a
// change, every switch asks the same question (the changes since the
// version they all hold), and a thousand copies of the answer, each built
// under the knowledge's lock, cost more than the rest of the update. The
// answer is shared read-only.
type changesMemo struct {
	mu       sync.Mutex
	valid    bool
	from, to uint64
	eps      map[MACKey]flows.Endpoint
	present  map[MACKey]bool
}

// since is k.ChangesSince(from), from the memo when it answered the same
// question at the current version.
func (cm *changesMemo) since(k *Knowledge, from uint64) (eps map[MACKey]flows.Endpoint, present map[MACKey]bool, version uint64, complete bool) {
	cur := k.Version()
	cm.mu.Lock()
	if cm.valid && cm.from == from && cm.to == cur {
		eps, present = cm.eps, cm.present
		cm.mu.Unlock()
		return eps, present, cur, true
	}
	cm.mu.Unlock()
	eps, present, version, complete = k.ChangesSince(from)
	if complete && len(present) > 0 {
		cm.mu.Lock()
		cm.valid, cm.from, cm.to, cm.eps, cm.present = true, from, version, eps, present
		cm.mu.Unlock()
	}
	return eps, present, version, complete
}

// changesSince is the knowledge's changes since c's version, shared with
// the other switches asking the same (changesMemo).
func (s *session) changesSince(c *flowCache) (eps map[MACKey]flows.Endpoint, present map[MACKey]bool, version uint64, complete bool) {
	if m := s.memoFor(c.t); m != nil {
		return m.changes.since(s.srv.know, c.version)
	}
	return s.srv.know.ChangesSince(c.version)
}

// sharedChange is an update in wire form, in the order of the flows' Keys
// (shared with the other switches of its kind where it can be), and what
// the cache must record once the switch holds it.
type sharedChange struct {
	want, old []openflow.Encoded
	cacheChange
}

// pushShared computes the changed endpoints' flows (recompileShared) and
// has openflow.ReconcileKnownEncoded diff them against what the cache says
// they were and send the difference; the change is what the cache must
// record once the switch holds it.
func (s *session) pushShared(ctx context.Context, c *flowCache, eps map[MACKey]flows.Endpoint, present map[MACKey]bool) (cacheChange, openflow.Result, error) {
	ch, err := c.recompileShared(s.memo(c), eps, present)
	if err != nil {
		return cacheChange{}, openflow.Result{}, err
	}
	res, err := s.sw.ReconcileKnownEncoded(ctx, ch.want, ch.old)
	if err != nil {
		return cacheChange{}, res, err
	}
	return ch.cacheChange, res, nil
}

// recompileShared computes the flows of the changed endpoints (present[key]
// false: forgotten, giving none), and those they gave before (the cache's
// endpoints, compiled again). It fails with errNoFastPath where only a full
// compile knows the answer: two endpoints giving one flow, or a new flow
// taking the Key of one that stays installed. m must hash with c's seed
// (or be nil).
func (c *flowCache) recompileShared(m *endpointMemo, eps map[MACKey]flows.Endpoint, present map[MACKey]bool) (sharedChange, error) {
	var olds, wants []*memoEntry
	var ch sharedChange
	for key, ok := range present {
		if e, held := c.owned[key]; held {
			en := m.compile(c, key, e.endpoint(key))
			olds = append(olds, en)
			ch.cacheChange.old = append(ch.cacheChange.old, en.hashes...)
		}
		if ok {
			e := eps[key]
			en := m.compile(c, key, e)
			wants = append(wants, en)
			ch.cacheChange.want = append(ch.cacheChange.want, en.hashes...)
			ch.owned = append(ch.owned, ownedEndpoint{key, compact(e)})
		}
	}
	if err := c.conflicts(&ch.cacheChange, wants); err != nil {
		return sharedChange{}, err
	}
	ch.want, ch.old = mergeSorted(wants), mergeSorted(olds)
	return ch, nil
}

// conflicts is why a flow of the changed endpoints (wants, whose Key hashes
// ch.want lists in the same order) cannot be installed incrementally, or
// nil.
func (c *flowCache) conflicts(ch *cacheChange, wants []*memoEntry) error {
	in := newHashSet(ch.old)
	seen := newHashSet(nil)
	i := 0
	for _, en := range wants {
		for j := range en.hashes {
			k, f := ch.want[i], &en.flows[j].Flow
			i++
			if seen.has(k) {
				return fmt.Errorf("%w: two changed endpoints give flow %q", errNoFastPath, f.String())
			}
			seen.add(k)
			if c.isStatic(k) {
				return fmt.Errorf("%w: flow %q conflicts with a static one", errNoFastPath, f.String())
			}
			if _, held := c.byKey[k]; held && !in.has(k) {
				return fmt.Errorf("%w: flow %q conflicts with one already installed", errNoFastPath, f.String())
			}
		}
	}
	return nil
}

// hashSet is a set of Key hashes: a slice while small (an update of one
// MAC has a handful of flows), a map past that.
type hashSet struct {
	l []uint64
	m map[uint64]struct{}
}

const hashSetSmall = 32

func newHashSet(l []uint64) *hashSet {
	s := &hashSet{}
	for _, k := range l {
		s.add(k)
	}
	return s
}

func (s *hashSet) add(k uint64) {
	if s.m == nil && len(s.l) < hashSetSmall {
		s.l = append(s.l, k)
		return
	}
	if s.m == nil {
		s.m = make(map[uint64]struct{}, 2*hashSetSmall)
		for _, x := range s.l {
			s.m[x] = struct{}{}
		}
	}
	s.m[k] = struct{}{}
}

func (s *hashSet) has(k uint64) bool {
	if s.m != nil {
		_, ok := s.m[k]
		return ok
	}
	return slices.Contains(s.l, k)
}

// mergeSorted is the flows of ens in the order of their Keys, so that the
// same change always sends the same flow-mods in the same order. One
// entry's are shared as they are.
func mergeSorted(ens []*memoEntry) []openflow.Encoded {
	switch len(ens) {
	case 0:
		return nil
	case 1:
		return ens[0].sorted
	}
	type keyed struct {
		key string
		enc *openflow.Encoded
	}
	var all []keyed
	for _, en := range ens {
		for i := range en.flows {
			all = append(all, keyed{en.keys[i], &en.flows[i]})
		}
	}
	slices.SortFunc(all, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := make([]openflow.Encoded, len(all))
	for i, f := range all {
		out[i] = *f.enc
	}
	return out
}

// switchMetrics is one switch's series of the metrics every update
// touches, looked up once when its session starts rather than by label
// values (hashed, under the vector's lock) on each of a thousand switches'
// updates. None of them is ever deleted while the session lives.
type switchMetrics struct {
	flowMods, bundles       prometheus.Counter
	reconciles, convergence prometheus.Observer
}

func newSwitchMetrics(m *metrics, id switchID) switchMetrics {
	return switchMetrics{
		flowMods:    m.flowMods.WithLabelValues(id.host.Name, id.bridge),
		bundles:     m.bundles.WithLabelValues(id.host.Name, id.bridge),
		reconciles:  m.reconciles.WithLabelValues(id.bridge),
		convergence: m.convergence.WithLabelValues(id.bridge),
	}
}
