package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Hardware VTEPs in controller mode. A switch speaks OVSDB, not OpenFlow:
// for each one the controller runs a loop (beside the sessions) that reads
// the MACs the switch learned behind its ports (Ucast_Macs_Local) into the
// knowledge, as packet-ins are on OVS hosts, and writes what the knowledge
// knows of the other hosts into its Ucast_Macs_Remote. The loop only calls
// into the Knowledge and then Server.changed, never holding a lock, so the
// lock order of doc.go holds.
//
// The loops are owned by hwvtepRunner: serve starts one per hardware VTEP
// of the topology, and Reload starts the loops of hardware VTEPs it adds,
// stops those of the ones it removes (or puts in learn mode) and restarts
// the one whose database target changed.

// hwvtepPoll is how often the controller reads a hardware VTEP's database.
// Switches (and the emulator) report learned MACs about once a second.
const hwvtepPoll = 250 * time.Millisecond

// hwvtepBackoff bounds the wait between attempts to reach a switch.
const (
	hwvtepMinBackoff = 500 * time.Millisecond
	hwvtepMaxBackoff = 5 * time.Second
)

// hwvtepTimeout bounds a connection attempt and each poll: a switch whose
// database stops answering (accepts, never replies) is reconnected to
// instead of stalling its loop.
const hwvtepTimeout = 10 * time.Second

// hwvtepCleanupTimeout bounds the last transaction of a loop a reload
// stopped (emptying the switch's Ucast_Macs_Remote).
const hwvtepCleanupTimeout = 5 * time.Second

// Why a loop stops, its context's cause.
var (
	errHWVTEPRemoved  = errors.New("no longer a controller-mode hardware VTEP of the topology")
	errHWVTEPRetarget = errors.New("its hardware_vtep.ovsdb target changed")
)

// hwvtepSyncer is what a loop needs of a connection to a switch's
// database (hwvtep.Client; a fake in tests).
type hwvtepSyncer interface {
	Sync(ctx context.Context, topology, host string, want []hwvtep.RemoteMAC, dry bool) ([]hwvtep.LocalMAC, []string, error)
	Close()
}

// hwvtepConnector connects to a hardware VTEP's database at endpoint.
type hwvtepConnector func(ctx context.Context, endpoint string, tlsConfig *tls.Config, log *zap.Logger) (hwvtepSyncer, error)

// hwvtepConnectorWith connects with the refusal gauges of m.
func hwvtepConnectorWith(m *hwvtep.Metrics) hwvtepConnector {
	return func(ctx context.Context, endpoint string, tlsConfig *tls.Config, log *zap.Logger) (hwvtepSyncer, error) {
		return hwvtep.Connect(ctx, endpoint, tlsConfig, log, hwvtep.WithMetrics(m))
	}
}

// hwvtepRunner owns the hardware VTEP loops. mu guards its fields and is
// taken after reloader.mu, never together with Server.mu or
// Knowledge.mu: the loops themselves take those, not mu.
type hwvtepRunner struct {
	mu    sync.Mutex
	ctx   context.Context // serve's while it runs; nil otherwise
	loops map[string]*hwvtepLoop
	// leaving are the loops a reload removed, until they are done: one
	// that drives the same switch again waits for them.
	leaving map[string]*hwvtepLoop
	wg      sync.WaitGroup
	connect hwvtepConnector
	// connected is 1 for a hardware VTEP whose database answers, by host.
	connected *prometheus.GaugeVec
	// notDriven counts a hardware VTEP's networks whose logical switch the
	// controller cannot drive, by host and reason (hwvtep.NotDriven).
	notDriven *prometheus.GaugeVec
}

// hwvtepLoop is one running loop.
type hwvtepLoop struct {
	target string
	cancel context.CancelCauseFunc
	done   chan struct{}
}

func newHWVTEPRunner(reg prometheus.Registerer) *hwvtepRunner {
	r := &hwvtepRunner{loops: map[string]*hwvtepLoop{}, leaving: map[string]*hwvtepLoop{}, connect: hwvtepConnectorWith(hwvtep.NewMetrics(reg)),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ovs_vxctl", Subsystem: "controller",
			Name: "hardware_vtep_connected", Help: "1 when the controller reaches a hardware VTEP's database, by host."}, []string{"host"}),
		notDriven: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ovs_vxctl", Subsystem: "controller",
			Name: "hardware_vtep_not_driven", Help: "Networks of a hardware VTEP the controller cannot drive (its logical switch missing or not made by ovs-vxctl), by host and reason."},
			[]string{"host", "reason"})}
	reg.MustRegister(r.connected, r.notDriven)
	return r
}

// hardwareVTEPs are the hardware VTEPs in controller mode.
func (s *Server) hardwareVTEPs() []*topology.Host {
	return controllerVTEPs(s.topo().t)
}

func controllerVTEPs(t *topology.Topology) []*topology.Host {
	var out []*topology.Host
	for _, h := range t.HardwareVTEPs() {
		if h.Mode == topology.ModeController {
			out = append(out, h)
		}
	}
	return out
}

// hardwareVTEPProblems lists the hardware VTEPs of t the controller could
// not drive: an ssl: database without the controller's TLS files.
func (s *Server) hardwareVTEPProblems(t *topology.Topology) []string {
	var out []string
	for _, h := range controllerVTEPs(t) {
		if strings.HasPrefix(h.HardwareVTEP.OVSDB, "ssl:") && s.o.HardwareVTEPTLS == nil {
			out = append(out, fmt.Sprintf("host %s: hardware_vtep.ovsdb %s needs the controller's --private-key, --certificate and --ca-cert",
				h.Name, h.HardwareVTEP.OVSDB))
		}
	}
	return out
}

// checkHardwareVTEPs refuses a topology with a hardware VTEP the
// controller could not drive, naming every one.
func (s *Server) checkHardwareVTEPs(t *topology.Topology) error {
	if p := s.hardwareVTEPProblems(t); len(p) > 0 {
		return fmt.Errorf("controller: %s", strings.Join(p, "; "))
	}
	return nil
}

// runHardwareVTEPs runs the loops of the served topology's hardware VTEPs
// until ctx ends, then waits for them. Reload changes the set meanwhile.
func (s *Server) runHardwareVTEPs(ctx context.Context) {
	r := s.hw
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	s.updateHardwareVTEPs()
	<-ctx.Done()
	r.mu.Lock()
	r.ctx = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// updateHardwareVTEPs makes the running loops those of the served
// topology: it starts the missing ones, stops those of hosts no longer
// driven and restarts the one whose target changed (the new loop starts
// once the old one is gone, so one switch never has two writers). It
// returns what it started and stopped. Before serve, it does nothing.
func (s *Server) updateHardwareVTEPs() (started, stopped []string) {
	r := s.hw
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.ctx.Err() != nil {
		return nil, nil
	}
	want := map[string]*topology.Host{}
	for _, h := range s.hardwareVTEPs() {
		want[h.Name] = h
	}
	for name, l := range r.leaving {
		select {
		case <-l.done:
			delete(r.leaving, name)
		default:
		}
	}
	for name, l := range r.loops {
		if h := want[name]; h == nil {
			l.cancel(errHWVTEPRemoved)
			delete(r.loops, name)
			r.leaving[name] = l
			stopped = append(stopped, name)
		} else if h.HardwareVTEP.OVSDB != l.target {
			l.cancel(errHWVTEPRetarget)
			stopped = append(stopped, name)
		}
	}
	for name, h := range want {
		old := r.loops[name]
		if old != nil && old.target == h.HardwareVTEP.OVSDB {
			continue
		}
		if old == nil {
			old = r.leaving[name] // emptying the switch's table: after it
			delete(r.leaving, name)
		}
		ctx, cancel := context.WithCancelCause(r.ctx)
		l := &hwvtepLoop{target: h.HardwareVTEP.OVSDB, cancel: cancel, done: make(chan struct{})}
		r.loops[name] = l
		started = append(started, name)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(l.done)
			if old != nil {
				<-old.done
			}
			s.driveHardwareVTEP(ctx, h)
		}()
	}
	return started, stopped
}

// runHardwareVTEP drives hardware VTEP h until ctx ends, connecting again
// (with backoff) whenever its database cannot be reached. When a reload
// removed h, it then empties the switch's Ucast_Macs_Remote (nobody keeps
// it up to date any more: the switch floods instead) and forgets the MACs
// the switch reported.
func (s *Server) runHardwareVTEP(ctx context.Context, h *topology.Host) {
	log := s.log.With(zap.String("hardware_vtep", h.Name), zap.String("ovsdb", h.HardwareVTEP.OVSDB))
	topo := s.topo().t.Name
	seen := map[MACKey]netip.Addr{} // the switch's local MACs, across reconnects
	wait := hwvtepMinBackoff
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, hwvtepTimeout)
		c, err := s.hw.connect(cctx, h.HardwareVTEP.OVSDB, s.o.HardwareVTEPTLS, log)
		cancel()
		if err == nil {
			log.Info("hardware VTEP connected")
			s.hw.connected.WithLabelValues(h.Name).Set(1)
			keepLocal(c, seen)
			wait = hwvtepMinBackoff
			seen, err = s.syncHardwareVTEP(ctx, c, h, seen, log)
			s.hw.connected.WithLabelValues(h.Name).Set(0)
			c.Close()
		}
		if ctx.Err() != nil {
			break
		}
		if s.logOnce.allow("hwvtep/"+h.Name, time.Now()) {
			log.Warn("hardware VTEP unreachable, retrying", zap.Error(err), zap.Duration("in", wait))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, hwvtepMaxBackoff)
	}
	s.hw.notDriven.DeletePartialMatch(prometheus.Labels{"host": h.Name})
	if errors.Is(context.Cause(ctx), errHWVTEPRemoved) {
		s.hw.connected.DeleteLabelValues(h.Name)
		s.releaseHardwareVTEP(h, topo, seen, log)
	}
}

// releaseHardwareVTEP undoes what driving h did, once a reload removed it:
// its reported MACs are forgotten and its Ucast_Macs_Remote emptied (best
// effort: an unreachable switch keeps its rows until destroy).
func (s *Server) releaseHardwareVTEP(h *topology.Host, topo string, seen map[MACKey]netip.Addr, log *zap.Logger) {
	var ev []Event
	for key := range seen {
		ev = append(ev, s.know.Withdraw(key, h.Name)...)
	}
	s.changedWhy(ev, time.Now(), ForgotUndriven)
	ctx, cancel := context.WithTimeout(context.Background(), hwvtepCleanupTimeout)
	defer cancel()
	c, err := s.hw.connect(ctx, h.HardwareVTEP.OVSDB, s.o.HardwareVTEPTLS, log)
	if err == nil {
		var changes []string
		_, changes, err = c.Sync(ctx, topo, h.Name, nil, false)
		c.Close()
		log.Info("hardware VTEP no longer driven: its unicast table emptied", zap.Int("removed", len(changes)), zap.Int("macs_forgotten", len(ev)))
	}
	if err != nil {
		log.Warn("hardware VTEP no longer driven; its Ucast_Macs_Remote could not be emptied", zap.Error(err))
	}
}

// syncHardwareVTEP polls the switch through c until an error or ctx ends,
// and returns the local MACs last seen. Until the first reconciles are
// released (every switch had its chance to connect and be adopted) it only
// reads: the knowledge is not complete yet.
func (s *Server) syncHardwareVTEP(ctx context.Context, c hwvtepSyncer, h *topology.Host, prev map[MACKey]netip.Addr, log *zap.Logger) (map[MACKey]netip.Addr, error) {
	tick := time.NewTicker(hwvtepPoll)
	defer tick.Stop()
	var problems string // the last not-driven report, logged once per change
	for {
		pctx, cancel := context.WithTimeout(ctx, hwvtepTimeout)
		local, changes, err := c.Sync(pctx, s.topo().t.Name, h.Name, s.remoteMACs(h), !s.isReleased())
		cancel()
		if err != nil {
			return prev, err
		}
		if len(changes) > 0 {
			log.Info("hardware VTEP unicast table updated", zap.Strings("changes", changes))
		}
		problems = s.reportNotDriven(c, h, problems, log)
		prev = s.observeLocal(h, local, prev, log)
		select {
		case <-ctx.Done():
			return prev, ctx.Err()
		case <-tick.C:
		}
	}
}

// observeLocal turns the switch's local MACs into knowledge: a MAC that
// appeared, or whose reported IP changed (a switch may fill ipaddr after
// the MAC), is observed on h (learned, or moved there), one that went is
// withdrawn. It returns the MACs now present, with their IPs.
func (s *Server) observeLocal(h *topology.Host, local []hwvtep.LocalMAC, prev map[MACKey]netip.Addr, log *zap.Logger) map[MACKey]netip.Addr {
	now := time.Now()
	cur := make(map[MACKey]netip.Addr, len(local))
	var events []Event
	for _, l := range local {
		key, ok := KeyOf(l.VNI, l.MAC)
		if !ok {
			continue
		}
		cur[key] = l.IP
		if ip, ok := prev[key]; ok && ip == l.IP {
			continue
		}
		ev, err := s.know.Observe(key, h.Name, l.IP, now)
		if err != nil {
			// As a packet-in's: counted, logged once per bound or
			// conflict, not once per MAC of a flood.
			s.observeRefused(err, now)
			continue
		}
		events = append(events, ev...)
	}
	for key := range prev {
		if _, ok := cur[key]; !ok {
			events = append(events, s.know.Withdraw(key, h.Name)...)
		}
	}
	s.changedWhy(events, now, ForgotBySwitch)
	// The other replicas hear of the switch's MACs through the directory:
	// only this one reads the switch.
	s.publishEvents(events)
	return cur
}

// remoteMACs are the MACs the knowledge places on other hosts, in the
// networks h has ports in, with those hosts' VTEPs as locators.
func (s *Server) remoteMACs(h *topology.Host) []hwvtep.RemoteMAC {
	t := s.topo().t
	if cur := t.Host(h.Name); cur != nil {
		h = cur // the same host in a reloaded topology
	}
	nets := map[uint32]bool{}
	for _, n := range t.NetworksOn(h) {
		nets[n.VNI] = true
	}
	eps, _ := s.know.Endpoints()
	var out []hwvtep.RemoteMAC
	for _, e := range eps {
		o := t.Host(e.Host)
		if !nets[e.VNI] || e.Host == h.Name || o == nil {
			continue
		}
		r := hwvtep.RemoteMAC{VNI: e.VNI, MAC: e.MAC, VTEP: o.VTEP}
		for _, ip := range e.IPs {
			if ip.Is4() {
				r.IP = ip
				break
			}
		}
		out = append(out, r)
	}
	return out
}

// isReleased reports whether the first reconciles have been released.
func (s *Server) isReleased() bool {
	select {
	case <-s.released:
		return true
	default:
		return false
	}
}

// OVSDBClientConfig is the client side of an ssl: OVSDB server (a hardware
// VTEP's database) with the same files, for ServerOptions.HardwareVTEPTLS:
// the controller's key and certificate, and the CA that signed the
// switches' certificates, which a switch's database presents.
func (f TLSFiles) OVSDBClientConfig() (*tls.Config, error) {
	return ovsdb.ClientTLS(ovsdb.SSLFiles{PrivateKey: f.PrivateKey, Certificate: f.Certificate, CACert: f.CACert})
}

// keepLocal tells a new connection which local MACs the switch's previous
// ones took, so that over the bound they keep their place (sticky
// admission, hwvtep.Client.KeepLocal).
func keepLocal(c hwvtepSyncer, seen map[MACKey]netip.Addr) {
	k, ok := c.(interface{ KeepLocal([]hwvtep.LocalMAC) })
	if !ok || len(seen) == 0 {
		return
	}
	macs := make([]hwvtep.LocalMAC, 0, len(seen))
	for key, ip := range seen {
		macs = append(macs, hwvtep.LocalMAC{VNI: key.VNI, MAC: key.HardwareAddr(), IP: ip})
	}
	k.KeepLocal(macs)
}

// notDrivenReporter is what reportNotDriven needs of a connection
// (hwvtep.Client).
type notDrivenReporter interface {
	NotDriven(topology, host string, vnis []uint32) []hwvtep.NotDriven
}

// reportNotDriven sets the not-driven gauges of h after a Sync and logs
// when what it finds differs from last (its previous report, returned
// updated): a switch whose logical switch is missing or hand-made floods
// instead of using unicast entries, which the operator must hear of.
func (s *Server) reportNotDriven(c hwvtepSyncer, h *topology.Host, last string, log *zap.Logger) string {
	r, ok := c.(notDrivenReporter)
	if !ok {
		return last
	}
	t := s.topo().t
	if cur := t.Host(h.Name); cur != nil {
		h = cur
	}
	var vnis []uint32
	for _, n := range t.NetworksOn(h) {
		vnis = append(vnis, n.VNI)
	}
	nd := r.NotDriven(t.Name, h.Name, vnis)
	counts := map[string]int{hwvtep.NotDrivenMissing: 0, hwvtep.NotDrivenNotOurs: 0}
	details := make([]string, 0, len(nd))
	for _, n := range nd {
		counts[n.Reason]++
		details = append(details, fmt.Sprintf("vni %d: %s", n.VNI, n.Detail))
	}
	for reason, n := range counts {
		s.hw.notDriven.WithLabelValues(h.Name, reason).Set(float64(n))
	}
	now := strings.Join(details, "; ")
	switch {
	case now == last:
	case now == "":
		log.Info("hardware VTEP: every network driven again")
	default:
		log.Warn("hardware VTEP: networks not driven (the switch floods their unicast)", zap.Strings("networks", details),
			zap.Int(hwvtep.NotDrivenMissing, counts[hwvtep.NotDrivenMissing]), zap.Int(hwvtep.NotDrivenNotOurs, counts[hwvtep.NotDrivenNotOurs]))
	}
	return now
}
