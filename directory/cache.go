package directory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	libmodel "github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// handler applies session s's monitor events to the caches. Updates are
// idempotent (the same row twice changes nothing and calls nothing), so
// the initial rows of a new session and install's sweep can overlap.
func (c *Client) handler(s *session) cache.EventHandler {
	put := func(m libmodel.Model) {
		switch r := m.(type) {
		case *model.Endpoint:
			c.put(s, fromModel(r))
		case *model.Switch:
			c.putSwitch(s, r)
		case *model.Replica:
			c.putReplica(s, r)
		}
	}
	return &cache.EventHandlerFuncs{
		AddFunc:    func(_ string, m libmodel.Model) { put(m) },
		UpdateFunc: func(_ string, _, m libmodel.Model) { put(m) },
		DeleteFunc: func(_ string, m libmodel.Model) {
			switch r := m.(type) {
			case *model.Endpoint:
				c.remove(s, fromModel(r).Key)
			case *model.Switch:
				c.removeSwitch(s, r)
			case *model.Replica:
				c.removeReplica(s, r)
			}
		},
	}
}

// Endpoints returns a copy of the cached Endpoint rows, sorted by VNI and
// MAC (seeding a restarted controller).
func (c *Client) Endpoints() []Endpoint {
	c.mu.Lock()
	out := make([]Endpoint, 0, len(c.cache))
	for _, e := range c.cache {
		e.IPs = slices.Clone(e.IPs)
		out = append(out, e)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Endpoint) int {
		if a.VNI != b.VNI {
			return cmp.Compare(a.VNI, b.VNI)
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return out
}

// put records e unless s is dead (a late event of a closed connection).
func (c *Client) put(s *session, e Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.isDead() {
		return
	}
	c.putLocked(e)
}

func (c *Client) putLocked(e Endpoint) {
	old, had := c.cache[e.Key]
	if had && old.equal(e) {
		return
	}
	c.cache[e.Key] = e
	if c.o.OnChange != nil {
		n := e
		if had {
			c.o.OnChange(&old, &n)
		} else {
			c.o.OnChange(nil, &n)
		}
	}
}

// remove forgets k unless s is dead.
func (c *Client) remove(s *session, k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.isDead() {
		return
	}
	c.removeLocked(k)
}

func (c *Client) removeLocked(k Key) {
	old, had := c.cache[k]
	if !had {
		return
	}
	delete(c.cache, k)
	if c.o.OnChange != nil {
		c.o.OnChange(&old, nil)
	}
}

// install makes s the live session and brings the caches in line with its
// rows: a new member's monitor starts with the whole tables, so rows the
// caches hold that it lacks were deleted meanwhile. Listing under c.mu
// keeps this right against concurrent events: libovsdb updates its cache
// before it delivers the event, and events only ever re-put what is there.
// Every replica's liveness clock restarts here: an outage or a failover of
// the directory makes nobody look dead.
func (c *Client) install(ctx context.Context, s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := c.live.last // before the sync sees our own row again
	// libovsdb's List waits until its cache is consistent with the
	// member, for as long as its context lets it: a member that stalls
	// right after the connection would hold c.mu, and every call of the
	// Client, for good. Bounded, it is one more member given up on.
	lctx, cancel := context.WithTimeout(ctx, 2*c.o.CallTimeout)
	defer cancel()
	if err := c.syncLocked(lctx, s); err != nil {
		c.log.Warn("listing the directory", zap.String("endpoint", s.endpoint), zap.Error(err))
		s.kill()
		return
	}
	c.live.restart(time.Now(), cut)
	c.sess = s
	select { // others see this replica again without waiting for a tick
	case c.synced <- struct{}{}:
	default:
	}
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}

// syncLocked replaces the caches' contents with s's rows.
func (c *Client) syncLocked(ctx context.Context, s *session) error {
	var rows []model.Endpoint
	var sws []model.Switch
	var reps []model.Replica
	for _, l := range []any{&rows, &sws, &reps} {
		if err := s.cli.List(ctx, l); err != nil {
			return err
		}
	}
	seen := make(map[Key]bool, len(rows))
	for i := range rows {
		e := fromModel(&rows[i])
		seen[e.Key] = true
		c.putLocked(e)
	}
	for k := range c.cache {
		if !seen[k] {
			c.removeLocked(k)
		}
	}
	dpids := make(map[uint64]bool, len(sws))
	keys := make(map[string]bool, len(sws))
	for i := range sws {
		o, err := switchFromModel(&sws[i])
		if !usable(err) {
			continue // the monitor's event of it was logged and counted
		}
		keys[sws[i].DatapathID] = true
		if isDPIDKey(sws[i].DatapathID) {
			dpids[o.DatapathID] = true
		}
		c.putSwitchLocked(sws[i].DatapathID, o)
	}
	for k := range c.keyed {
		if !keys[k] {
			delete(c.keyed, k)
		}
	}
	for dpid := range c.switches {
		if !dpids[dpid] {
			delete(c.switches, dpid)
			delete(c.unannounced, dpid)
		}
	}
	names := make(map[string]bool, len(reps))
	now := time.Now()
	for _, r := range reps {
		names[r.Name] = true
		c.live.observe(r.Name, r.Heartbeat, now)
	}
	for name := range c.live.beats {
		if !names[name] {
			c.live.forget(name)
		}
	}
	return nil
}
