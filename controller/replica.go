package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
)

// Controller replicas: several controllers of one topology share what they
// learn and split the switches through the directory (package directory, a
// clustered OVSDB). Each switch has one master replica, which claimed it in
// the directory with a generation that becomes its OpenFlow role request's
// generation ID; every other replica is a slave of it (mastership.go).

// Directory is what a controller replica needs of the directory;
// *directory.Client is one. OnChange and OnSwitch calls (DirectoryHooks)
// must reach the Server while it runs.
type Directory interface {
	// Ready waits for the first synced session.
	Ready(ctx context.Context) error
	// Connected reports whether a session to the leader is up and synced.
	Connected() bool
	// Claim makes this replica master of dpid unless a live replica is.
	Claim(ctx context.Context, dpid uint64, host, bridge string) (SwitchOwner, bool, error)
	// ClaimAbove is Claim with a generation of at least min.
	ClaimAbove(ctx context.Context, dpid uint64, host, bridge string, min uint64) (SwitchOwner, bool, error)
	// Release gives up this replica's mastership of dpid at generation
	// gen (master "", generation kept); false: the row had changed.
	Release(ctx context.Context, dpid, gen uint64) (bool, error)
	// ClaimKey, KeyOwner and ReleaseKey are Claim, Owner and Release of
	// a claim key (directory.HardwareVTEPKey).
	ClaimKey(ctx context.Context, key, host, bridge string) (SwitchOwner, bool, error)
	KeyOwner(key string) (SwitchOwner, bool)
	ReleaseKey(ctx context.Context, key string, gen uint64) (bool, error)
	// Owner is the cached Switch row of dpid.
	Owner(dpid uint64) (SwitchOwner, bool)
	// LeaseUntil is when this replica must stop using what it holds
	// without a fence (a hardware VTEP's claim) unless a heartbeat of
	// its commits meanwhile: others judge it dead only later.
	LeaseUntil() time.Time
	// Alive reports whether replica name's heartbeat is recent.
	Alive(name string) bool
	// LiveReplicas are the live replicas' names, sorted.
	LiveReplicas() []string
	// Endpoints are the cached Endpoint rows.
	Endpoints() []directory.Endpoint
	// Endpoint is the cached row of k.
	Endpoint(k directory.Key) (directory.Endpoint, bool)
	// Learn queues a learned endpoint for a batched write; false: dropped.
	Learn(e directory.Endpoint) bool
	// Forget queues the conditional delete of k's learned row on host.
	Forget(k directory.Key, host string) bool
	// Close stops the client.
	Close()
}

// DirectoryHooks are what a Directory must call: OnChange for every change
// of an Endpoint row, OnSwitch for every Switch row inserted or updated,
// serialized, never from inside a call of the Server into the Directory.
type DirectoryHooks struct {
	Name     string // this replica's name
	OnChange func(old, new *directory.Endpoint)
	OnSwitch func(SwitchOwner)
}

// directoryWait bounds how long Run waits for the directory before it
// serves switches anyway (claiming none until the directory is back).
const directoryWait = 5 * time.Second

// joinSettle is how long a replica that just joined the directory waits
// before claiming switches nobody owns: long enough (a heartbeat timeout)
// to have seen every live replica's heartbeat, so that replicas started
// together agree on who claims what and the switches spread over them.
const joinSettle = time.Second

// replicaName is the name of this replica: o.Name, or the machine's host
// name and the first address listened on, so that two replicas on one
// machine never take each other for themselves.
func replicaName(o ServerOptions) string {
	if o.Name != "" {
		return o.Name
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "controller"
	}
	switch {
	case len(o.Listen) > 0:
		name += "@" + o.Listen[0]
	case len(o.Listeners) > 0:
		name += "@" + o.Listeners[0].Addr().String()
	}
	return name
}

// openDirectory opens the directory the options name (Directory, else the
// topology's directory: list); nil without one.
func (s *Server) openDirectory() (Directory, error) {
	hooks := DirectoryHooks{Name: s.name, OnChange: s.directoryChanged, OnSwitch: s.switchOwnerChanged}
	if s.o.OpenDirectory != nil {
		return s.o.OpenDirectory(hooks)
	}
	eps := s.o.Directory
	if len(eps) == 0 {
		eps = s.topo().t.Directory
	}
	if len(eps) == 0 {
		return nil, nil
	}
	c, err := directory.Open(directory.Options{
		Endpoints: eps, Name: s.name, TLS: s.o.DirectoryTLS, Logger: s.log.Named("directory"),
		OnChange: hooks.OnChange, OnSwitch: hooks.OnSwitch,
		// A learned MAC waits at most this long for others to share its
		// transaction: every other replica's switches wait for it too.
		// Under load, MACs queued while a transaction is in flight still
		// share the next one.
		FlushInterval: directoryFlush,
	})
	if err != nil {
		return nil, fmt.Errorf("controller replica %s joining the directory: %w", s.name, err)
	}
	return c, nil
}

// directoryFlush is how long a learned endpoint waits to be batched.
const directoryFlush = 5 * time.Millisecond

// joinDirectory waits (at most directoryWait) for the directory and seeds
// the knowledge with the endpoints learned by any replica, so that a
// restarted controller re-learns and re-installs nothing. It fails only
// when a live replica already has this one's name: two of one name would
// take each other's switches for their own.
func (s *Server) joinDirectory(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, directoryWait)
	err := s.dir.Ready(wctx)
	cancel()
	s.joined = time.Now()
	if errors.Is(err, directory.ErrNameInUse) {
		return fmt.Errorf("controller replica %s: %w (give each replica its own --name)", s.name, err)
	}
	if err != nil {
		s.log.Warn("directory not reachable yet: serving switches, claiming none until it is", zap.Error(err))
		return nil
	}
	eps := s.dir.Endpoints()
	n := 0
	now := time.Now()
	for i := range eps {
		ev := s.merge(&eps[i], now)
		n += len(ev)
	}
	s.log.Info("joined the directory", zap.Int("endpoints", len(eps)), zap.Int("changes", n))
	return nil
}

// directoryChanged takes in a change of the directory's Endpoint table
// (the directory's goroutine calls it): an endpoint another replica learned
// or moved enters the knowledge, one removed is forgotten. This replica's
// own writes coming back change nothing. A removed row this replica wrote
// is forgotten too unless this replica masters its host: then the delete
// is its own Forget (it ages that host's MACs), possibly overtaken by the
// MAC seen again; otherwise the host's new master deleted it, and nobody
// else would ever forget the MAC here.
func (s *Server) directoryChanged(old, new *directory.Endpoint) {
	now := time.Now()
	if new == nil {
		if old == nil || old.Kind != directory.KindLearned || (old.Writer == s.name && s.live(old.Host)) {
			return
		}
		key, _, err := endpointKey(old)
		if err != nil {
			return
		}
		s.changed(s.know.Withdraw(key, old.Host), now)
		return
	}
	if new.Writer == s.name {
		// Its own write coming back: older than what it knows now. Only
		// a key it does not know (its previous run's, seen when the
		// directory was not reachable at start) is news.
		if key, _, err := endpointKey(new); err != nil || s.knows(key) {
			return
		}
	}
	s.merge(new, now)
}

// knows reports whether the knowledge holds key.
func (s *Server) knows(key MACKey) bool {
	_, ok := s.know.Lookup(key)
	return ok
}

// merge puts a learned endpoint of the directory into the knowledge and
// marks the switches it changes; declared ones come from the topology. A
// row that does not parse, is not a learned one (replicas write no other),
// or names a host the topology lacks or one outside the row's network is
// counted as malformed, one that claims a declared MAC for another host or
// is over a bound as refused; each is logged (hostileRow) and left out:
// whoever wrote it, nothing changes here.
func (s *Server) merge(e *directory.Endpoint, now time.Time) []Event {
	if e.Kind != directory.KindLearned {
		s.met.replicaLearned.WithLabelValues(learnedMalformed).Inc()
		s.hostileRow(e, "ignoring an endpoint row of the directory",
			fmt.Errorf("kind %q: declared endpoints come from the topology, replicas write only learned ones", e.Kind), now)
		return nil
	}
	key, ips, err := s.endpointKey(e)
	if err != nil {
		s.met.replicaLearned.WithLabelValues(learnedMalformed).Inc()
		s.hostileRow(e, "ignoring an endpoint row of the directory", err, now)
		return nil
	}
	ev, err := s.know.Merge(key, e.Host, ips, now)
	if k, ok := s.know.Lookup(key); err == nil && ok && !k.Learned && k.Host != e.Host {
		// Merge leaves a declared MAC alone; a row putting it elsewhere
		// is hostile (or stale), worth a line.
		err = &ConflictError{Key: key, Declared: k.Host, Seen: e.Host}
	}
	if err != nil {
		s.met.replicaLearned.WithLabelValues(learnedRefused).Inc()
		if errors.Is(err, ErrDeclaredElsewhere) {
			s.hostileRow(e, "endpoint from the directory not taken in", err, now)
		} else if s.logOnce.allow("directory/merge-refused", now) { // a bound: one line covers the flood
			s.log.Warn("endpoint from the directory not taken in", zap.Error(err))
		}
		return nil
	}
	if len(ev) > 0 {
		s.met.replicaLearned.WithLabelValues(learnedMerged).Inc()
	}
	s.changed(ev, now)
	return ev
}

// hostileRowLines bounds the lines hostileRow writes per logInterval,
// whatever the number of rows: a flood of hostile rows is in the metric.
const hostileRowLines = 10

// hostileRow logs a directory row left out, once per row change (its key,
// host, writer, kind and cause) and at most hostileRowLines a logInterval.
func (s *Server) hostileRow(e *directory.Endpoint, msg string, err error, now time.Time) {
	row := fmt.Sprintf("directory/row/%d/%s/%s/%s/%s/%v", e.VNI, e.MAC, e.Host, e.Writer, e.Kind, err)
	if !s.logOnce.allow(row, now) {
		return
	}
	for i := range hostileRowLines {
		if s.logOnce.allow(fmt.Sprintf("directory/row-line/%d", i), now) {
			s.log.Warn(msg, zap.Uint32("vni", e.VNI), zap.String("mac", e.MAC), zap.String("host", e.Host),
				zap.String("writer", e.Writer), zap.String("kind", string(e.Kind)), zap.Error(err))
			return
		}
	}
}

// endpointKey parses a directory endpoint's key and addresses and checks
// that its host is one of the topology's, in the endpoint's network.
func (s *Server) endpointKey(e *directory.Endpoint) (MACKey, []netip.Addr, error) {
	key, ips, err := endpointKey(e)
	if err != nil {
		return MACKey{}, nil, err
	}
	t := s.topo().t
	h := t.Host(e.Host)
	if h == nil {
		return MACKey{}, nil, fmt.Errorf("host %q is not in topology %s", e.Host, t.Name)
	}
	known := false
	for _, n := range t.Networks {
		known = known || n.VNI == e.VNI
	}
	if !known {
		return MACKey{}, nil, fmt.Errorf("VNI %d is not a network of topology %s", e.VNI, t.Name)
	}
	if !inNetwork(t, e.Host, e.VNI) {
		return MACKey{}, nil, fmt.Errorf("host %s has no port in VNI %d", e.Host, e.VNI)
	}
	return key, ips, nil
}

// endpointKey parses a directory endpoint's key and addresses.
func endpointKey(e *directory.Endpoint) (MACKey, []netip.Addr, error) {
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return MACKey{}, nil, fmt.Errorf("mac %q: %w", e.MAC, err)
	}
	if e.VNI == 0 || e.VNI >= 1<<24 {
		return MACKey{}, nil, fmt.Errorf("vni %d is not a VXLAN network identifier", e.VNI)
	}
	key, ok := KeyOf(e.VNI, mac)
	if ok && mac[0]&1 != 0 {
		return MACKey{}, nil, fmt.Errorf("mac %s is a group address: never learned", e.MAC)
	}
	if !ok {
		return MACKey{}, nil, fmt.Errorf("(vni %d, mac %s) is not a key of a learned endpoint", e.VNI, e.MAC)
	}
	ips := make([]netip.Addr, 0, len(e.IPs))
	for _, s := range e.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return MACKey{}, nil, fmt.Errorf("ip %q: %w", s, err)
		}
		ips = append(ips, a)
	}
	return key, ips, nil
}

// unpublish queues the directory's delete of the learned MACs events
// forgot here (aged out, withdrawn, or a reload removed their host or
// network); the directory client deletes a row only if it is still the one
// it saw, on that host. Forgets of rows another replica already deleted
// find nothing to delete.
func (s *Server) unpublish(ev []Event) {
	if s.dir == nil {
		return
	}
	for _, e := range ev {
		if e.Kind != EventForgotten {
			continue
		}
		k := directory.Key{VNI: e.Key.VNI, MAC: strings.ToLower(e.Key.HardwareAddr().String())}
		if s.dir.Forget(k, e.Host) {
			s.met.replicaLearned.WithLabelValues(learnedForgotten).Inc()
		} else {
			s.met.replicaLearned.WithLabelValues(learnedDropped).Inc()
		}
	}
}

// publish queues what this replica now knows of key for the directory,
// unless the directory already says the same.
// fresh (a MAC the knowledge did not have) writes even a row the
// directory's cache holds alike: that row may be one a queued Forget of
// this replica is about to delete (aged out, then seen again at once).
func (s *Server) publish(key MACKey, fresh bool) {
	if s.dir == nil {
		return
	}
	e, ok := s.know.Lookup(key)
	if !ok || !e.Learned {
		return
	}
	ips := make([]string, len(e.IPs))
	for i, a := range e.IPs {
		ips[i] = a.String()
	}
	slices.Sort(ips)
	de := directory.Endpoint{Key: directory.Key{VNI: key.VNI, MAC: strings.ToLower(key.HardwareAddr().String())},
		Host: e.Host, IPs: ips, Kind: directory.KindLearned, Writer: s.name, Updated: time.Now()}
	if cur, ok := s.dir.Endpoint(de.Key); !fresh && ok && cur.Host == de.Host && slices.Equal(cur.IPs, de.IPs) {
		return
	}
	if s.dir.Learn(de) {
		s.met.replicaLearned.WithLabelValues(learnedWritten).Inc()
	} else {
		s.met.replicaLearned.WithLabelValues(learnedDropped).Inc()
	}
}

// publishEvents publishes the keys events learned, moved or gave an IP.
func (s *Server) publishEvents(ev []Event) {
	if s.dir == nil {
		return
	}
	done := map[MACKey]bool{}
	for _, e := range ev {
		if done[e.Key] || (e.Kind != EventLearned && e.Kind != EventMoved && e.Kind != EventIPLearned && e.Kind != EventAdopted) {
			continue
		}
		done[e.Key] = true
		s.publish(e.Key, e.Kind == EventLearned)
	}
}

// switchOwnerChanged takes in a Switch row (the directory's goroutine
// calls it): a session whose master part runs while the row names another
// replica stops programming at once; every session of the switch
// re-examines its mastership.
func (s *Server) switchOwnerChanged(o SwitchOwner) {
	s.mu.Lock()
	sess := s.sessions[o.DatapathID]
	s.mu.Unlock()
	if sess == nil || sess.rep == nil {
		return
	}
	if o.Master != s.name {
		sess.rep.demote(fmt.Sprintf("the directory names replica %s master (generation %d)", o.Master, o.Generation))
	}
	sess.rep.poke()
}

// DirectoryConnected reports whether this replica has a live session to
// the directory; false without one.
func (s *Server) DirectoryConnected() bool { return s.dir != nil && s.dir.Connected() }

// Name is this replica's name (ServerOptions.Name or the host name).
func (s *Server) Name() string { return s.name }
