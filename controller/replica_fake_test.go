package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
)

// fakeCluster is an in-memory directory shared by the fake clients of
// several replicas: directory.Client's claims (one master per switch, the
// generation bumped on a takeover), liveness (a closed client's heartbeat
// stops; it is dead timeout later) and learned endpoints, each change told
// to every client in order, without OVSDB.
type fakeCluster struct {
	timeout time.Duration

	mu       sync.Mutex
	switches map[uint64]SwitchOwner
	rows     map[string]SwitchOwner // by key: switches' and claim keys'
	eps      map[directory.Key]directory.Endpoint
	clients  []*fakeDir
	closed   map[string]time.Time // replica -> when its client closed
	others   map[string]bool      // live replicas without a client here
	down     bool                 // quorum lost: nothing commits
	downAt   time.Time            // when down was set: the last heartbeat
	queued   []queuedLearn        // learned while down, written when back
	claims   int                  // claim transactions committed
}

func newFakeCluster(timeout time.Duration) *fakeCluster {
	return &fakeCluster{timeout: timeout, switches: map[uint64]SwitchOwner{}, rows: map[string]SwitchOwner{}, eps: map[directory.Key]directory.Endpoint{},
		closed: map[string]time.Time{}, others: map[string]bool{}}
}

// open is a ServerOptions.OpenDirectory joining the cluster.
func (c *fakeCluster) open(h DirectoryHooks) (Directory, error) {
	d := &fakeDir{c: c, hooks: h, events: make(chan func(), 65536), done: make(chan struct{})}
	c.mu.Lock()
	c.clients = append(c.clients, d)
	delete(c.closed, h.Name)
	c.mu.Unlock()
	d.wg.Add(1)
	go d.deliver()
	return d, nil
}

// queuedLearn is a learned endpoint waiting for the quorum.
type queuedLearn struct {
	writer string
	e      directory.Endpoint
}

// setDown loses (true) or regains the quorum; regained, the endpoints
// learned meanwhile are written, as the real client's queue does.
func (c *fakeCluster) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if down && !c.down {
		c.downAt = time.Now()
	}
	c.down = down
	if !down {
		for _, q := range c.queued {
			c.learnLocked(q.writer, q.e)
		}
		c.queued = nil
	}
}

func (c *fakeCluster) owner(dpid uint64) (SwitchOwner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.switches[dpid]
	return o, ok
}

// aliveLocked: a replica with an open client, or closed less than timeout
// ago.
func (c *fakeCluster) aliveLocked(name string) bool {
	if c.others[name] {
		return true
	}
	if t, ok := c.closed[name]; ok {
		return time.Since(t) < c.timeout
	}
	for _, d := range c.clients {
		if d.hooks.Name == name {
			return true
		}
	}
	return false
}

// notifyLocked queues f for every open client, in order.
func (c *fakeCluster) notifyLocked(f func(DirectoryHooks)) {
	for _, d := range c.clients {
		select {
		case <-d.done:
			continue
		default:
		}
		h := d.hooks
		d.events <- func() { f(h) }
	}
}

// fakeDir is one replica's client of a fakeCluster.
type fakeDir struct {
	c      *fakeCluster
	hooks  DirectoryHooks
	events chan func()
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func (d *fakeDir) deliver() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case f := <-d.events:
			f()
		}
	}
}

var errFakeDown = errors.New("fake directory: no quorum")

func (d *fakeDir) Ready(ctx context.Context) error { return nil }

// LeaseUntil: heartbeats commit while the quorum holds, as often as asked.
func (d *fakeDir) LeaseUntil() time.Time {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	last := time.Now()
	if d.c.down {
		last = d.c.downAt
	}
	return last.Add(d.c.timeout * 3 / 4)
}

func (d *fakeDir) Connected() bool {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	return !d.c.down
}

func (d *fakeDir) Claim(ctx context.Context, dpid uint64, host, bridge string) (SwitchOwner, bool, error) {
	return d.claim(fmt.Sprintf("%016x", dpid), dpid, host, bridge, 0)
}

func (d *fakeDir) ClaimAbove(ctx context.Context, dpid uint64, host, bridge string, min uint64) (SwitchOwner, bool, error) {
	return d.claim(fmt.Sprintf("%016x", dpid), dpid, host, bridge, min)
}

func (d *fakeDir) ClaimKey(ctx context.Context, key, host, bridge string) (SwitchOwner, bool, error) {
	return d.claim(key, 0, host, bridge, 0)
}

// claim is directory.Client's claim rules on the fake's rows.
func (d *fakeDir) claim(key string, dpid uint64, host, bridge string, min uint64) (SwitchOwner, bool, error) {
	c, name := d.c, d.hooks.Name
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return SwitchOwner{}, false, errFakeDown
	}
	row, has := c.rowLocked(key, dpid)
	if has && row.Master != name && row.Master != "" && c.aliveLocked(row.Master) {
		return row, false, nil
	}
	if has && row.Master == name && row.Generation >= min {
		return row, true, nil
	}
	row = SwitchOwner{DatapathID: dpid, Host: host, Bridge: bridge, Master: name, Generation: max(row.Generation+1, min)}
	c.putRowLocked(key, row)
	c.claims++
	return row, true, nil
}

// rowLocked is the row of key; a switch's (dpid != 0) is in switches,
// which tests also set directly.
func (c *fakeCluster) rowLocked(key string, dpid uint64) (SwitchOwner, bool) {
	if dpid != 0 {
		o, ok := c.switches[dpid]
		return o, ok
	}
	o, ok := c.rows[key]
	return o, ok
}

// putRowLocked stores a row and tells OnSwitch of a switch's.
func (c *fakeCluster) putRowLocked(key string, row SwitchOwner) {
	c.rows[key] = row
	if row.DatapathID != 0 {
		c.switches[row.DatapathID] = row
		c.notifyLocked(func(h DirectoryHooks) { h.OnSwitch(row) })
	}
}

func (d *fakeDir) Release(ctx context.Context, dpid, gen uint64) (bool, error) {
	return d.release(fmt.Sprintf("%016x", dpid), dpid, gen)
}

func (d *fakeDir) ReleaseKey(ctx context.Context, key string, gen uint64) (bool, error) {
	return d.release(key, 0, gen)
}

func (d *fakeDir) release(key string, dpid, gen uint64) (bool, error) {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return false, errFakeDown
	}
	row, has := c.rowLocked(key, dpid)
	if !has || row.Master != d.hooks.Name || row.Generation != gen {
		return false, nil
	}
	row.Master = ""
	c.putRowLocked(key, row)
	return true, nil
}

func (d *fakeDir) KeyOwner(key string) (SwitchOwner, bool) {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	o, ok := d.c.rows[key]
	return o, ok
}

// Forget deletes k's row if it is learned on host (the real client also
// checks it is the row it last saw).
func (d *fakeDir) Forget(k directory.Key, host string) bool {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.eps[k]
	if !had || old.Host != host || old.Kind != directory.KindLearned || c.down {
		return true
	}
	delete(c.eps, k)
	c.notifyLocked(func(h DirectoryHooks) { o := old; h.OnChange(&o, nil) })
	return true
}

func (d *fakeDir) Owner(dpid uint64) (SwitchOwner, bool) { return d.c.owner(dpid) }

func (d *fakeDir) Alive(name string) bool {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	return d.c.aliveLocked(name)
}

func (d *fakeDir) LiveReplicas() []string {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, o := range c.clients {
		if n := o.hooks.Name; c.aliveLocked(n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (d *fakeDir) Endpoints() []directory.Endpoint {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	out := make([]directory.Endpoint, 0, len(d.c.eps))
	for _, e := range d.c.eps {
		out = append(out, e)
	}
	return out
}

func (d *fakeDir) Endpoint(k directory.Key) (directory.Endpoint, bool) {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	e, ok := d.c.eps[k]
	return e, ok
}

// Learn writes at once (the real client batches); while the quorum is
// lost it queues.
func (d *fakeDir) Learn(e directory.Endpoint) bool {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		c.queued = append(c.queued, queuedLearn{d.hooks.Name, e})
		return true
	}
	c.learnLocked(d.hooks.Name, e)
	return true
}

func (c *fakeCluster) learnLocked(writer string, e directory.Endpoint) {
	e.Kind, e.Writer = directory.KindLearned, writer
	old, had := c.eps[e.Key]
	c.eps[e.Key] = e
	c.notifyLocked(func(h DirectoryHooks) {
		n := e
		if had {
			o := old
			h.OnChange(&o, &n)
		} else {
			h.OnChange(nil, &n)
		}
	})
}

// Close stops the client: its replica's heartbeat stops.
func (d *fakeDir) Close() {
	d.once.Do(func() {
		d.c.mu.Lock()
		d.c.closed[d.hooks.Name] = time.Now()
		d.c.mu.Unlock()
		close(d.done)
	})
	d.wg.Wait()
}
