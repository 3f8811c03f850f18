package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// Options configure a Client. Zero durations and sizes take the defaults.
type Options struct {
	// Endpoints are the cluster's members, "tcp:IP:PORT" or "ssl:IP:PORT".
	Endpoints []string
	// Name is this replica's name, written as the writer of its rows and
	// as master of the switches it claims. A client without one writes
	// no heartbeat, cannot Claim, and so judges no replica dead.
	Name string
	// TLS is the configuration of ssl: endpoints.
	TLS *tls.Config
	// ConnectTimeout bounds connecting to one member (default 1 s): a
	// member that accepts TCP and then stalls costs no more than this.
	ConnectTimeout time.Duration
	// CallTimeout bounds one transaction or echo (default 1 s); a call
	// that takes longer closes the connection and moves to the next member.
	CallTimeout time.Duration
	// EchoInterval is how often an idle connection is probed (default 500 ms).
	EchoInterval time.Duration
	// OnChange is called for every change of the Endpoint table: old nil
	// for a new row, new nil for a deleted one. Calls are serialized and
	// must not call the Client.
	OnChange func(old, new *Endpoint)
	// FlushRows and FlushInterval bound how long a learned endpoint waits
	// before it is written (defaults 50 rows, 50 ms); MaxBatch bounds one
	// transaction (default 1000) and QueueSize the endpoints waiting
	// (default 10000): beyond it Learn drops and counts.
	FlushRows     int
	FlushInterval time.Duration
	MaxBatch      int
	QueueSize     int
	// Logger receives the client's logs; it is expected to carry the
	// replica's name already (the client adds no "replica" field, which
	// would appear twice in JSON).
	Logger *zap.Logger

	// HeartbeatInterval is how often this replica (Name) rewrites its
	// Replica row, adding 1 to its heartbeat (default 250 ms).
	HeartbeatInterval time.Duration
	// ReplicaTimeout is how long a replica's heartbeat may go unchanged
	// before this client judges it dead (default 1 s), on the clock
	// Client.Alive describes.
	ReplicaTimeout time.Duration
	// Address is written in this replica's Replica row (informational).
	Address string
	// OnSwitch is called for every insert or update of a Switch row,
	// serialized with OnChange; it must not call the Client.
	OnSwitch func(SwitchOwner)
}

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.ConnectTimeout, time.Second)
	set(&o.CallTimeout, time.Second)
	set(&o.EchoInterval, 500*time.Millisecond)
	set(&o.FlushInterval, 50*time.Millisecond)
	set(&o.HeartbeatInterval, 250*time.Millisecond)
	set(&o.ReplicaTimeout, time.Second)
	for _, n := range []struct {
		p *int
		v int
	}{{&o.FlushRows, 50}, {&o.MaxBatch, 1000}, {&o.QueueSize, 10000}} {
		if *n.p <= 0 {
			*n.p = n.v
		}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Stats are a Client's counters.
type Stats struct {
	Transactions uint64 // write transactions committed
	Rows         uint64 // rows they wrote
	Dropped      uint64 // learned endpoints dropped on a full queue
	Failovers    uint64 // connections given up (lost, stalled or not the leader anymore)

	Heartbeats        uint64 // heartbeats of this replica committed
	HeartbeatFailures uint64 // heartbeats not committed (no leader, stalled, refused)
	ClaimsWon         uint64 // Claim calls that made or kept this replica master
	ClaimsLost        uint64 // Claim calls that found another master

	Forgotten uint64 // forgotten endpoints' rows deleted (Forget)
	Malformed uint64 // rows not taken into the cache: not what ovs-vxctl writes
}

// Client is a connection to the directory cluster's leader that moves to
// another member when the leader dies or hangs, a cache of the directory's
// tables kept by a monitor, a batching writer of learned endpoints, and
// this replica's heartbeat (replica.go) and switch claims (switch.go).
//
// Goroutines: supervise owns the sessions and fills the caches at each
// sync (install), writeLearned writes learned batches, heartbeat writes
// this replica's row; monitor events arrive on libovsdb's goroutines.
// mu guards the session and the caches (endpoints, switches, liveness).
//
// libovsdb alone never recovers from a hung leader (all endpoints share one
// connect timeout and a stalled member is never moved back), so each
// connection here is a libovsdb client of one member, connected with its
// own timeout and probed; one that stalls is closed and the next member
// tried.
type Client struct {
	o   Options
	log *zap.Logger

	mu    sync.Mutex
	sess  *session
	ready chan struct{} // closed at the first synced session
	next  int           // the member to try first
	cache map[Key]Endpoint
	// switches and live, like cache, are kept by the monitor's events
	// and install, under mu.
	switches    map[uint64]SwitchOwner
	unannounced map[uint64]SwitchOwner // claimed rows OnSwitch has not been called for yet
	keyed       map[string]SwitchOwner // rows of claim keys (ClaimKey)
	live        *liveness
	synced      chan struct{} // (cap 1) a session was installed: beat now

	queue                          chan queued
	txns, rows, dropped, failovers atomic.Uint64
	beats, beatFails, won, lost    atomic.Uint64
	// lastBeat: when the last committed heartbeat was sent (monotonic
	// clock kept); LastHeartbeat, LeaseUntil.
	lastBeat             atomic.Pointer[time.Time]
	forgotten, malformed atomic.Uint64
	// checked is closed once this replica's name was checked against a
	// live replica of the same name (replica.go); conflict, under mu,
	// is that replica's error.
	checked  chan struct{}
	conflict error
	// lastConnErr, under mu: the last failed connection attempt's error
	// (nil once connected), for Ready's error.
	lastConnErr error
	cancel      context.CancelFunc
	done        sync.WaitGroup
}

// session is one libovsdb connection to one member.
type session struct {
	cli      client.Client
	endpoint string
	index    int
	dead     chan struct{}
	once     sync.Once
}

// kill marks s dead: the supervisor closes it and connects elsewhere.
func (s *session) kill() { s.once.Do(func() { close(s.dead) }) }

func (s *session) isDead() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

// Open starts a Client of the cluster at o.Endpoints. It connects in the
// background; Ready waits for the first connection.
func Open(o Options) (*Client, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("opening the directory: no endpoints")
	}
	o.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		o: o, log: o.Logger, ready: make(chan struct{}), cache: map[Key]Endpoint{},
		queue: make(chan queued, o.QueueSize), cancel: cancel, checked: make(chan struct{}), keyed: map[string]SwitchOwner{},
		switches: map[uint64]SwitchOwner{}, unannounced: map[uint64]SwitchOwner{}, live: newLiveness(o.Name, o.ReplicaTimeout), synced: make(chan struct{}, 1),
	}
	c.done.Add(3)
	go func() { defer c.done.Done(); c.supervise(ctx) }()
	go func() { defer c.done.Done(); c.writeLearned(ctx) }()
	go func() { defer c.done.Done(); c.heartbeat(ctx) }()
	return c, nil
}

// Ready waits until the client has connected once, holds the tables and
// has checked that no live replica has its name: if one has, Ready returns
// an error wrapping ErrNameInUse (and the client writes nothing). When ctx
// ends first, the error names the last connection attempt's failure (a
// wrong database, a refused connection), not only the deadline.
func (c *Client) Ready(ctx context.Context) error {
	for _, ch := range []chan struct{}{c.ready, c.checked} {
		select {
		case <-ch:
		case <-ctx.Done():
			if last := c.connectErr(); last != nil {
				return fmt.Errorf("waiting for the directory at %v: %w (last attempt: %v)", c.o.Endpoints, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for the directory at %v: %w", c.o.Endpoints, ctx.Err())
		}
	}
	return c.nameConflict()
}

// setConnectErr records the last connection attempt's failure (nil: it
// succeeded).
func (c *Client) setConnectErr(err error) {
	c.mu.Lock()
	c.lastConnErr = err
	c.mu.Unlock()
}

// connectErr is the last connection attempt's failure, nil after a success.
func (c *Client) connectErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastConnErr
}

// Close stops the client; learned endpoints not written yet are lost.
func (c *Client) Close() {
	c.cancel()
	c.done.Wait()
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{Transactions: c.txns.Load(), Rows: c.rows.Load(), Dropped: c.dropped.Load(), Failovers: c.failovers.Load(),
		Heartbeats: c.beats.Load(), HeartbeatFailures: c.beatFails.Load(), ClaimsWon: c.won.Load(), ClaimsLost: c.lost.Load(),
		Forgotten: c.forgotten.Load(), Malformed: c.malformed.Load()}
}

// Endpoint is what the cache holds for k.
func (c *Client) Endpoint(k Key) (Endpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[k]
	return e, ok
}

// Len is the number of endpoints in the cache.
func (c *Client) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cache)
}

// Connected reports whether a session to the leader is up and its cache
// synced.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectedLocked()
}

func (c *Client) connectedLocked() bool { return c.sess != nil && !c.sess.isDead() }

// Leader is the member the client is connected to, "" while none.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.sess.endpoint
}

// supervise keeps one live session: it connects, watches the session until
// it dies, and connects again starting at the member after the dead one.
func (c *Client) supervise(ctx context.Context) {
	for ctx.Err() == nil {
		s := c.connect(ctx)
		if s == nil {
			return
		}
		c.install(ctx, s)
		c.watch(ctx, s)
		c.mu.Lock()
		c.sess = nil
		c.next = (s.index + 1) % len(c.o.Endpoints)
		c.mu.Unlock()
		s.kill()
		c.failovers.Add(1)
		c.log.Warn("directory connection lost", zap.String("endpoint", s.endpoint))
		// Close may wait for calls in flight; never hold the supervisor.
		go s.cli.Close()
	}
}

// connect tries each member in turn, each with its own timeout, until one
// is the leader; nil when ctx ends.
func (c *Client) connect(ctx context.Context) *session {
	// The backoff stays short: replicas that come back at different
	// times after a directory failover would judge each other dead.
	causes := make([]string, len(c.o.Endpoints)) // each member's last refusal
	warned := ""
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 250*time.Millisecond) {
		c.mu.Lock()
		start := c.next
		c.mu.Unlock()
		for i := range c.o.Endpoints {
			idx := (start + i) % len(c.o.Endpoints)
			s, err := c.dial(ctx, idx)
			if err == nil {
				c.setConnectErr(nil)
				c.log.Info("directory connected", zap.String("endpoint", s.endpoint))
				return s
			}
			if ctx.Err() != nil {
				return nil
			}
			c.setConnectErr(err)
			// Logged when a member's cause changes, not at every
			// attempt (several a second).
			if err.Error() != causes[idx] {
				causes[idx] = err.Error()
				c.log.Debug("directory member refused", zap.String("endpoint", c.o.Endpoints[idx]), zap.Error(err))
			}
		}
		// A whole round refused: warn, once per set of causes.
		if all := strings.Join(causes, "; "); all != warned {
			warned = all
			c.log.Warn("directory not reachable: every member refused", zap.Strings("causes", slices.Clone(causes)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// dial connects to member idx if it is the leader and starts the monitor
// of the tables, all within ConnectTimeout.
func (c *Client) dial(ctx context.Context, idx int) (*session, error) {
	dbm, err := model.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("directory model: %w", err)
	}
	ep := c.o.Endpoints[idx]
	opts := []client.Option{client.WithEndpoint(ep), client.WithLeaderOnly(true)}
	if c.o.TLS != nil {
		opts = append(opts, client.WithTLSConfig(c.o.TLS))
	}
	cli, err := client.NewOVSDBClient(dbm, opts...)
	if err != nil {
		return nil, fmt.Errorf("directory client for %s: %w", ep, err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.o.ConnectTimeout)
	defer cancel()
	if err := cli.Connect(cctx); err != nil {
		go cli.Close()
		return nil, fmt.Errorf("connecting to %s: %w", ep, err)
	}
	s := &session{cli: cli, endpoint: ep, index: idx, dead: make(chan struct{})}
	cli.Cache().AddEventHandler(c.handler(s))
	mon := cli.NewMonitor(client.WithTable(&model.Endpoint{}), client.WithTable(&model.Switch{}), client.WithTable(&model.Replica{}))
	if _, err := cli.Monitor(cctx, mon); err != nil {
		go cli.Close()
		return nil, fmt.Errorf("monitoring the directory at %s: %w", ep, err)
	}
	return s, nil
}

// watch returns when s is lost: disconnected (libovsdb also disconnects a
// member that stops being the leader), killed by a stalled call, or not
// answering an echo within CallTimeout.
func (c *Client) watch(ctx context.Context, s *session) {
	tick := time.NewTicker(c.o.EchoInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dead:
			return
		case <-s.cli.DisconnectNotify():
			return
		case <-tick.C:
			// Not derived from ctx: libovsdb's Echo reads its reply even
			// when the call returns early on a cancelled context, racing
			// with the reader that fills it (a data race at every Close).
			ectx, cancel := context.WithTimeout(context.Background(), c.o.CallTimeout)
			err := s.cli.Echo(ectx)
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Warn("directory member does not answer", zap.String("endpoint", s.endpoint), zap.Error(err))
				return
			}
		}
	}
}

// session returns the live session, waiting up to ctx for one.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		s := c.sess
		c.mu.Unlock()
		if s != nil && !s.isDead() {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no directory leader reachable at %v: %w", c.o.Endpoints, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
