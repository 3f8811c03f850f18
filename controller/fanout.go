package controller

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
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
	mu sync.Mutex
	m  map[MACKey][]*memoEntry // a MAC's variants: a handful
	n  int                     // entries in m
}

func newEndpointMemo() *endpointMemo { return &endpointMemo{m: map[MACKey][]*memoEntry{}} }

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
// form, with the text of each flow's Key (what flowCache hashes).
type memoEntry struct {
	v     variant
	flows []openflow.Encoded
	keys  []string
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
// (the topology was replaced) compiles every time.
func (m *endpointMemo) compile(c *flowCache, key MACKey, e flows.Endpoint) *memoEntry {
	if m == nil {
		return newMemoEntry(c, e)
	}
	v := c.variantOf(e)
	if got := m.lookup(key, &v); got != nil {
		return got
	}
	// Compiled unlocked: a few sessions may compile the same entry at
	// once, which costs less than making the others wait.
	got := newMemoEntry(c, e)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, en := range m.m[key] {
		if en.v.equal(v) {
			return en
		}
	}
	return nil
}

func newMemoEntry(c *flowCache, e flows.Endpoint) *memoEntry {
	fl := flows.CompileEndpoints(c.t, c.h, c.alloc, []flows.Endpoint{e})
	keys := make([]string, len(fl))
	for i, f := range fl {
		keys[i] = f.Key()
	}
	return &memoEntry{flows: openflow.Encode(fl), keys: keys}
}

// memo is the endpoint memo of the topology c was compiled for, or nil
// when a reload replaced it.
func (s *session) memo(c *flowCache) *endpointMemo {
	if st := s.srv.topo(); st.t == c.t {
		return st.memo
	}
	return nil
}

// sharedFlow is one flow of an update: shared with the other switches
// of its kind, with its Key's text.
type sharedFlow struct {
	enc openflow.Encoded
	key string
}

// sharedChange is cacheChange with the flows in wire form.
type sharedChange struct {
	old, want map[uint64]sharedFlow
	owned     map[MACKey]compactEndpoint
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
	res, err := s.sw.ReconcileKnownEncoded(ctx, sortedShared(ch.want), sortedShared(ch.old))
	if err != nil {
		return cacheChange{}, res, err
	}
	out := cacheChange{old: make(map[uint64]flows.Flow, len(ch.old)), want: make(map[uint64]flows.Flow, len(ch.want)), owned: ch.owned}
	for k, f := range ch.old {
		out.old[k] = f.enc.Flow
	}
	for k, f := range ch.want {
		out.want[k] = f.enc.Flow
	}
	return out, res, nil
}

// recompileShared computes the flows of the changed endpoints (present[key]
// false: forgotten, giving none), and those they gave before (the cache's
// endpoints, compiled again). It fails with errNoFastPath where only a full
// compile knows the answer: two endpoints giving one flow, or a new flow
// taking the Key of one that stays installed.
func (c *flowCache) recompileShared(m *endpointMemo, eps map[MACKey]flows.Endpoint, present map[MACKey]bool) (sharedChange, error) {
	n := len(present)
	ch := sharedChange{old: make(map[uint64]sharedFlow, 4*n), want: make(map[uint64]sharedFlow, 4*n), owned: make(map[MACKey]compactEndpoint, n)}
	for key := range present {
		if e, ok := c.owned[key]; ok {
			en := m.compile(c, key, e.endpoint(key))
			for i := range en.flows {
				ch.old[maphash.String(c.seed, en.keys[i])] = sharedFlow{en.flows[i], en.keys[i]}
			}
		}
	}
	for key, ok := range present {
		if !ok {
			continue
		}
		e := eps[key]
		en := m.compile(c, key, e)
		for i := range en.flows {
			k := maphash.String(c.seed, en.keys[i])
			if err := c.conflict(ch, k, &en.flows[i].Flow); err != nil {
				return sharedChange{}, err
			}
			ch.want[k] = sharedFlow{en.flows[i], en.keys[i]}
		}
		ch.owned[key] = compact(e)
	}
	return ch, nil
}

// conflict is why a changed endpoint's flow f, of Key hash k, cannot be
// installed incrementally, or nil.
func (c *flowCache) conflict(ch sharedChange, k uint64, f *flows.Flow) error {
	if _, dup := ch.want[k]; dup {
		return fmt.Errorf("%w: two changed endpoints give flow %q", errNoFastPath, f.String())
	}
	if c.isStatic(k) {
		return fmt.Errorf("%w: flow %q conflicts with a static one", errNoFastPath, f.String())
	}
	if _, held := c.byKey[k]; held {
		if _, changing := ch.old[k]; !changing {
			return fmt.Errorf("%w: flow %q conflicts with one already installed", errNoFastPath, f.String())
		}
	}
	return nil
}

// sortedShared lists the flows of m by Key, so that the same change always
// sends the same flow-mods in the same order.
func sortedShared(m map[uint64]sharedFlow) []openflow.Encoded {
	fl := make([]sharedFlow, 0, len(m))
	for _, f := range m {
		fl = append(fl, f)
	}
	slices.SortFunc(fl, func(a, b sharedFlow) int { return strings.Compare(a.key, b.key) })
	out := make([]openflow.Encoded, len(fl))
	for i, f := range fl {
		out[i] = f.enc
	}
	return out
}
