package controller

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// errNoFastPath: the incremental update cannot be sure to give what a full
// reconcile would (no cache, the knowledge log no longer reaches back, two
// endpoints claim one flow): reconcile in full instead.
var errNoFastPath = errors.New("incremental update not possible")

// flowCache is what a br-tun switch holds in the reconciled cookie range
// after the last successful reconcile, kept small because a thousand
// switches each hold one: not the flows (a few hundred bytes each), but the
// endpoints they were compiled from, which compile again to exactly those
// flows (the topology, host and allocation are kept, shared), and a 64-bit
// hash of each flow's Key, which is all conflict checks need (a collision
// only makes a conflict seem to be, and a full reconcile run). Only the
// session's goroutine uses it.
type flowCache struct {
	t       *topology.Topology
	h       *topology.Host
	alloc   topology.Allocation
	version uint64 // the knowledge version it reflects
	seed    maphash.Seed
	static  []uint64                   // the static flows' Key hashes, sorted
	byKey   map[uint64]struct{}        // the endpoints' flows' Key hashes
	owned   map[MACKey]compactEndpoint // each endpoint as its flows were compiled
}

// compactEndpoint is a flows.Endpoint less what its MACKey says.
type compactEndpoint struct {
	host    string
	ips     []netip.Addr
	learned bool
}

func compact(e flows.Endpoint) compactEndpoint {
	return compactEndpoint{host: e.Host, ips: e.IPs, learned: e.Learned}
}

// endpoint is the flows.Endpoint key and e stand for.
func (e compactEndpoint) endpoint(key MACKey) flows.Endpoint {
	return flows.Endpoint{VNI: key.VNI, MAC: net.HardwareAddr(key.MAC[:]), Host: e.host, IPs: e.ips, Learned: e.learned}
}

func (c *flowCache) hash(f flows.Flow) uint64 { return maphash.String(c.seed, f.Key()) }

// isStatic reports whether a static flow has the Key hash k.
func (c *flowCache) isStatic(k uint64) bool {
	_, ok := slices.BinarySearch(c.static, k)
	return ok
}

// size is how many flows the cache says the switch holds.
func (c *flowCache) size() int { return len(c.static) + len(c.byKey) }

// buildCache compiles the endpoints one by one, attributing each flow,
// through the memo m of t when there is one (nil: compiled here; the
// switches numbered alike share what is compiled, and the cache hashes
// with m's seed, so that updates need no hashing per switch). ok is false
// when two endpoints (or an endpoint and the topology) give flows of one
// Key: CompileEndpoints then keeps the first, which only a full compile
// reproduces. Without a conflict, the union of eps' flows (in flows.Sort
// order) is exactly flows.CompileEndpoints(t, h, alloc, eps).
func buildCache(m *endpointMemo, t *topology.Topology, h *topology.Host, alloc topology.Allocation, static []flows.Flow, eps []flows.Endpoint, version uint64) (c *flowCache, endpointFlows []flows.Flow, ok bool) {
	seed := maphash.MakeSeed()
	if m != nil {
		seed = m.seed
	}
	c = &flowCache{t: t, h: h, alloc: alloc, version: version, seed: seed,
		static: make([]uint64, len(static)),
		byKey:  make(map[uint64]struct{}, 3*len(eps)), owned: make(map[MACKey]compactEndpoint, len(eps))}
	for i, f := range static {
		c.static[i] = c.hash(f)
	}
	slices.Sort(c.static)
	if len(slices.Compact(slices.Clone(c.static))) != len(c.static) {
		return nil, nil, false
	}
	// So many endpoints would only churn the memo (it starts over past
	// memoMax): compile them here, hashing alike.
	memo := m
	if len(eps) > memoMax/4 {
		memo = nil
	}
	for _, e := range eps {
		key, valid := KeyOf(e.VNI, e.MAC)
		if !valid {
			return nil, nil, false
		}
		if _, dup := c.owned[key]; dup {
			return nil, nil, false
		}
		fl, hashes := c.endpointFlows(memo, key, e)
		for i, k := range hashes {
			if _, dup := c.byKey[k]; dup || c.isStatic(k) {
				return nil, nil, false
			}
			c.byKey[k] = struct{}{}
			endpointFlows = append(endpointFlows, fl(i))
		}
		c.owned[key] = compact(e)
	}
	flows.Sort(endpointFlows)
	return c, endpointFlows, true
}

// endpointFlows is e's flows (fl(i), of Key hash hashes[i]) for c's
// switch: from memo m, or compiled here when m is nil.
func (c *flowCache) endpointFlows(m *endpointMemo, key MACKey, e flows.Endpoint) (fl func(int) flows.Flow, hashes []uint64) {
	if m != nil {
		en := m.compile(c, key, e)
		return func(i int) flows.Flow { return en.flows[i].Flow }, en.hashes
	}
	compiled := flows.CompileEndpoints(c.t, c.h, c.alloc, []flows.Endpoint{e})
	hashes = make([]uint64, len(compiled))
	for i, f := range compiled {
		hashes[i] = c.hash(f)
	}
	return func(i int) flows.Flow { return compiled[i] }, hashes
}

// fastResult says what an incremental update did.
type fastResult struct {
	openflow.Result
	version uint64
	flows   int // flows now held in the reconciled range
}

// incremental brings br-tun up to date with what changed in the knowledge
// since the cache's version, touching only the changed endpoints' flows:
// no dump, no compile of the host, no allocation read. It recomputes each
// changed endpoint's flows (once for all switches alike, fanout.go) and has
// openflow.ReconcileKnownEncoded diff them against what the cache says they
// were (the same diff as a full reconcile's) and send the difference in one
// round trip (strict deletes with the exact cookie, then adds).
// errNoFastPath (or any error) means: reconcile in full.
func (s *session) incremental(ctx context.Context) (fastResult, error) {
	c := s.cache
	if c == nil {
		return fastResult{}, errNoFastPath
	}
	start := time.Now()
	eps, present, version, complete := s.changesSince(c)
	if !complete {
		return fastResult{}, fmt.Errorf("%w: the knowledge log does not reach back to version %d", errNoFastPath, c.version)
	}
	if len(present) == 0 {
		c.version = version
		return fastResult{version: version, flows: c.size(), Result: openflow.Result{Duration: time.Since(start)}}, nil
	}
	if t, h := s.topo(); t != c.t || h != c.h {
		return fastResult{}, fmt.Errorf("%w: the topology changed", errNoFastPath)
	}
	ch, res, err := s.pushShared(ctx, c, eps, present)
	if err != nil {
		return fastResult{}, err
	}
	// The switch now holds the new flows.
	c.apply(ch, present, version)
	res.Duration = time.Since(start)
	return fastResult{Result: res, version: version, flows: c.size()}, nil
}

// cacheChange is what an incremental update replaces in the cache: the Key
// hashes of the flows the changed endpoints held and of the ones they give
// now, and the present changed endpoints.
type cacheChange struct {
	old, want []uint64
	owned     []ownedEndpoint
}

// ownedEndpoint is an endpoint as the cache keeps it, with its key.
type ownedEndpoint struct {
	key MACKey
	e   compactEndpoint
}

// apply records in the cache that the switch holds ch: the changed
// endpoints' old flows go, their new ones come.
func (c *flowCache) apply(ch cacheChange, present map[MACKey]bool, version uint64) {
	for _, k := range ch.old {
		delete(c.byKey, k)
	}
	for key := range present {
		delete(c.owned, key)
	}
	for _, k := range ch.want {
		c.byKey[k] = struct{}{}
	}
	for _, o := range ch.owned {
		c.owned[o.key] = o.e
	}
	c.version = version
}
