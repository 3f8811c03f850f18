package directory

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/cache"
	libmodel "github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// handler applies session s's monitor events to the cache. Updates are
// idempotent (the same row twice changes nothing and calls nothing), so
// the initial rows of a new session and install's sweep can overlap.
func (c *Client) handler(s *session) cache.EventHandler {
	put := func(m libmodel.Model) {
		if e, ok := m.(*model.Endpoint); ok {
			c.put(s, fromModel(e))
		}
	}
	return &cache.EventHandlerFuncs{
		AddFunc:    func(_ string, m libmodel.Model) { put(m) },
		UpdateFunc: func(_ string, _, m libmodel.Model) { put(m) },
		DeleteFunc: func(_ string, m libmodel.Model) {
			if e, ok := m.(*model.Endpoint); ok {
				c.remove(s, fromModel(e).Key)
			}
		},
	}
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

// install makes s the live session and brings the cache in line with its
// rows: a new member's monitor starts with the whole table, so rows the
// cache holds that it lacks were deleted meanwhile. Listing under c.mu
// keeps this right against concurrent events: libovsdb updates its cache
// before it delivers the event, and events only ever re-put what is there.
func (c *Client) install(ctx context.Context, s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rows []model.Endpoint
	if err := s.cli.List(ctx, &rows); err != nil {
		c.log.Warn("listing the directory's endpoints", zap.String("endpoint", s.endpoint), zap.Error(err))
		s.kill()
		return
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
	c.sess = s
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}
