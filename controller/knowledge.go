package controller

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// MACKey identifies an endpoint: a MAC address within one network (VNI).
type MACKey struct {
	VNI uint32
	MAC [6]byte
}

// KeyOf builds the key of mac in vni; ok is false unless mac has 6 bytes.
func KeyOf(vni uint32, mac net.HardwareAddr) (MACKey, bool) {
	if len(mac) != 6 {
		return MACKey{}, false
	}
	return MACKey{VNI: vni, MAC: [6]byte(mac)}, true
}

// HardwareAddr is the key's MAC as a net.HardwareAddr.
func (k MACKey) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(k.MAC[:]) }

// EventKind says what changed in the controller's knowledge.
type EventKind int

// Kinds of Event.
const (
	// EventLearned: a MAC was learned from a packet-in.
	EventLearned EventKind = iota
	// EventMoved: a known MAC appeared on another host.
	EventMoved
	// EventIPLearned: a MAC announced an IP address (ARP, or IPv6
	// neighbour discovery).
	EventIPLearned
	// EventForgotten: a learned MAC aged out.
	EventForgotten
	// EventAdopted: a MAC (or IP) was read back from a switch's flows when
	// it connected, as a previous controller had installed it.
	EventAdopted
	// EventDeclared: a reloaded topology declares a MAC, or changed its
	// host or IPs (Redeclare).
	EventDeclared
	// EventUndeclared: a reloaded topology no longer declares a MAC.
	EventUndeclared
)

func (k EventKind) String() string {
	switch k {
	case EventLearned:
		return "learned"
	case EventMoved:
		return "moved"
	case EventIPLearned:
		return "ip-learned"
	case EventForgotten:
		return "forgotten"
	case EventAdopted:
		return "adopted"
	case EventDeclared:
		return "declared"
	case EventUndeclared:
		return "undeclared"
	}
	return "unknown"
}

// Event is one change of the knowledge.
type Event struct {
	Kind    EventKind
	Key     MACKey
	Host    string // where the MAC is now (or was, for EventForgotten)
	OldHost string // EventMoved: where it was
	IP      netip.Addr
}

// ErrKnowledgeFull is returned (as a *FullError) when learning one more MAC
// would exceed a bound on learned MACs: a flood of new sources cannot grow
// the controller's state (and every switch's tables) without limit.
var ErrKnowledgeFull = errors.New("too many learned MACs")

// Scopes of a FullError.
const (
	ScopeGlobal = "global" // the bound on learned MACs of all networks
	ScopeVNI    = "vni"    // the bound on learned MACs of one network
)

// FullError says which bound a new MAC hit; it is ErrKnowledgeFull.
type FullError struct {
	Scope string // ScopeGlobal or ScopeVNI
	VNI   uint32 // the network of the MAC that was refused
	Max   int
}

func (e *FullError) Error() string {
	if e.Scope == ScopeVNI {
		return fmt.Sprintf("%v: network VNI %d already has %d", ErrKnowledgeFull, e.VNI, e.Max)
	}
	return fmt.Sprintf("%v: %d in all networks", ErrKnowledgeFull, e.Max)
}

// Is makes errors.Is(err, ErrKnowledgeFull) hold.
func (e *FullError) Is(target error) bool { return target == ErrKnowledgeFull }

// ErrDeclaredElsewhere is returned (as a *ConflictError) when a MAC declared
// in the topology is reported from another host: declared MACs never move,
// or one forged frame would steal a VM's traffic.
var ErrDeclaredElsewhere = errors.New("declared MAC seen on another host")

// ConflictError is a declared MAC seen on another host than its own.
type ConflictError struct {
	Key      MACKey
	Declared string // the host the topology puts it on
	Seen     string // the host that reported it
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s in VNI %d is declared on %s, seen on %s", ErrDeclaredElsewhere, e.Key.HardwareAddr(), e.Key.VNI, e.Declared, e.Seen)
}

// Is makes errors.Is(err, ErrDeclaredElsewhere) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrDeclaredElsewhere }

// ErrDamped is returned (as a *DampedError) when a learned MAC that moved
// too often is reported from another host: it stays where it is until its
// hold-down ends.
var ErrDamped = errors.New("MAC frozen by flap damping")

// DampedError is a move refused by flap damping.
type DampedError struct {
	Key   MACKey
	Host  string    // where the MAC stays
	Seen  string    // the host that reported it
	Until time.Time // the end of the hold-down
	// Started: this report froze the MAC (it made more than Limits.FlapMoves
	// moves within Limits.FlapWindow); later reports during the hold-down
	// have it false.
	Started bool
}

func (e *DampedError) Error() string {
	return fmt.Sprintf("%v: %s in VNI %d stays on %s (seen on %s) until %s", ErrDamped, e.Key.HardwareAddr(), e.Key.VNI, e.Host, e.Seen, e.Until.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrDamped) hold.
func (e *DampedError) Is(target error) bool { return target == ErrDamped }

// Limits bound what a Knowledge learns and how often a learned MAC moves.
// Zero values: no bound, no damping.
type Limits struct {
	MaxLearned       int // learned MACs in all networks
	MaxLearnedPerVNI int // learned MACs in one network, so one tenant cannot starve the others
	// Flap damping, like Faucet's learn ban: a learned MAC moves at once
	// until it has moved FlapMoves times within FlapWindow; the next move
	// is refused and the MAC stays where it is for FlapHold. A MAC flapping
	// between two hosts (a loop, two VMs with one MAC) then costs a few
	// updates per hold-down instead of one per frame.
	FlapMoves  int
	FlapWindow time.Duration
	FlapHold   time.Duration
}

// maxIPsPerMAC bounds the learned addresses of one MAC; the oldest goes.
const maxIPsPerMAC = 8

type knownMAC struct {
	host        string
	declared    bool
	declaredIPs []netip.Addr
	learnedIPs  []netip.Addr
	// observed: the location was confirmed live (a packet-in) or by the
	// host's own flows; a hint read from another host's flows, or a
	// declaration, may be corrected by adoption, an observation never is.
	observed   bool
	lastSeen   time.Time
	packets    uint64 // last packet count of its known-source flows
	hasPackets bool
	// Flap damping: the times of its recent moves (at most FlapMoves), and
	// the end of its hold-down.
	moves       []time.Time
	frozenUntil time.Time
}

type ipKey struct {
	vni uint32
	ip  netip.Addr
}

// Knowledge is what the controller knows about endpoints: for each (VNI,
// MAC), the host it is on and the IP addresses it answers for, declared in
// the topology or learned. It is the state machine behind every switch's
// desired flows: pure (time is passed in), safe for concurrent use, and
// every method that changes it returns the events, so the caller can push
// the change to the switches it affects. Version increases with each change.
type Knowledge struct {
	mu         sync.Mutex
	macs       map[MACKey]*knownMAC
	learnedIP  map[ipKey]MACKey // who a learned IP belongs to
	declaredIP map[ipKey]MACKey
	learned    int
	perVNI     map[uint32]int // learned MACs by network
	limits     Limits
	version    uint64
	// changes lists the keys each recent version changed (oldest first,
	// at most maxChanges), so a switch that reflects an earlier version
	// can catch up on those keys alone (ChangesSince).
	changes []change
	stolen  []MACKey // keys addIP took an IP from, logged with the next change
}

// change is the keys one version changed.
type change struct {
	version uint64
	keys    []MACKey
}

// maxChanges bounds the change log; a switch further behind reconciles in
// full.
const maxChanges = 4096

// commit records a change: a new version, whose keys are those of ev and
// the ones that lost an IP to them.
func (k *Knowledge) commit(ev []Event) {
	k.version++
	keys := slices.Clone(k.stolen)
	k.stolen = k.stolen[:0]
	for _, e := range ev {
		keys = append(keys, e.Key)
	}
	if len(k.changes) >= maxChanges {
		k.changes = slices.Delete(k.changes, 0, len(k.changes)-maxChanges+1)
	}
	k.changes = append(k.changes, change{version: k.version, keys: keys})
}

// ChangesSince returns what changed after version v: for each changed key
// its endpoint now (ok false: it is forgotten), and the version the answer
// reflects. complete is false when the log no longer reaches back to v.
func (k *Knowledge) ChangesSince(v uint64) (eps map[MACKey]flows.Endpoint, present map[MACKey]bool, version uint64, complete bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v > k.version {
		return nil, nil, k.version, false
	}
	if v == k.version {
		return nil, nil, v, true
	}
	i, found := slices.BinarySearchFunc(k.changes, v+1, func(c change, want uint64) int { return cmp.Compare(c.version, want) })
	if !found {
		return nil, nil, k.version, false
	}
	eps, present = map[MACKey]flows.Endpoint{}, map[MACKey]bool{}
	for _, c := range k.changes[i:] {
		for _, key := range c.keys {
			if _, done := present[key]; done {
				continue
			}
			m := k.macs[key]
			present[key] = m != nil
			if m != nil {
				eps[key] = k.endpoint(key, m)
			}
		}
	}
	return eps, present, k.version, true
}

// endpoint is what is known of key (m), as an endpoint.
func (k *Knowledge) endpoint(key MACKey, m *knownMAC) flows.Endpoint {
	ips := append(slices.Clone(m.declaredIPs), m.learnedIPs...)
	slices.SortFunc(ips, netip.Addr.Compare)
	return flows.Endpoint{VNI: key.VNI, MAC: key.HardwareAddr(), Host: m.host, IPs: ips, Learned: !m.declared}
}

// NewKnowledge starts from the declared endpoints (flows.DeclaredEndpoints);
// what is learned on top of them is bounded by l.
func NewKnowledge(declared []flows.Endpoint, l Limits) *Knowledge {
	k := &Knowledge{macs: map[MACKey]*knownMAC{}, learnedIP: map[ipKey]MACKey{}, declaredIP: map[ipKey]MACKey{},
		perVNI: map[uint32]int{}, limits: l}
	for _, e := range declared {
		key, ok := KeyOf(e.VNI, e.MAC)
		if !ok {
			continue
		}
		m := k.macs[key]
		if m == nil {
			m = &knownMAC{host: e.Host, declared: true}
			k.macs[key] = m
		}
		for _, ip := range e.IPs {
			if !slices.Contains(m.declaredIPs, ip) {
				m.declaredIPs = append(m.declaredIPs, ip)
				k.declaredIP[ipKey{e.VNI, ip}] = key
			}
		}
	}
	return k
}

// Version counts the changes so far.
func (k *Knowledge) Version() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.version
}

// Counts returns how many MACs are declared and how many learned.
func (k *Knowledge) Counts() (declared, learned int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.macs) - k.learned, k.learned
}

// Endpoints lists everything known, sorted (flows.SortEndpoints), with the
// version it reflects.
func (k *Knowledge) Endpoints() ([]flows.Endpoint, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]flows.Endpoint, 0, len(k.macs))
	for key, m := range k.macs {
		out = append(out, k.endpoint(key, m))
	}
	flows.SortEndpoints(out)
	return out, k.version
}

// Lookup returns what is known of key.
func (k *Knowledge) Lookup(key MACKey) (flows.Endpoint, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.macs[key]
	if m == nil {
		return flows.Endpoint{}, false
	}
	return k.endpoint(key, m), true
}

// Observe records that host reported a frame from key's MAC (a packet-in for
// an unknown local source), announcing ip when valid. A new MAC is learned
// (unless a bound is reached: *FullError); a MAC known on host is only
// refreshed; a learned MAC known on another host moves to host at once,
// unless flap damping holds it (*DampedError); a declared MAC never moves
// (*ConflictError). Nothing changes when the error is not nil.
func (k *Knowledge) Observe(key MACKey, host string, ip netip.Addr, now time.Time) ([]Event, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ev []Event
	m := k.macs[key]
	switch {
	case m == nil:
		if err := k.room(key.VNI); err != nil {
			return nil, err
		}
		m = &knownMAC{host: host}
		k.learn(key, m)
		ev = append(ev, Event{Kind: EventLearned, Key: key, Host: host})
	case m.host != host:
		if err := k.mayMove(key, m, host, now); err != nil {
			return nil, err
		}
		ev = append(ev, Event{Kind: EventMoved, Key: key, Host: host, OldHost: m.host})
		m.host = host
		m.hasPackets = false // its counters are on the old host
	}
	m.observed = true
	m.lastSeen = now
	if ip.IsValid() {
		ev = append(ev, k.addIP(key, m, ip, true)...)
	}
	if len(ev) > 0 {
		k.commit(ev)
	}
	return ev, nil
}

// room reports whether one more MAC may be learned in vni.
func (k *Knowledge) room(vni uint32) error {
	if l := k.limits.MaxLearned; l > 0 && k.learned >= l {
		return &FullError{Scope: ScopeGlobal, VNI: vni, Max: l}
	}
	if l := k.limits.MaxLearnedPerVNI; l > 0 && k.perVNI[vni] >= l {
		return &FullError{Scope: ScopeVNI, VNI: vni, Max: l}
	}
	return nil
}

// learn adds a learned MAC.
func (k *Knowledge) learn(key MACKey, m *knownMAC) {
	k.macs[key] = m
	k.learned++
	k.perVNI[key.VNI]++
}

// forget removes a learned MAC and its learned IPs.
func (k *Knowledge) forget(key MACKey, m *knownMAC) {
	for _, ip := range m.learnedIPs {
		delete(k.learnedIP, ipKey{key.VNI, ip})
	}
	delete(k.macs, key)
	k.learned--
	if k.perVNI[key.VNI]--; k.perVNI[key.VNI] <= 0 {
		delete(k.perVNI, key.VNI)
	}
}

// mayMove decides whether m, known on another host, may move to host now,
// and records the move for flap damping.
func (k *Knowledge) mayMove(key MACKey, m *knownMAC, host string, now time.Time) error {
	if m.declared {
		return &ConflictError{Key: key, Declared: m.host, Seen: host}
	}
	l := k.limits
	if l.FlapMoves <= 0 {
		return nil
	}
	if now.Before(m.frozenUntil) {
		return &DampedError{Key: key, Host: m.host, Seen: host, Until: m.frozenUntil}
	}
	m.moves = slices.DeleteFunc(m.moves, func(t time.Time) bool { return now.Sub(t) >= l.FlapWindow })
	if len(m.moves) >= l.FlapMoves {
		// The hold-down starts afresh: once over, the MAC moves at once
		// again.
		m.frozenUntil, m.moves = now.Add(l.FlapHold), m.moves[:0]
		return &DampedError{Key: key, Host: m.host, Seen: host, Until: m.frozenUntil, Started: true}
	}
	m.moves = append(m.moves, now)
	return nil
}

// addIP gives a learned ip to key. An address declared for another MAC is
// never taken; one learned by another MAC moves when steal is set.
func (k *Knowledge) addIP(key MACKey, m *knownMAC, ip netip.Addr, steal bool) []Event {
	if !(ip.Is4() || ip.Is6() && !ip.Is4In6()) || slices.Contains(m.declaredIPs, ip) || slices.Contains(m.learnedIPs, ip) {
		return nil
	}
	ik := ipKey{key.VNI, ip}
	if _, ok := k.declaredIP[ik]; ok {
		return nil
	}
	if owner, ok := k.learnedIP[ik]; ok && owner != key {
		if !steal {
			return nil
		}
		if o := k.macs[owner]; o != nil {
			k.stolen = append(k.stolen, owner)
			o.learnedIPs = slices.DeleteFunc(o.learnedIPs, func(a netip.Addr) bool { return a == ip })
		}
	}
	if len(m.learnedIPs) >= maxIPsPerMAC {
		delete(k.learnedIP, ipKey{key.VNI, m.learnedIPs[0]})
		m.learnedIPs = slices.Delete(m.learnedIPs, 0, 1)
	}
	m.learnedIPs = append(m.learnedIPs, ip)
	k.learnedIP[ik] = key
	return []Event{{Kind: EventIPLearned, Key: key, Host: m.host, IP: ip}}
}

// Adopt takes in what a switch of host already holds when it connects, so a
// restarted controller computes the desired state its predecessor left:
// local are the MACs with known-source flows on host (the host itself says
// they are there), remote the unicast entries towards other hosts with the
// IPs of their ARP responders (hints about those hosts). Nothing observed
// live is overridden: a MAC that moved while the switch was away stays moved;
// a declared MAC never moves.
func (k *Knowledge) Adopt(host string, local []MACKey, remote []flows.Endpoint, now time.Time) []Event {
	// remote may also hold endpoints of host itself: the IPs its known-ARP
	// flows name for MACs of local.
	k.mu.Lock()
	defer k.mu.Unlock()
	var ev []Event
	for _, key := range local {
		m := k.macs[key]
		switch {
		case m == nil:
			if k.room(key.VNI) != nil {
				continue
			}
			m = &knownMAC{host: host, lastSeen: now}
			k.learn(key, m)
			ev = append(ev, Event{Kind: EventAdopted, Key: key, Host: host})
		case m.host != host && !m.observed && !m.declared:
			ev = append(ev, Event{Kind: EventMoved, Key: key, Host: host, OldHost: m.host})
			m.host, m.lastSeen, m.hasPackets = host, now, false
		case m.host != host:
			continue
		}
		m.observed = true
	}
	for _, e := range remote {
		key, ok := KeyOf(e.VNI, e.MAC)
		if !ok {
			continue
		}
		if e.Host == host {
			// The host's own (MAC, IP) pairs: IPs of a MAC adopted above.
			if m := k.macs[key]; m != nil && m.host == host {
				for _, ip := range e.IPs {
					for _, x := range k.addIP(key, m, ip, false) {
						x.Kind = EventAdopted
						ev = append(ev, x)
					}
				}
			}
			continue
		}
		m := k.macs[key]
		if m == nil {
			if k.room(key.VNI) != nil {
				continue
			}
			m = &knownMAC{host: e.Host, lastSeen: now}
			k.learn(key, m)
			ev = append(ev, Event{Kind: EventAdopted, Key: key, Host: e.Host})
		}
		if m.host != e.Host {
			continue // the hint is stale: the IPs are not its
		}
		for _, ip := range e.IPs {
			for _, x := range k.addIP(key, m, ip, false) {
				x.Kind = EventAdopted
				ev = append(ev, x)
			}
		}
	}
	if len(ev) > 0 {
		k.commit(ev)
	}
	return ev
}

// Touch restarts the idle clock of every MAC on host: a host that was away
// (its switch disconnected) could not report activity.
func (k *Knowledge) Touch(host string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range k.macs {
		if m.host == host {
			m.lastSeen, m.hasPackets = now, false
		}
	}
}

// Activity records the packet counts of host's known-source flows, summed
// per MAC: a MAC whose count changed since the last reading is active.
func (k *Knowledge) Activity(host string, packets map[MACKey]uint64, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, n := range packets {
		m := k.macs[key]
		if m == nil || m.host != host {
			continue
		}
		if m.hasPackets && m.packets != n {
			m.lastSeen = now
		}
		m.packets, m.hasPackets = n, true
	}
}

// Withdraw forgets the learned MAC key when host says it is gone from there
// (a hardware VTEP removed it from its Ucast_Macs_Local). A MAC known on
// another host, or declared, stays.
func (k *Knowledge) Withdraw(key MACKey, host string) []Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.macs[key]
	if m == nil || m.declared || m.host != host {
		return nil
	}
	k.forget(key, m)
	ev := []Event{{Kind: EventForgotten, Key: key, Host: host}}
	k.commit(ev)
	return ev
}

// Expire forgets the learned MACs idle for longer than idle whose host is
// live (its switch connected, so its counters are being read). Declared MACs
// never expire.
func (k *Knowledge) Expire(now time.Time, idle time.Duration, live func(host string) bool) []Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ev []Event
	for key, m := range k.macs {
		if m.declared || now.Sub(m.lastSeen) <= idle || !live(m.host) {
			continue
		}
		k.forget(key, m)
		ev = append(ev, Event{Kind: EventForgotten, Key: key, Host: m.host})
	}
	if len(ev) > 0 {
		k.commit(ev)
	}
	return ev
}
