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
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/health"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
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
	DefaultMaxLearnedPerVNI = 8192
	DefaultFlapMoves        = 4
	DefaultFlapWindow       = 10 * time.Second
	DefaultFlapHold         = 60 * time.Second
	DefaultReconcileTimeout = 30 * time.Second
	// A connection not yet identified holds a goroutine or three and a few
	// KiB for at most handshakeTimeout.
	DefaultMaxPending          = 1024
	DefaultMaxPendingPerSource = 256
	// Flow dumps being gathered from all switches together; one is
	// bounded by ofconn.MaxMultipartBytes.
	DefaultReplyBudget = 64 << 20
)

// ServerOptions configure a controller. Zero durations and rates take the
// defaults above.
type ServerOptions struct {
	Topology *topology.Topology
	// Listen are the addresses to listen on (ParseListen: tcp:IP:PORT or
	// ssl:IP:PORT); ssl: needs TLS (TLSFiles.Config).
	Listen []string
	TLS    *tls.Config
	// HardwareVTEPTLS is the client side of ssl: hardware_vtep databases
	// (ovsdb.ClientTLS of the same files); nil: such targets are refused.
	HardwareVTEPTLS *tls.Config
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
	// Version is ovs-vxctl's version: the label of ovs_vxctl_build_info.
	Version string

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
	MaxLearned       int // bound on learned MACs, all networks
	MaxLearnedPerVNI int // bound on learned MACs of one network
	// Flap damping (Limits): a learned MAC moving more than FlapMoves
	// times within FlapWindow stays where it is for FlapHold.
	FlapMoves        int
	FlapWindow       time.Duration
	FlapHold         time.Duration
	ReconcileTimeout time.Duration
	// Connections accepted and not yet identified (TLS and OpenFlow
	// handshakes, identity checks), in all and from one IP address
	// (loopback excepted); more are refused.
	MaxPending          int
	MaxPendingPerSource int
	// StateFile is where the controller keeps the local VLANs it last read
	// from each host's advertisement (JSON, rewritten when they change),
	// so that after its own restart it can still rebuild the advertisement
	// of a switch that lost every flow (ovs-vswitchd restarted too).
	// Empty: it remembers them only while it runs.
	StateFile string
	// ReplyBudget bounds the bytes of the multipart replies (flow dumps)
	// being gathered from all switches together: past it, the switch
	// with the largest reply is dropped (ofconn.ReplyBudget).
	ReplyBudget int
	// MaxFullReconciles bounds the full reconciles and adoptions under
	// way at once (fullSlots); 0: twice GOMAXPROCS.
	MaxFullReconciles int

	// Replicas (replica.go, mastership.go). Name is this replica's name in
	// the directory (default: HOSTNAME@ the first listen address).
	// Directory are the directory cluster's members (tcp:IP:PORT or
	// ssl:IP:PORT; default: the topology's directory: list); with none,
	// this controller programs every switch alone, roles untouched.
	// DirectoryTLS is the TLS configuration of ssl: members.
	// OpenDirectory, when set, opens the directory instead (tests inject
	// one).
	Name          string
	Directory     []string
	DirectoryTLS  *tls.Config
	OpenDirectory func(DirectoryHooks) (Directory, error)
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
	setDefault(&o.MaxLearnedPerVNI, DefaultMaxLearnedPerVNI)
	setDefault(&o.FlapMoves, DefaultFlapMoves)
	setDefault(&o.FlapWindow, DefaultFlapWindow)
	setDefault(&o.FlapHold, DefaultFlapHold)
	setDefault(&o.MaxPending, DefaultMaxPending)
	setDefault(&o.MaxPendingPerSource, DefaultMaxPendingPerSource)
	setDefault(&o.ReplyBudget, DefaultReplyBudget)
	setDefault(&o.MaxFullReconciles, defaultFullSlots())
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
	t      *topology.Topology // the topology host is of
	host   *topology.Host
	bridge string
	dpid   uint64
}

// Server is the OpenFlow controller of a topology's switches: br-tun and
// br-int of every controller-mode host, told apart by datapath ID
// (topology.BridgeDatapathID); any other switch is refused.
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
// Identity: a connected switch that answers an echo request keeps its
// datapath ID against any newcomer claiming it (claim); over ssl: the
// certificate must also name the host. Declared MACs never move; learned
// ones are bounded and damped when they flap (Limits). Connections not yet
// identified are bounded in number, replies in size (admit, ReplyBudget).
//
// Known limit: an IP is learned only from an ARP reported while its source
// is still unknown (the source's known-source flows stop the reports), so a
// VM whose first frames are not ARP (IPv6 neighbour discovery, DHCP) gets no
// ARP responder for its address on the other hosts; ARP for it still floods
// to the network's members and is answered.
type Server struct {
	o    ServerOptions
	log  *zap.Logger
	know *Knowledge
	met  *metrics
	// name is this replica's; dir the directory it shares knowledge and
	// switches through, nil without one (set by Run before any session).
	name   string
	dir    Directory
	joined time.Time // when Run joined the directory (joinSettle)
	// gaveUp: switches whose connection this replica lost as master
	// (mastership.go), so it lets others claim them first.
	gaveUp releaseLog

	// cur is the topology served and what derives from it, swapped whole
	// by Reload (reload.go).
	cur    atomic.Pointer[topoState]
	reload *reloader
	hw     *hwvtepRunner // the hardware VTEP loops (hwvtep.go)
	global *tokenBucket

	addrs       []net.Addr
	metricsAddr net.Addr

	mu       sync.Mutex
	sessions map[uint64]*session
	adopted  map[string]bool
	allocs   map[string]topology.Allocation // the last complete allocation read from each host
	mem      *allocMemory                   // their local VLANs, kept in StateFile (its own lock)
	released chan struct{}
	relOnce  sync.Once

	refusals []Refusal // the last maxRefusals, oldest first
	// Connections not yet identified, in all and by source address
	// (admit), and the datapath IDs whose holder is being probed (claim).
	pending      int
	pendingBySrc map[string]int
	pendingConns map[*pendingConn]struct{} // admitted, for evictStalled
	claiming     map[uint64]bool
	probeTimeout time.Duration
	replyBudget  *ofconn.ReplyBudget
	full         *fullSlots
	// logOnce keeps what repeats (refusals of a switch that retries,
	// conflicts reported with every packet) to a line in a while.
	logOnce *throttle
	// macLog summarises per-MAC lines beyond a few a second (learnlog.go).
	macLog *macLogLimiter

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
		o: o, log: o.Log, name: replicaName(o),
		know: NewKnowledge(flows.DeclaredEndpoints(t), Limits{MaxLearned: o.MaxLearned, MaxLearnedPerVNI: o.MaxLearnedPerVNI,
			FlapMoves: o.FlapMoves, FlapWindow: o.FlapWindow, FlapHold: o.FlapHold}),
		global:       newTokenBucket(o.GlobalRate, o.GlobalBurst),
		sessions:     map[uint64]*session{},
		adopted:      map[string]bool{},
		allocs:       map[string]topology.Allocation{},
		pendingBySrc: map[string]int{},
		pendingConns: map[*pendingConn]struct{}{},
		claiming:     map[uint64]bool{},
		probeTimeout: claimProbeTimeout,
		replyBudget:  ofconn.NewReplyBudget(o.ReplyBudget),
		full:         newFullSlots(o.MaxFullReconciles),
		logOnce:      newThrottle(logInterval),
		macLog:       newMACLogLimiter(macLogPerSecond),
		released:     make(chan struct{}),
	}
	s.cur.Store(newTopoState(t))
	s.met = newMetrics(o.Registry, s.know)
	s.met.registerReplica(o.Registry, s.DirectoryConnected)
	s.initHostMetrics(s.topo())
	s.reload = newReloader(o.Registry)
	s.hw = newHWVTEPRunner(o.Registry)
	if err := s.checkHardwareVTEPs(t); err != nil {
		return nil, err
	}
	if err := health.RegisterRuntime(o.Registry, o.Version); err != nil {
		return nil, err
	}
	s.mem = newAllocMemory(o.StateFile, t, o.Log)
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
	listeners, err := s.listen()
	if err != nil {
		return err
	}
	// The directory before the metrics: its gauge reads s.dir.
	dir, err := s.openDirectory()
	if err != nil {
		closeListeners(listeners)
		return err
	}
	if dir != nil {
		s.dir = dir
		defer dir.Close()
	}
	metricsSrv, err := s.serveMetrics()
	if err != nil {
		closeListeners(listeners)
		return err
	}
	s.announce(listeners)
	if ready != nil {
		ready()
	}
	if dir != nil {
		if err := s.joinDirectory(ctx); err != nil {
			closeListeners(listeners)
			if metricsSrv != nil {
				metricsSrv.Close()
			}
			s.mem.close()
			return err
		}
	}
	s.serve(ctx, listeners)
	if metricsSrv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		metricsSrv.Shutdown(sctx)
		scancel()
	}
	s.mem.close()
	s.log.Info("controller stopped")
	return nil
}

// listen opens the listeners of the options (the Listen specs after the
// Listeners given open): all of them, or none and an error.
func (s *Server) listen() ([]net.Listener, error) {
	listeners := slices.Clone(s.o.Listeners)
	for _, spec := range s.o.Listen {
		la, err := ParseListen(spec)
		if err != nil {
			closeListeners(listeners)
			return nil, err
		}
		l, err := Listen(la, s.o.TLS)
		if err != nil {
			closeListeners(listeners)
			return nil, err
		}
		listeners = append(listeners, l)
	}
	if len(listeners) == 0 {
		return nil, errors.New("controller: nothing to listen on (give --listen tcp:IP:PORT)")
	}
	return listeners, nil
}

func closeListeners(listeners []net.Listener) {
	for _, l := range listeners {
		l.Close()
	}
}

// serveMetrics serves Prometheus metrics when MetricsListen asks for it;
// the server is nil otherwise.
func (s *Server) serveMetrics() (*http.Server, error) {
	if s.o.MetricsListen == "" {
		return nil, nil
	}
	ap, err := ParseMetricsListen(s.o.MetricsListen)
	if err != nil {
		return nil, err
	}
	ml, err := listenTCP(ap.String(), bindRetry)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w", ap, err)
	}
	// /healthz and /readyz too (NotReady, health.go).
	srv := health.Server(health.Mux(s.o.Registry, s.NotReady))
	s.metricsAddr = ml.Addr()
	go srv.Serve(ml)
	return srv, nil
}

// announce records the addresses listened on (Addrs) and logs them, with a
// warning when no switch of the topology can be served.
func (s *Server) announce(listeners []net.Listener) {
	for _, l := range listeners {
		s.addrs = append(s.addrs, l.Addr())
	}
	st := s.topo()
	if len(st.tunHosts) == 0 {
		s.log.Warn("no managed host of the topology is in controller mode: no switch will be served", zap.String("topology", st.t.Name))
	}
	fields := []zap.Field{zap.String("topology", st.t.Name), zap.Stringers("listen", s.addrs), zap.Int("switches", len(st.ids))}
	if s.metricsAddr != nil {
		fields = append(fields, zap.Stringer("metrics", s.metricsAddr))
	}
	s.log.Info("controller listening", fields...)
}

// serve runs the expiry loop and an accept loop per listener until ctx
// ends, then closes the listeners and every session and waits for all of
// their goroutines.
func (s *Server) serve(ctx context.Context, listeners []net.Listener) {
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
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runHardwareVTEPs(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.replicaUpkeep(ctx) // replica_orphans.go, replica_resync.go
	}()
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.acceptLoop(ctx, l, &wg)
		}()
	}
	<-ctx.Done()
	closeListeners(listeners)
	s.mu.Lock()
	open := slices.Collect(maps.Values(s.sessions))
	s.mu.Unlock()
	for _, sess := range open {
		sess.close("controller stopping")
	}
	wg.Wait()
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
		release, ok := s.admit(nc)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, nc, release)
		}()
	}
}

// handshakeTimeout bounds TLS and OpenFlow handshakes: a peer that says
// nothing must not hold a goroutine for long.
const handshakeTimeout = 10 * time.Second

// handle identifies a new connection and serves it until it ends; release
// (admit's) is called once the connection is identified or refused.
func (s *Server) handle(ctx context.Context, nc net.Conn, release func()) {
	defer release()
	remote := nc.RemoteAddr().String()
	conn, id, ok := s.identify(ctx, nc, remote)
	if !ok {
		return
	}
	defer func() { s.met.echoDropped.Add(float64(conn.EchoDropped())) }()
	sess := newSession(s, id, conn, remote)
	if !s.claim(ctx, sess) {
		conn.Close()
		return
	}
	release()
	sess.run(ctx)
	s.mu.Lock()
	if s.sessions[id.dpid] == sess {
		delete(s.sessions, id.dpid)
	}
	s.mu.Unlock()
}

// identify runs the TLS and OpenFlow handshakes and checks that the
// datapath ID is one of ours (and, over TLS, that the certificate names its
// host); ok is false when the connection was refused (and closed).
func (s *Server) identify(ctx context.Context, nc net.Conn, remote string) (conn *ofconn.Conn, id switchID, ok bool) {
	if tc, isTLS := nc.(*tls.Conn); isTLS {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.refuse(0, remote, refusedTLS, fmt.Sprintf("TLS handshake failed: %v", err))
			nc.Close()
			return nil, id, false
		}
	}
	conn = ofconn.NewConn(nc, s.log.With(zap.String("remote", remote)))
	conn.SetReplyBudget(s.replyBudget)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := conn.Handshake(hctx)
	cancel()
	if err != nil {
		conn.Close()
		s.refuse(0, remote, refusedHandshake, fmt.Sprintf("OpenFlow handshake failed: %v", err))
		return nil, id, false
	}
	dpid := conn.DatapathID()
	st := s.topo()
	if id, ok = st.ids[dpid]; !ok {
		conn.Close()
		if lid, learn := st.learnIDs[dpid]; learn {
			s.refuse(dpid, remote, refusedLearnMode, fmt.Sprintf("%s of host %s, which is in learn mode in topology %s", lid.bridge, lid.host.Name, st.t.Name))
		} else {
			s.refuse(dpid, remote, refusedUnknown, fmt.Sprintf("datapath ID is not a switch of topology %s", st.t.Name))
		}
		return nil, id, false
	}
	if !s.checkCertificate(nc, id, remote) {
		conn.Close()
		return nil, id, false
	}
	return conn, id, true
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
	// minute per switch and reason (or per address, before its identity
	// is known).
	who := fmt.Sprintf("%016x", dpid)
	if host, _, err := net.SplitHostPort(remote); err == nil && dpid == 0 {
		who = host
	}
	if !s.logOnce.allow("refused/"+reason+"/"+who, time.Now()) {
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
	tunHosts := s.topo().tunHosts
	s.mu.Lock()
	s.adopted[host] = true
	all := true
	for _, h := range tunHosts {
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
// host of the networks concerned dirty. A MAC forgotten here was
// withdrawn (changedWhy names more precise reasons).
func (s *Server) changed(ev []Event, when time.Time) { s.changedWhy(ev, when, ForgotWithdrawn) }

// changedWhy is changed, where why says why MACs were forgotten.
func (s *Server) changedWhy(ev []Event, when time.Time, why string) {
	if len(ev) == 0 {
		return
	}
	s.unpublish(ev)
	vnis := map[uint32]bool{}
	for _, e := range ev {
		vnis[e.Key.VNI] = true
		s.met.macEvents.WithLabelValues(e.Kind.String()).Inc()
	}
	s.logMACEvents(ev, when, why)
	st := s.topo()
	s.mu.Lock()
	defer s.mu.Unlock()
	marked := map[string]bool{}
	for vni := range vnis {
		for _, h := range st.vniHosts[vni] {
			if marked[h] {
				continue
			}
			marked[h] = true
			if sess := s.sessions[topology.BridgeDatapathID(st.t.Name, h, topology.BridgeTun)]; sess != nil {
				sess.markChanged(when)
			}
		}
	}
}

// live reports whether host's br-tun is connected and reading activity.
func (s *Server) live(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[topology.BridgeDatapathID(s.topo().t.Name, host, topology.BridgeTun)]
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
			s.changedWhy(s.know.Expire(now, s.o.MACIdle, s.live), now, ForgotIdle)
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
	// Role is this replica's among several (a directory): "master" (it
	// programs the switch) or "slave"; "" without a directory.
	Role string
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
