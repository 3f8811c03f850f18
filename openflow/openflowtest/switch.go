// Package openflowtest emulates an OpenFlow 1.3 switch — Open vSwitch 3.1 as
// ovs-vxctl uses it — so that controllers and the openflow package are
// tested without root or a real OVS, in milliseconds.
//
// A Switch keeps a flow table (add; strict modify and delete; non-strict
// modify and delete of whole tables by cookie), answers barriers, echoes,
// features, config and role requests, applies ONF bundles atomically, and
// answers flow-stats and port-description multipart requests in parts under
// 64 KiB. It dials controllers as OVS does (Connect, redialling with
// backoff when a connection ends) or serves connections it is given
// (Serve, Pipe: OVS's passive and management connections), several at once.
//
// Roles are enforced as OVS 3.1 does: every connection starts EQUAL; a
// MASTER request demotes the current master to SLAVE (which is told with an
// ONF role status); MASTER and SLAVE requests carry a generation ID that
// must not be older than the newest seen (ofcodec.GenerationStale), else
// OFPRRFC_STALE; a slave's flow-mods, packet-outs and bundle messages fail
// with OFPBRC_IS_SLAVE and it receives no packet-ins. Like OVS, passive
// connections receive no asynchronous message until they send SET_ASYNC or
// a SET_CONFIG with a miss_send_len.
//
// Not emulated: packet processing, timeouts, groups and meters, and
// matching on fields (non-strict modify and delete, flow stats requests
// with match fields or out_port filters), which are refused with
// OFPBRC_EPERM rather than done wrong.
package openflowtest

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Defaults of Config: the backoff of OVS's connections to its controllers
// (rconn), which starts at one second and stops doubling at max_backoff.
const (
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 8 * time.Second
)

// Config describes a switch.
type Config struct {
	DatapathID uint64
	Ports      []ofconn.Port // a port without HWAddr gets a local address
	// Flows are installed before any controller connects; they count as
	// no flow-mod.
	Flows []flows.Flow
	// Backoff is the first wait before redialling a controller whose
	// connection ended; it doubles up to MaxBackoff while connections fail
	// or end quickly. Zero: the defaults.
	Backoff, MaxBackoff time.Duration
}

// TunnelBridge is host h's br-tun as apply leaves it for a controller: its
// datapath ID, the patch port, a tunnel port per peer (numbered by alloc)
// and the allocation advertisement in table 250.
func TunnelBridge(t *topology.Topology, h *topology.Host, alloc topology.Allocation) Config {
	c := Config{DatapathID: topology.BridgeDatapathID(t.Name, h.Name, topology.BridgeTun)}
	c.Ports = append(c.Ports, ofconn.Port{No: topology.PatchOFPort, Name: topology.PatchTun})
	for _, p := range t.Peers(h) {
		c.Ports = append(c.Ports, ofconn.Port{No: alloc.TunnelOFPort[p.Name], Name: topology.TunnelPortName(p.Name)})
	}
	c.Flows = flows.CompileAllocation(alloc)
	return c
}

// IntegrationBridge is host h's br-int as apply leaves it: its datapath ID
// and the patch port, numbered 1 as OVS numbers a bridge's first port.
func IntegrationBridge(t *topology.Topology, h *topology.Host) Config {
	return Config{
		DatapathID: topology.BridgeDatapathID(t.Name, h.Name, topology.BridgeInt),
		Ports:      []ofconn.Port{{No: 1, Name: topology.PatchInt}},
	}
}

// Switch is an emulated OpenFlow 1.3 switch. Its methods are safe for
// concurrent use.
type Switch struct {
	dpid                uint64
	backoff, maxBackoff time.Duration

	mu          sync.Mutex
	ports       []ofconn.Port
	table       map[string]*entry
	conns       map[*Conn]bool
	election    uint64 // the newest generation ID seen, when electionSet
	electionSet bool
	pending     bool                  // the watched flow was installed, not yet acknowledged
	reject      func(flows.Flow) bool // RejectFlowMods

	watch atomic.Pointer[watch]

	flowMods, bundles, barriers, packetOuts atomic.Uint64
	errorsSent, roleRequests, reconnects    atomic.Uint64
	lastMod                                 atomic.Int64 // Unix ns of the last flow-mod applied

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// watch is a flow a caller waits to see acknowledged.
type watch struct {
	table uint8
	match []byte
	ack   func(time.Time)
	done  atomic.Bool
}

// New makes a switch with c's ports and flows, connected to nothing.
func New(c Config) (*Switch, error) {
	s := &Switch{
		dpid: c.DatapathID, backoff: c.Backoff, maxBackoff: c.MaxBackoff,
		ports: slices.Clone(c.Ports), table: map[string]*entry{}, conns: map[*Conn]bool{},
		stop: make(chan struct{}),
	}
	if s.backoff <= 0 {
		s.backoff = DefaultBackoff
	}
	if s.maxBackoff < s.backoff {
		s.maxBackoff = max(DefaultMaxBackoff, s.backoff)
	}
	if err := s.Install(c.Flows); err != nil {
		return nil, err
	}
	return s, nil
}

// DatapathID is the switch's datapath ID.
func (s *Switch) DatapathID() uint64 { return s.dpid }

// Install adds fl to the table as OVS would, behind every controller's back:
// no flow-mod is counted and nothing is acknowledged.
func (s *Switch) Install(fl []flows.Flow) error {
	mods := make([]flowMod, len(fl))
	for i, f := range fl {
		fm, err := ofcodec.FlowMod(f, ofcodec.CommandAdd)
		if err != nil {
			return fmt.Errorf("installing %q in switch %016x: %w", f.String(), s.dpid, err)
		}
		b, err := ofconn.Marshal(fm, 0)
		if err != nil {
			return fmt.Errorf("installing %q in switch %016x: %w", f.String(), s.dpid, err)
		}
		var e ofError
		if mods[i], e = parseFlowMod(b); e != errNone {
			return fmt.Errorf("installing %q in switch %016x: refused with error type %d code %d", f.String(), s.dpid, e.typ(), e.code())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range mods {
		s.table[flowKey(p.table, p.prio, p.oxm)] = newEntry(p)
	}
	return nil
}

// flow decodes an installed flow.
func (s *Switch) flow(e *entry) (flows.Flow, error) {
	f, err := decodeEntry(e.stats)
	if err != nil {
		return flows.Flow{}, fmt.Errorf("switch %016x: %w", s.dpid, err)
	}
	return f, nil
}

// Flows returns every installed flow, sorted by flows.Sort.
func (s *Switch) Flows() ([]flows.Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fl := make([]flows.Flow, 0, len(s.table))
	for _, e := range s.table {
		f, err := s.flow(e)
		if err != nil {
			return nil, err
		}
		fl = append(fl, f)
	}
	flows.Sort(fl)
	return fl, nil
}

// Dump returns every installed flow as `ovs-ofctl -O OpenFlow13 dump-flows
// --no-stats` prints it, sorted as text.
func (s *Switch) Dump() ([]string, error) {
	fl, err := s.Flows()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.String()
	}
	sort.Strings(out)
	return out, nil
}

// FlowCount is how many flows the switch holds.
func (s *Switch) FlowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.table)
}

// TableBytes is the size of the flow table's entries (the emulator's own
// memory share, for benchmarks).
func (s *Switch) TableBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.table {
		n += len(k) + len(e.stats)
	}
	return n
}

// RemoveFlows deletes the flows pred selects, behind every controller's
// back (as `ovs-ofctl del-flows` or a restarted ovs-vswitchd would); it
// returns how many.
func (s *Switch) RemoveFlows(pred func(flows.Flow) bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.table {
		f, err := s.flow(e)
		if err != nil {
			return n, err
		}
		if pred(f) {
			delete(s.table, k)
			n++
		}
	}
	return n, nil
}

// AddPackets adds n to the packet count of the flows pred selects (what
// traffic through them would do); it returns how many flows it counted on.
func (s *Switch) AddPackets(pred func(flows.Flow) bool, n uint64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hit := 0
	for _, e := range s.table {
		f, err := s.flow(e)
		if err != nil {
			return hit, err
		}
		if pred(f) {
			// A new entry: dumps under way share the old one.
			st := slices.Clone(e.stats)
			binary.BigEndian.PutUint64(st[32:], binary.BigEndian.Uint64(st[32:])+n)
			e.stats, e.oxm = st, st[52:52+len(e.oxm)]
			hit++
		}
	}
	return hit, nil
}

// RejectFlowMods makes the switch refuse, with OFPFMFC_EPERM, every flow-mod
// about a flow pred selects (for deletes, a flow without actions), when it
// applies it: at once, or at the commit of the bundle that holds it, which
// then changes nothing. nil accepts everything again.
func (s *Switch) RejectFlowMods(pred func(flows.Flow) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = pred
}

// Watch calls ack once, with the time, when a flow-mod that installs a flow
// in table whose OXM match contains the bytes match (a MAC address, say)
// has been acknowledged: followed by a barrier, or committed in a bundle.
// A nil ack stops watching.
func (s *Switch) Watch(table uint8, match []byte, ack func(time.Time)) {
	s.mu.Lock()
	s.pending = false
	s.mu.Unlock()
	if ack == nil {
		s.watch.Store(nil)
		return
	}
	s.watch.Store(&watch{table: table, match: slices.Clone(match), ack: ack})
}

// acknowledge reports the watched flow once a flow-mod installing it has
// been followed by a barrier or a bundle commit.
func (s *Switch) acknowledge() {
	s.mu.Lock()
	due := s.pending
	s.pending = false
	s.mu.Unlock()
	if !due {
		return
	}
	if w := s.watch.Load(); w != nil && w.done.CompareAndSwap(false, true) {
		w.ack(time.Now())
	}
}

// Counters are what the switch received since it was made.
type Counters struct {
	FlowMods     uint64 // flow-mods applied, alone or in a committed bundle
	Bundles      uint64 // bundles committed
	Barriers     uint64
	PacketOuts   uint64
	RoleRequests uint64
	Errors       uint64 // error replies sent
	Reconnects   uint64 // connections to a controller that ended and were redialled
}

// Counters returns the counts so far.
func (s *Switch) Counters() Counters {
	return Counters{
		FlowMods: s.flowMods.Load(), Bundles: s.bundles.Load(), Barriers: s.barriers.Load(),
		PacketOuts: s.packetOuts.Load(), RoleRequests: s.roleRequests.Load(), Errors: s.errorsSent.Load(),
		Reconnects: s.reconnects.Load(),
	}
}

// LastFlowMod is when a flow-mod was last applied (zero: never).
func (s *Switch) LastFlowMod() time.Time {
	if ns := s.lastMod.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Ports returns the switch's ports.
func (s *Switch) Ports() []ofconn.Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ports)
}

// SetPorts replaces the switch's ports and tells the connections that take
// asynchronous messages, as OVS does: a port-status for each port added,
// deleted or changed.
func (s *Switch) SetPorts(ports []ofconn.Port) {
	s.mu.Lock()
	old := s.ports
	s.ports = slices.Clone(ports)
	s.mu.Unlock()
	var msgs [][]byte
	byNo := map[uint32]ofconn.Port{}
	for _, p := range old {
		byNo[p.No] = p
	}
	for _, p := range ports {
		was, ok := byNo[p.No]
		delete(byNo, p.No)
		switch {
		case !ok:
			msgs = append(msgs, portStatus(portAdded, p, s.dpid))
		case string(portDesc(was, s.dpid)) != string(portDesc(p, s.dpid)):
			msgs = append(msgs, portStatus(portModified, p, s.dpid))
		}
	}
	for _, p := range old {
		if _, gone := byNo[p.No]; gone {
			msgs = append(msgs, portStatus(portDeleted, p, s.dpid))
		}
	}
	for _, c := range s.asyncConns(false) {
		c.send(msgs...)
	}
}

// SendPacketIn sends pi to every connection that takes packet-ins (not the
// slaves); it returns how many.
func (s *Switch) SendPacketIn(pi PacketIn) int {
	m := pi.encode()
	cs := s.asyncConns(true)
	for _, c := range cs {
		c.send(m)
	}
	return len(cs)
}
