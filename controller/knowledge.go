package controller

import (
	"cmp"
	"errors"
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
	// EventIPLearned: a MAC announced an IPv4 address (ARP).
	EventIPLearned
	// EventForgotten: a learned MAC aged out.
	EventForgotten
	// EventAdopted: a MAC (or IP) was read back from a switch's flows when
	// it connected, as a previous controller had installed it.
	EventAdopted
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

// ErrKnowledgeFull is returned when learning one more MAC would exceed the
// bound on learned MACs: a flood of new sources cannot grow the controller's
// state (and every switch's tables) without limit.
var ErrKnowledgeFull = errors.New("too many learned MACs")

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
}

type ipKey struct {
	vni uint32
	ip  netip.Addr
}

// Knowledge is what the controller knows about endpoints: for each (VNI,
// MAC), the host it is on and the IPv4 addresses it answers for, declared in
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
	maxLearned int
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
// at most maxLearned MACs are learned on top of them (0: no bound).
func NewKnowledge(declared []flows.Endpoint, maxLearned int) *Knowledge {
	k := &Knowledge{macs: map[MACKey]*knownMAC{}, learnedIP: map[ipKey]MACKey{}, declaredIP: map[ipKey]MACKey{}, maxLearned: maxLearned}
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
// an unknown local source), announcing ip when valid. A new MAC is learned;
// a MAC known on another host moves to host at once; a MAC known on host is
// only refreshed.
func (k *Knowledge) Observe(key MACKey, host string, ip netip.Addr, now time.Time) ([]Event, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ev []Event
	m := k.macs[key]
	switch {
	case m == nil:
		if k.maxLearned > 0 && k.learned >= k.maxLearned {
			return nil, ErrKnowledgeFull
		}
		m = &knownMAC{host: host}
		k.macs[key] = m
		k.learned++
		ev = append(ev, Event{Kind: EventLearned, Key: key, Host: host})
	case m.host != host:
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

// addIP gives a learned ip to key. An address declared for another MAC is
// never taken; one learned by another MAC moves when steal is set.
func (k *Knowledge) addIP(key MACKey, m *knownMAC, ip netip.Addr, steal bool) []Event {
	if !ip.Is4() || slices.Contains(m.declaredIPs, ip) || slices.Contains(m.learnedIPs, ip) {
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
// live is overridden: a MAC that moved while the switch was away stays moved.
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
			if k.maxLearned > 0 && k.learned >= k.maxLearned {
				continue
			}
			m = &knownMAC{host: host, lastSeen: now}
			k.macs[key] = m
			k.learned++
			ev = append(ev, Event{Kind: EventAdopted, Key: key, Host: host})
		case m.host != host && !m.observed:
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
			if k.maxLearned > 0 && k.learned >= k.maxLearned {
				continue
			}
			m = &knownMAC{host: e.Host, lastSeen: now}
			k.macs[key] = m
			k.learned++
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
		for _, ip := range m.learnedIPs {
			delete(k.learnedIP, ipKey{key.VNI, ip})
		}
		delete(k.macs, key)
		k.learned--
		ev = append(ev, Event{Kind: EventForgotten, Key: key, Host: m.host})
	}
	if len(ev) > 0 {
		k.commit(ev)
	}
	return ev
}
