package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/contiv/libOpenflow/util"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// errNoFastPath: the incremental update cannot be sure to give what a full
// reconcile would (no cache, the knowledge log no longer reaches back, two
// endpoints claim one flow): reconcile in full instead.
var errNoFastPath = errors.New("incremental update not possible")

// cachedFlow is one flow a br-tun switch holds in the reconciled cookie
// range, and who it comes from.
type cachedFlow struct {
	flow   flows.Flow // zero for static ones
	owner  MACKey
	static bool // compiled from the topology (flows.Compile), no endpoint's
}

// flowCache is what a br-tun switch holds in the reconciled cookie range
// after the last successful reconcile: the desired flows, by Key, each
// attributed to the endpoint whose flows.CompileEndpoints gave it. Only the
// session's goroutine uses it.
type flowCache struct {
	alloc   topology.Allocation
	version uint64 // the knowledge version it reflects
	byKey   map[string]cachedFlow
	owned   map[MACKey][]string // the Keys of each endpoint's flows
}

// buildCache compiles the endpoints one by one, attributing each flow. ok
// is false when two endpoints (or an endpoint and the topology) give flows
// of one Key: CompileEndpoints then keeps the first, which only a full
// compile reproduces. Without a conflict, the union of eps' flows (in
// flows.Sort order) is exactly flows.CompileEndpoints(t, h, alloc, eps).
func buildCache(t *topology.Topology, h *topology.Host, alloc topology.Allocation, static []flows.Flow, eps []flows.Endpoint, version uint64) (c *flowCache, endpointFlows []flows.Flow, ok bool) {
	c = &flowCache{alloc: alloc, version: version, byKey: make(map[string]cachedFlow, len(static)+3*len(eps)), owned: make(map[MACKey][]string, len(eps))}
	for _, f := range static {
		k := f.Key()
		if _, dup := c.byKey[k]; dup {
			return nil, nil, false
		}
		// Only the Key matters (conflicts): holding the flow would only
		// hold memory, a thousand switches' worth.
		c.byKey[k] = cachedFlow{static: true}
	}
	for _, e := range eps {
		key, valid := KeyOf(e.VNI, e.MAC)
		if !valid {
			return nil, nil, false
		}
		if _, dup := c.owned[key]; dup {
			return nil, nil, false
		}
		fl := flows.CompileEndpoints(t, h, alloc, []flows.Endpoint{e})
		keys := make([]string, len(fl))
		for i, f := range fl {
			k := f.Key()
			if _, dup := c.byKey[k]; dup {
				return nil, nil, false
			}
			c.byKey[k] = cachedFlow{flow: f, owner: key}
			keys[i] = k
		}
		c.owned[key] = keys
		endpointFlows = append(endpointFlows, fl...)
	}
	flows.Sort(endpointFlows)
	return c, endpointFlows, true
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
// changed endpoint's flows, diffs them against the cache and sends the
// difference in one bundle (strict deletes with the exact cookie, then
// adds). errNoFastPath (or any error) means: reconcile in full.
func (s *session) incremental(ctx context.Context) (fastResult, error) {
	c := s.cache
	if c == nil {
		return fastResult{}, errNoFastPath
	}
	start := time.Now()
	eps, present, version, complete := s.srv.know.ChangesSince(c.version)
	if !complete {
		return fastResult{}, fmt.Errorf("%w: the knowledge log does not reach back to version %d", errNoFastPath, c.version)
	}
	if len(present) == 0 {
		c.version = version
		return fastResult{version: version, flows: len(c.byKey), Result: openflow.Result{Duration: time.Since(start)}}, nil
	}
	t, h := s.srv.t, s.id.host
	// What the changed endpoints held, and what they give now.
	old := map[string]cachedFlow{}
	for key := range present {
		for _, k := range c.owned[key] {
			old[k] = c.byKey[k]
		}
	}
	type newFlow struct {
		flow  flows.Flow
		owner MACKey
	}
	want := map[string]newFlow{}
	newOwned := map[MACKey][]string{}
	for key, ok := range present {
		if !ok {
			continue
		}
		fl := flows.CompileEndpoints(t, h, c.alloc, []flows.Endpoint{eps[key]})
		keys := make([]string, len(fl))
		for i, f := range fl {
			k := f.Key()
			if _, dup := want[k]; dup {
				return fastResult{}, fmt.Errorf("%w: two changed endpoints give flow %q", errNoFastPath, f.String())
			}
			if cf, held := c.byKey[k]; held {
				if _, changing := old[k]; !changing || cf.static {
					return fastResult{}, fmt.Errorf("%w: flow %q conflicts with one already installed", errNoFastPath, f.String())
				}
			}
			want[k] = newFlow{flow: f, owner: key}
			keys[i] = k
		}
		newOwned[key] = keys
	}
	var mods []util.Message
	var what []string
	res := openflow.Result{}
	for k, cf := range old {
		if _, kept := want[k]; kept {
			continue
		}
		fm, err := ofcodec.FlowMod(cf.flow, ofcodec.CommandDeleteStrict)
		if err != nil {
			return fastResult{}, err
		}
		mods, what = append(mods, fm), append(what, "deleting "+cf.flow.String())
		res.Deleted++
	}
	for k, nf := range want {
		verb := "adding "
		if cf, held := old[k]; held {
			// The content cookie changes exactly when the flow does;
			// the text settles a (most unlikely) hash collision.
			if cf.flow.Cookie == nf.flow.Cookie && cf.flow.String() == nf.flow.String() {
				continue
			}
			verb = "modifying "
			res.Modified++
		} else {
			res.Added++
		}
		// An add replaces the flow of the same Key, cookie included.
		fm, err := ofcodec.FlowMod(nf.flow, ofcodec.CommandAdd)
		if err != nil {
			return fastResult{}, err
		}
		mods, what = append(mods, fm), append(what, verb+nf.flow.String())
	}
	if len(mods) > 0 {
		if err := s.sw.Bundle(ctx, mods, what); err != nil {
			return fastResult{}, err
		}
		res.FlowMods = len(mods)
	}
	// The switch now holds the new flows: update the cache.
	for k := range old {
		delete(c.byKey, k)
	}
	for key := range present {
		delete(c.owned, key)
	}
	for k, nf := range want {
		c.byKey[k] = cachedFlow{flow: nf.flow, owner: nf.owner}
	}
	for key, keys := range newOwned {
		c.owned[key] = keys
	}
	c.version = version
	res.Duration = time.Since(start)
	return fastResult{Result: res, version: version, flows: len(c.byKey)}, nil
}
