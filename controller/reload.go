package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/watch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Reloading the topology while serving.
//
// Everything the server derives from the topology (the switches it serves,
// which hosts are in which network) is one immutable topoState, swapped
// whole by a reload, so that a reader sees one topology and never a mix.
// Sessions look their host up in the current state on every use (session.topo)
// rather than keeping the pointer they were identified with. A reload then
// gives the knowledge the new declared endpoints, closes the sessions of
// switches no longer served (a host removed, or put in learn mode) and has
// every other session reconcile in full against the new compile: the diff
// against what the switch holds sends exactly the flows that changed, and
// nothing when nothing did. Hardware VTEPs added get their loop, removed
// ones lose it, and one whose database target changed gets a new one
// (updateHardwareVTEPs).
//
// Locks: reloader.mu serialises reloads and is taken before anything else;
// Reload then follows doc.go's order (Knowledge.mu in Redeclare, released,
// then Server.mu, then session.mu to mark the sessions; hwvtepRunner.mu
// alone, last).
//
// Between the swap and the reconciles a session may run one reconcile that
// sees the new topology with the old declared endpoints (or the other way
// round); the reconcile that follows puts it right.

// Results of a reload, the "result" label of
// ovs_vxctl_controller_reloads_total.
const (
	reloadOK        = "ok"        // a new topology is served
	reloadInvalid   = "invalid"   // refused: the old one keeps serving
	reloadUnchanged = "unchanged" // the same topology: nothing to do
)

// Coalescing of file events: an editor's save, or a configuration tool's
// rename-over, is a burst of events that must give one reload.
const (
	reloadDebounce = 75 * time.Millisecond
	reloadMaxDelay = 500 * time.Millisecond
)

// topoState is what the server derives from one topology.
type topoState struct {
	t        *topology.Topology
	ids      map[uint64]switchID // the switches we serve
	learnIDs map[uint64]switchID // bridges of learn-mode hosts: refused with a reason
	vniHosts map[uint32][]string // VNI -> controller-mode hosts with ports in it
	tunHosts []string            // controller-mode hosts, whose br-tun the grace waits for
	memo     *endpointMemo       // endpoints compiled once for all switches (fanout.go)
}

func newTopoState(t *topology.Topology) *topoState {
	st := &topoState{t: t, ids: map[uint64]switchID{}, learnIDs: map[uint64]switchID{}, vniHosts: map[uint32][]string{}, memo: newEndpointMemo()}
	for _, h := range t.ManagedHosts() {
		for _, br := range []string{topology.BridgeTun, topology.BridgeInt} {
			id := switchID{t: t, host: h, bridge: br, dpid: topology.BridgeDatapathID(t.Name, h.Name, br)}
			if h.Mode == topology.ModeController {
				st.ids[id.dpid] = id
			} else {
				st.learnIDs[id.dpid] = id
			}
		}
		if h.Mode != topology.ModeController {
			continue
		}
		st.tunHosts = append(st.tunHosts, h.Name)
		for _, n := range t.NetworksOn(h) {
			st.vniHosts[n.VNI] = append(st.vniHosts[n.VNI], h.Name)
		}
	}
	return st
}

// topo is the topology being served and what derives from it.
func (s *Server) topo() *topoState { return s.cur.Load() }

// Topology is the topology being served (the last one Reload took).
func (s *Server) Topology() *topology.Topology { return s.topo().t }

// topo is the session's topology and its host in it, as of the last
// reload; once a reload removed the switch, the ones it was identified
// with (the session is being closed).
func (s *session) topo() (*topology.Topology, *topology.Host) {
	st := s.srv.topo()
	if id, ok := st.ids[s.id.dpid]; ok {
		return st.t, id.host
	}
	return s.id.t, s.id.host
}

// errRemoved: a reload removed the switch's host, or put it in learn mode.
var errRemoved = errors.New("the switch's host is no longer a controller-mode host of the topology")

// checkServed closes the session, and says so, when a reload removed its
// switch: one identified just as the reload ran may have missed its close.
func (s *session) checkServed() error {
	if _, ok := s.srv.topo().ids[s.id.dpid]; ok {
		return nil
	}
	s.close(errRemoved.Error())
	return errRemoved
}

// reloader serialises reloads and counts them.
type reloader struct {
	mu      sync.Mutex
	reloads *prometheus.CounterVec
}

func newReloader(reg prometheus.Registerer) *reloader {
	r := &reloader{reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ovs_vxctl", Subsystem: "controller",
		Name: "reloads_total", Help: "Topology reloads, by result: ok, invalid (the old topology keeps serving) or unchanged."}, []string{"result"})}
	reg.MustRegister(r.reloads)
	for _, res := range []string{reloadOK, reloadInvalid, reloadUnchanged} {
		r.reloads.WithLabelValues(res)
	}
	return r
}

// ReloadError is a topology Reload refused, with every problem found.
type ReloadError struct {
	Problems []string
}

func (e *ReloadError) Error() string {
	return "topology refused, the old one keeps serving: " + strings.Join(e.Problems, "; ")
}

// Reload serves t from now on: the knowledge takes its declared endpoints,
// the sessions of switches it no longer has are closed and every other
// switch is reconciled against it, which sends only the flows that differ.
// A topology equal to the one served changes nothing. One whose flows do
// not compile is refused (*ReloadError, every problem listed) and the old
// one keeps serving. It is safe to call at any time, from any goroutine.
func (s *Server) Reload(t *topology.Topology) error {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	old := s.topo()
	if reflect.DeepEqual(old.t, t) {
		s.reload.reloads.WithLabelValues(reloadUnchanged).Inc()
		s.log.Info("topology reloaded: unchanged", zap.String("topology", t.Name))
		return nil
	}
	if problems := append(compileProblems(t), s.hardwareVTEPProblems(t)...); len(problems) > 0 {
		s.reload.reloads.WithLabelValues(reloadInvalid).Inc()
		err := &ReloadError{Problems: problems}
		s.log.Error("topology refused, the old one keeps serving", zap.String("topology", t.Name), zap.Strings("problems", problems))
		return err
	}
	st := newTopoState(t)
	s.cur.Store(st)
	now := time.Now()
	// The knowledge first: the full reconciles retarget asks for then
	// reflect it.
	ev := s.know.Redeclare(flows.DeclaredEndpoints(t), func(host string, vni uint32) bool { return inNetwork(t, host, vni) })
	s.changed(ev, now)
	closed := s.retarget(st, now)
	s.initHostMetrics(st)
	started, stopped := s.updateHardwareVTEPs()
	s.reload.reloads.WithLabelValues(reloadOK).Inc()
	s.logReload(old, st, ev, closed)
	if len(started)+len(stopped) > 0 {
		s.log.Info("hardware VTEPs driven by the reload", zap.Strings("started", started), zap.Strings("stopped", stopped))
	}
	return nil
}

// compileProblems compiles the flows of every controller-mode host of t,
// each with a fresh allocation: what would fail on a switch fails here,
// before anything changes.
func compileProblems(t *topology.Topology) []string {
	var problems []string
	for _, h := range t.ManagedHosts() {
		if h.Mode != topology.ModeController {
			continue
		}
		alloc, err := t.Allocate(h, topology.Allocation{})
		if err == nil {
			_, err = flows.Compile(t, h, alloc)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("host %s: %v", h.Name, err))
		}
	}
	return problems
}

// inNetwork reports whether host has a port in the network of vni in t: a
// learned MAC anywhere else is stale after a reload.
func inNetwork(t *topology.Topology, host string, vni uint32) bool {
	h := t.Host(host)
	if h == nil {
		return false
	}
	for _, n := range t.Networks {
		if n.VNI == vni {
			return n.HasPortOn(h)
		}
	}
	return false
}

// retarget closes the sessions of switches st does not serve and asks every
// other one for a full reconcile; it returns the switches closed.
func (s *Server) retarget(st *topoState, now time.Time) []string {
	var gone []*session
	s.mu.Lock()
	for dpid, sess := range s.sessions {
		if _, ok := st.ids[dpid]; ok {
			sess.markDirty(now)
		} else {
			gone = append(gone, sess)
		}
	}
	s.mu.Unlock()
	var closed []string
	for _, sess := range gone {
		sess.close("removed from the topology by a reload")
		s.met.flows.DeleteLabelValues(sess.id.host.Name, sess.id.bridge)
		closed = append(closed, sess.id.host.Name+"/"+sess.id.bridge)
	}
	sort.Strings(closed)
	return closed
}

// logReload says what a reload changed.
func (s *Server) logReload(old, st *topoState, ev []Event, closed []string) {
	addedH, removedH := diffNames(hostNames(old.t), hostNames(st.t))
	addedN, removedN := diffNames(networkNames(old.t), networkNames(st.t))
	fields := []zap.Field{zap.String("topology", st.t.Name), zap.Strings("hosts_added", addedH), zap.Strings("hosts_removed", removedH),
		zap.Strings("networks_added", addedN), zap.Strings("networks_removed", removedN), zap.Int("mac_changes", len(ev)),
		zap.Strings("switches_closed", closed)}
	if old.t.Name != st.t.Name {
		s.log.Warn("the topology's name changed: every datapath ID changes with it, so every switch is refused until apply runs on its host",
			zap.String("old", old.t.Name), zap.String("new", st.t.Name))
	}
	s.log.Info("topology reloaded", fields...)
}

func hostNames(t *topology.Topology) []string {
	var out []string
	for _, h := range t.Hosts {
		out = append(out, h.Name)
	}
	return out
}

func networkNames(t *topology.Topology) []string {
	var out []string
	for _, n := range t.Networks {
		out = append(out, fmt.Sprintf("%s (VNI %d)", n.Name, n.VNI))
	}
	return out
}

// diffNames returns what is in b and not in a, and what is in a and not in b.
func diffNames(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}

// ReloadFile reads the topology file at path and serves it (Reload). A
// file that does not load is logged with every problem, counted as
// invalid and changes nothing.
func (s *Server) ReloadFile(path string) error {
	t, err := topology.Load(path)
	if err != nil {
		s.reload.reloads.WithLabelValues(reloadInvalid).Inc()
		s.log.Error("topology file refused, the old topology keeps serving", zap.String("file", path),
			zap.Strings("problems", topologyProblems(err)))
		return fmt.Errorf("reloading the topology: %w", err)
	}
	return s.Reload(t)
}

// topologyProblems lists a topology error's problems one by one, or the
// error's text.
func topologyProblems(err error) []string {
	var te *topology.Errors
	if !errors.As(err, &te) {
		return []string{err.Error()}
	}
	out := make([]string, len(te.List))
	for i, e := range te.List {
		out[i] = e.Error()
	}
	return out
}

// WatchFile reloads the topology file at path (ReloadFile) whenever it
// changes and whenever signals delivers (SIGHUP), until ctx ends. A burst
// of file events gives one reload, once the file has been quiet for a
// moment. When the file's directory cannot be watched it says so and
// reloads on signals only.
func (s *Server) WatchFile(ctx context.Context, path string, signals <-chan os.Signal) {
	files, err := watch.New(path)
	if err != nil {
		s.log.Warn("not watching the topology file: only SIGHUP reloads it", zap.Error(err))
		files = nil
	}
	defer files.Close()
	var quiet, limit <-chan time.Time // set while a reload is due
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-signals:
			s.log.Info("reloading the topology", zap.String("file", path), zap.Stringer("signal", sig))
			quiet, limit = nil, nil
			s.ReloadFile(path)
		case ev := <-files.Events():
			if !files.Concerns(ev) {
				continue
			}
			quiet = time.After(reloadDebounce)
			if limit == nil {
				limit = time.After(reloadMaxDelay)
			}
		case err := <-files.Errors():
			s.log.Warn("watching the topology file", zap.String("file", path), zap.Error(err))
		case <-quiet:
			quiet, limit = nil, nil
			s.log.Info("reloading the topology", zap.String("file", path), zap.String("because", "the file changed"))
			s.ReloadFile(path)
		case <-limit:
			quiet, limit = nil, nil
			s.log.Info("reloading the topology", zap.String("file", path), zap.String("because", "the file keeps changing"))
			s.ReloadFile(path)
		}
	}
}
