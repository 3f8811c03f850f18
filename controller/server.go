package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Defaults of ServerOptions.
const (
	DefaultMACIdle          = 300 * time.Second
	DefaultAgeInterval      = 10 * time.Second
	DefaultRepairInterval   = 60 * time.Second
	DefaultGrace            = 3 * time.Second
	DefaultEchoInterval     = 5 * time.Second
	DefaultEchoMisses       = 3
	DefaultPacketInRate     = 100  // per switch, per second
	DefaultPacketInBurst    = 200  // per switch
	DefaultGlobalRate       = 1000 // all switches, per second
	DefaultGlobalBurst      = 2000
	DefaultMaxLearned       = 65536
	DefaultReconcileTimeout = 30 * time.Second
)

// ServerOptions configure a controller. Zero durations and rates take the
// defaults above.
type ServerOptions struct {
	Topology *topology.Topology
	// Listen are the addresses to listen on (ParseListen: tcp:IP:PORT or
	// ssl:IP:PORT); ssl: needs TLS (TLSFiles.Config).
	Listen []string
	TLS    *tls.Config
	// Listeners are already listening (socket activation, tests that listen
	// inside a network namespace); they are served as they are and closed
	// when Run returns.
	Listeners []net.Listener
	// MetricsListen is where Prometheus metrics are served (IP:PORT, path
	// /metrics); empty: not served. Registry is where they are registered
	// (nil: a new one).
	MetricsListen string
	Registry      *prometheus.Registry
	Log           *zap.Logger

	MACIdle     time.Duration // a learned MAC idle this long is forgotten
	AgeInterval time.Duration // how often activity is read and switches re-checked
	// RepairInterval: how often a br-tun kept up to date incrementally
	// is reconciled in full anyway (repairing changes made behind the
	// controller's back), give or take a random half of it so that the
	// switches' repairs spread out; at least AgeInterval.
	RepairInterval   time.Duration
	Grace            time.Duration // how long first reconciles wait for every switch to connect
	EchoInterval     time.Duration // keepalive period
	EchoMisses       int           // unanswered echoes before a switch is dropped
	PacketInRate     float64       // packet-ins per second per switch
	PacketInBurst    int
	GlobalRate       float64 // packet-ins per second, all switches
	GlobalBurst      int
	MaxLearned       int // bound on learned MACs
	ReconcileTimeout time.Duration
}

func (o *ServerOptions) defaults() {
	setDefault(&o.MACIdle, DefaultMACIdle)
	setDefault(&o.AgeInterval, DefaultAgeInterval)
	setDefault(&o.RepairInterval, DefaultRepairInterval)
	o.RepairInterval = max(o.RepairInterval, o.AgeInterval)
	setDefault(&o.Grace, DefaultGrace)
	setDefault(&o.EchoInterval, DefaultEchoInterval)
	setDefault(&o.ReconcileTimeout, DefaultReconcileTimeout)
	setDefault(&o.EchoMisses, DefaultEchoMisses)
	setDefault(&o.PacketInRate, DefaultPacketInRate)
	setDefault(&o.PacketInBurst, DefaultPacketInBurst)
	setDefault(&o.GlobalRate, DefaultGlobalRate)
	setDefault(&o.GlobalBurst, DefaultGlobalBurst)
	setDefault(&o.MaxLearned, DefaultMaxLearned)
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
}

// setDefault sets *v to d unless it is already positive.
func setDefault[T int | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// switchID is what a datapath ID stands for.
type switchID struct {
	host   *topology.Host
	bridge string
	dpid   uint64
}

// Server is the OpenFlow controller of a topology's switches: br-tun and
// br-int of every controller-mode host, told apart by datapath ID
// (ovsdb.BridgeDatapathID); any other switch is refused.
//
// br-int gets the compiled NORMAL flow. br-tun gets the compiled pipeline
// plus CompileEndpoints of the knowledge: declared MACs and IPs, MACs learned
// from table 1's reports of unknown local sources (rate-limited per switch
// and overall), and the IPv4 addresses those reports announce in ARP. Every
// change of the knowledge marks the br-tun of every host of the network
// dirty; each switch's goroutine reconciles (dump, diff, one bundle) with
// coalescing, so a slow switch delays only itself.
//
// On connect, br-tun's local VLANs are read from apply's table-250
// advertisement and its tunnel ports from the port descriptions, and the
// controller flows it already holds are adopted into the knowledge, so a
// restarted controller computes the same flows and sends nothing. First
// reconciles wait until every br-tun connected or the grace period ended.
//
// Known limit: an IP is learned only from an ARP reported while its source
// is still unknown (the source's known-source flows stop the reports), so a
// VM whose first frames are not ARP (IPv6 neighbour discovery, DHCP) gets no
// ARP responder for its address on the other hosts; ARP for it still floods
// to the network's members and is answered.
type Server struct {
	o    ServerOptions
	t    *topology.Topology
	log  *zap.Logger
	know *Knowledge
	met  *metrics

	ids      map[uint64]switchID // the switches we serve
	learnIDs map[uint64]switchID // bridges of learn-mode hosts: refused with a reason
	vniHosts map[uint32][]string // VNI -> controller-mode hosts with ports in it
	tunHosts []string            // controller-mode hosts, whose br-tun the grace waits for
	global   *tokenBucket

	addrs       []net.Addr
	metricsAddr net.Addr

	mu       sync.Mutex
	sessions map[uint64]*session
	adopted  map[string]bool
	allocs   map[string]topology.Allocation // the last complete allocation read from each host
	released chan struct{}
	relOnce  sync.Once

	refusals  []Refusal // the last maxRefusals, oldest first
	refusedAt map[string]time.Time

	flowMods, bundles, refused atomic.Uint64
	packetIns                  sync.Map // result -> *atomic.Uint64
}

// NewServer checks the options and computes the switches' identities;
// nothing listens until Run.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Topology == nil {
		return nil, errors.New("controller: no topology")
	}
	o.defaults()
	t := o.Topology
	s := &Server{
		o: o, t: t, log: o.Log,
		know:      NewKnowledge(flows.DeclaredEndpoints(t), o.MaxLearned),
		ids:       map[uint64]switchID{},
		learnIDs:  map[uint64]switchID{},
		vniHosts:  map[uint32][]string{},
		global:    newTokenBucket(o.GlobalRate, o.GlobalBurst),
		sessions:  map[uint64]*session{},
		adopted:   map[string]bool{},
		allocs:    map[string]topology.Allocation{},
		refusedAt: map[string]time.Time{},
		released:  make(chan struct{}),
	}
	for _, h := range t.ManagedHosts() {
		for _, br := range []string{flows.BridgeTun, flows.BridgeInt} {
			id := switchID{host: h, bridge: br, dpid: ovsdb.BridgeDatapathID(t.Name, h.Name, br)}
			if h.Mode == topology.ModeController {
				s.ids[id.dpid] = id
			} else {
				s.learnIDs[id.dpid] = id
			}
		}
		if h.Mode != topology.ModeController {
			continue
		}
		s.tunHosts = append(s.tunHosts, h.Name)
		for _, n := range t.NetworksOn(h) {
			s.vniHosts[n.VNI] = append(s.vniHosts[n.VNI], h.Name)
		}
	}
	s.met = newMetrics(o.Registry, s.know)
	return s, nil
}

// Serve runs a controller until ctx is cancelled.
func Serve(ctx context.Context, o ServerOptions) error {
	s, err := NewServer(o)
	if err != nil {
		return err
	}
	return s.Run(ctx, nil)
}

// Run listens, serves switches and returns when ctx is cancelled (nil) or
// a listener could not be opened. ready, when not nil, is called once every
// listener is open.
func (s *Server) Run(ctx context.Context, ready func()) error {
	listeners := slices.Clone(s.o.Listeners)
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, spec := range s.o.Listen {
		la, err := ParseListen(spec)
		if err != nil {
			closeAll()
			return err
		}
		l, err := Listen(la, s.o.TLS)
		if err != nil {
			closeAll()
			return err
		}
		listeners = append(listeners, l)
	}
	if len(listeners) == 0 {
		return errors.New("controller: nothing to listen on (give --listen tcp:IP:PORT)")
	}
	var metricsSrv *http.Server
	if s.o.MetricsListen != "" {
		ap, err := ParseMetricsListen(s.o.MetricsListen)
		if err != nil {
			closeAll()
			return err
		}
		ml, err := net.Listen("tcp", ap.String())
		if err != nil {
			closeAll()
			return fmt.Errorf("listening for metrics on %s: %w", ap, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.o.Registry, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.metricsAddr = ml.Addr()
		go metricsSrv.Serve(ml)
	}
	for _, l := range listeners {
		s.addrs = append(s.addrs, l.Addr())
	}
	if len(s.tunHosts) == 0 {
		s.log.Warn("no managed host of the topology is in controller mode: no switch will be served", zap.String("topology", s.t.Name))
	}
	fields := []zap.Field{zap.String("topology", s.t.Name), zap.Stringers("listen", s.addrs), zap.Int("switches", len(s.ids))}
	if s.metricsAddr != nil {
		fields = append(fields, zap.Stringer("metrics", s.metricsAddr))
	}
	s.log.Info("controller listening", fields...)
	if ready != nil {
		ready()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	grace := time.AfterFunc(s.o.Grace, func() { s.release("grace period over") })
	defer grace.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.expireLoop(ctx)
	}()
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.acceptLoop(ctx, l, &wg)
		}()
	}
	<-ctx.Done()
	closeAll()
	s.mu.Lock()
	open := slices.Collect(maps.Values(s.sessions))
	s.mu.Unlock()
	for _, sess := range open {
		sess.close("controller stopping")
	}
	wg.Wait()
	if metricsSrv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		metricsSrv.Shutdown(sctx)
		scancel()
	}
	s.log.Info("controller stopped")
	return nil
}

func (s *Server) acceptLoop(ctx context.Context, l net.Listener, wg *sync.WaitGroup) {
	delay := 5 * time.Millisecond
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			s.log.Warn("accepting a connection", zap.Error(err))
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, nc)
		}()
	}
}

// handshakeTimeout bounds TLS and OpenFlow handshakes: a peer that says
// nothing must not hold a goroutine for long.
const handshakeTimeout = 10 * time.Second

// handle identifies a new connection and serves it until it ends.
func (s *Server) handle(ctx context.Context, nc net.Conn) {
	remote := nc.RemoteAddr().String()
	if tc, ok := nc.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.refuse(0, remote, "tls", fmt.Sprintf("TLS handshake failed: %v", err))
			nc.Close()
			return
		}
	}
	conn := ofconn.NewConn(nc, s.log.With(zap.String("remote", remote)))
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := conn.Handshake(hctx)
	cancel()
	if err != nil {
		conn.Close()
		s.refuse(0, remote, "handshake", fmt.Sprintf("OpenFlow handshake failed: %v", err))
		return
	}
	dpid := conn.DatapathID()
	id, ok := s.ids[dpid]
	if !ok {
		conn.Close()
		if lid, learn := s.learnIDs[dpid]; learn {
			s.refuse(dpid, remote, "learn-mode", fmt.Sprintf("%s of host %s, which is in learn mode in topology %s", lid.bridge, lid.host.Name, s.t.Name))
		} else {
			s.refuse(dpid, remote, "unknown", fmt.Sprintf("datapath ID is not a switch of topology %s", s.t.Name))
		}
		return
	}
	sess := newSession(s, id, conn, remote)
	s.mu.Lock()
	old := s.sessions[dpid]
	s.sessions[dpid] = sess
	s.mu.Unlock()
	if old != nil {
		old.close("replaced by a new connection from the same switch")
	}
	sess.run(ctx)
	s.mu.Lock()
	if s.sessions[dpid] == sess {
		delete(s.sessions, dpid)
	}
	s.mu.Unlock()
}

// refuse logs and counts a connection that gets nothing.
func (s *Server) refuse(dpid uint64, remote, reason, detail string) {
	s.refused.Add(1)
	s.mu.Lock()
	if len(s.refusals) == maxRefusals {
		s.refusals = slices.Delete(s.refusals, 0, 1)
	}
	s.refusals = append(s.refusals, Refusal{Time: time.Now(), DatapathID: dpid, Remote: remote, Reason: detail})
	s.mu.Unlock()
	s.met.refused.WithLabelValues(reason).Inc()
	fields := []zap.Field{zap.String("remote", remote), zap.String("reason", detail)}
	if dpid != 0 {
		fields = append(fields, zap.String("dpid", fmt.Sprintf("%016x", dpid)))
	}
	// A refused switch retries every few seconds for ever: warn once a
	// minute per switch (or per address, before its identity is known).
	who := fmt.Sprintf("%016x", dpid)
	if host, _, err := net.SplitHostPort(remote); err == nil && dpid == 0 {
		who = host
	}
	s.mu.Lock()
	last, seen := s.refusedAt[who]
	quiet := seen && time.Since(last) < time.Minute
	if !quiet {
		if len(s.refusedAt) >= 1024 { // bounded, whoever keeps knocking
			clear(s.refusedAt)
		}
		s.refusedAt[who] = time.Now()
	}
	s.mu.Unlock()
	if quiet {
		s.log.Debug("switch refused again", fields...)
		return
	}
	s.log.Warn("switch refused", fields...)
}

// maxRefusals is how many refusals Refusals remembers.
const maxRefusals = 64

// Refusal is a connection the controller refused.
type Refusal struct {
	Time       time.Time
	DatapathID uint64 // 0 when refused before the OpenFlow handshake
	Remote     string
	Reason     string
}

// Refusals returns the most recent refusals, oldest first.
func (s *Server) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refusals)
}

// adoptedHost records that host's br-tun took in its flows; once every
// controller-mode host has, the first reconciles may run.
func (s *Server) adoptedHost(host string) {
	s.mu.Lock()
	s.adopted[host] = true
	all := true
	for _, h := range s.tunHosts {
		all = all && s.adopted[h]
	}
	s.mu.Unlock()
	if all {
		s.release("every switch connected")
	}
}

func (s *Server) rememberAlloc(host string, a topology.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allocs[host] = a
}

func (s *Server) lastAlloc(host string) (topology.Allocation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.allocs[host]
	return a, ok
}

func (s *Server) release(why string) {
	s.relOnce.Do(func() {
		s.log.Debug("first reconciles released", zap.String("why", why))
		close(s.released)
	})
}

// changed logs and counts knowledge events and marks the br-tun of every
// host of the networks concerned dirty.
func (s *Server) changed(ev []Event, when time.Time) {
	if len(ev) == 0 {
		return
	}
	vnis := map[uint32]bool{}
	for _, e := range ev {
		vnis[e.Key.VNI] = true
		s.met.macEvents.WithLabelValues(e.Kind.String()).Inc()
		fields := []zap.Field{zap.Uint32("vni", e.Key.VNI), zap.Stringer("mac", e.Key.HardwareAddr()), zap.String("host", e.Host)}
		if e.IP.IsValid() {
			fields = append(fields, zap.Stringer("ip", e.IP))
		}
		switch e.Kind {
		case EventMoved:
			s.log.Info("MAC moved", append(fields, zap.String("from", e.OldHost))...)
		case EventForgotten:
			s.log.Info("MAC forgotten (idle)", fields...)
		case EventLearned:
			s.log.Info("MAC learned", fields...)
		default:
			s.log.Debug("MAC "+e.Kind.String(), fields...)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	marked := map[string]bool{}
	for vni := range vnis {
		for _, h := range s.vniHosts[vni] {
			if marked[h] {
				continue
			}
			marked[h] = true
			if sess := s.sessions[ovsdb.BridgeDatapathID(s.t.Name, h, flows.BridgeTun)]; sess != nil {
				sess.markChanged(when)
			}
		}
	}
}

// live reports whether host's br-tun is connected and reading activity.
func (s *Server) live(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[ovsdb.BridgeDatapathID(s.t.Name, host, flows.BridgeTun)]
	return sess != nil && sess.ready.Load()
}

func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(s.o.AgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.changed(s.know.Expire(now, s.o.MACIdle, s.live), now)
		}
	}
}

// Knowledge is what the controller knows about endpoints.
func (s *Server) Knowledge() *Knowledge { return s.know }

// Addrs are the addresses the controller listens on (after Run's ready).
func (s *Server) Addrs() []net.Addr { return s.addrs }

// MetricsAddr is where metrics are served, or nil.
func (s *Server) MetricsAddr() net.Addr { return s.metricsAddr }

// Registry holds the controller's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.o.Registry }

// SwitchState describes a connected switch.
type SwitchState struct {
	Host       string
	Bridge     string
	DatapathID uint64
	Remote     string
	// Synced: at least one reconcile succeeded on this connection; then
	// SyncedVersion is the knowledge version it reflected.
	Synced        bool
	SyncedVersion uint64
	Flows         int    // flows the controller keeps on the switch
	FlowMods      uint64 // sent on this connection
	Bundles       uint64
	LastError     string // of the last reconcile, "" when it succeeded
}

// Switches lists the connected switches, by host then bridge.
func (s *Server) Switches() []SwitchState {
	s.mu.Lock()
	var out []SwitchState
	for _, sess := range s.sessions {
		out = append(out, sess.snapshot())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Bridge < out[j].Bridge
	})
	return out
}

// Stats are totals since the controller started.
type Stats struct {
	FlowMods  uint64
	Bundles   uint64
	Refused   uint64
	PacketIns map[string]uint64 // by result (learned, moved, refreshed, rate_limited, ...)
}

// Stats returns the totals so far.
func (s *Server) Stats() Stats {
	st := Stats{FlowMods: s.flowMods.Load(), Bundles: s.bundles.Load(), Refused: s.refused.Load(), PacketIns: map[string]uint64{}}
	s.packetIns.Range(func(k, v any) bool {
		st.PacketIns[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return st
}

func (s *Server) countPacketIn(host, result string) {
	s.met.packetIns.WithLabelValues(host, result).Inc()
	v, _ := s.packetIns.LoadOrStore(result, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}
