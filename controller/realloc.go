package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Rebuilding the allocation of a br-tun that lost its advertisement.
//
// ovs-vswitchd forgets every flow when it restarts, apply's table-250
// advertisement included, and the controller cannot read the local VLANs
// anywhere else: they are the tags of br-int's ports, in OVSDB, which it
// does not reach. Recomputing them (topology.Allocate from nothing) is not
// safe: Allocate keeps the numbers a host already has, so a host whose
// networks changed since its first apply holds others, and a wrong guess
// sends one tenant's frames into another's VNI. So the controller
// remembers what it read from each host — in memory, and in
// ServerOptions.StateFile so that it survives the controller's own
// restart — and puts that back, once the switch's ports show it is still
// the host it remembers. Without a memory it waits for apply, and says so.

// Sources of a rebuilt allocation, the "source" label of
// ovs_vxctl_controller_allocations_rebuilt_total.
const (
	rebuiltFromMemory    = "memory"     // read from the host earlier in this process's life
	rebuiltFromStateFile = "state-file" // read by an earlier controller, kept in StateFile
)

// stateFlushDelay coalesces the state file's rewrites: a thousand hosts
// read at start-up make one write, not a thousand.
const stateFlushDelay = 200 * time.Millisecond

// stateFile is the state file's content.
type stateFile struct {
	// Topology names the topology the hosts belong to: a file of
	// another topology is ignored.
	Topology string `json:"topology"`
	// Hosts are the local VLANs (VNI -> VLAN) last read from each host's
	// br-tun. Tunnel ports are not kept: the switch's own port
	// descriptions give them.
	Hosts map[string]stateHost `json:"hosts"`
}

type stateHost struct {
	LocalVLANs map[uint32]uint16 `json:"local_vlans"`
	Read       time.Time         `json:"read"`
}

// allocMemory is the local VLANs last read from each host, as kept in the
// state file: loaded when the server is made, rewritten (coalesced) when
// one changes. With no path it only loads nothing and writes nothing.
type allocMemory struct {
	path  string
	topo  string
	log   *zap.Logger
	delay time.Duration

	mu      sync.Mutex
	hosts   map[string]stateHost
	dirty   bool
	timer   *time.Timer
	closed  bool
	lastErr string // the last write error logged
}

// newAllocMemory loads path (when not empty) for topology t. A missing
// file is an empty memory; an unreadable or invalid one is logged and
// ignored (it is rewritten at the first change): the controller serves
// without it, as it would without a state file.
func newAllocMemory(path string, t *topology.Topology, log *zap.Logger) *allocMemory {
	m := &allocMemory{path: path, topo: t.Name, log: log, delay: stateFlushDelay, hosts: map[string]stateHost{}}
	if path == "" {
		return m
	}
	hosts, err := loadState(path, t)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no controller state file yet: it is written once switches are read", zap.String("path", path))
	case err != nil:
		log.Warn("ignoring the controller state file", zap.String("path", path), zap.Error(err))
	default:
		m.hosts = hosts
		log.Info("controller state loaded", zap.String("path", path), zap.Int("hosts", len(hosts)))
	}
	return m
}

// loadState reads the state file at path, keeping the entries that are
// still usable with t: managed controller-mode hosts, VLANs in range, none
// twice.
func loadState(path string, t *topology.Topology) (map[string]stateHost, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading controller state %s: %w", path, err)
	}
	if st.Topology != t.Name {
		return nil, fmt.Errorf("controller state %s is of topology %q, not %q", path, st.Topology, t.Name)
	}
	out := map[string]stateHost{}
	for name, sh := range st.Hosts {
		h := t.Host(name)
		if h == nil || !h.Managed || h.Mode != topology.ModeController || checkLocalVLANs(sh.LocalVLANs) != nil {
			continue
		}
		out[name] = sh
	}
	return out, nil
}

// checkLocalVLANs rejects VLANs out of range or given to two VNIs.
func checkLocalVLANs(vlans map[uint32]uint16) error {
	used := map[uint16]uint32{}
	for _, vni := range slices.Sorted(maps.Keys(vlans)) {
		v := vlans[vni]
		if v < topology.FirstLocalVLAN || v > topology.LastLocalVLAN {
			return fmt.Errorf("local VLAN %d of VNI %d is out of range", v, vni)
		}
		if other, dup := used[v]; dup {
			return fmt.Errorf("local VLAN %d is given to VNI %d and VNI %d", v, other, vni)
		}
		used[v] = vni
	}
	return nil
}

// get returns the local VLANs kept for host.
func (m *allocMemory) get(host string) (map[uint32]uint16, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sh, ok := m.hosts[host]
	return maps.Clone(sh.LocalVLANs), ok && len(sh.LocalVLANs) > 0
}

// keep records host's local VLANs; the file is rewritten shortly after a
// change (never for a read that changes nothing).
func (m *allocMemory) keep(host string, vlans map[uint32]uint16, now time.Time) {
	if m.path == "" || len(vlans) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if maps.Equal(m.hosts[host].LocalVLANs, vlans) || m.closed {
		return
	}
	m.hosts[host] = stateHost{LocalVLANs: maps.Clone(vlans), Read: now.UTC()}
	m.dirty = true
	if m.timer == nil {
		m.timer = time.AfterFunc(m.delay, m.flush)
	}
}

// flush writes the file if it changed since the last write.
func (m *allocMemory) flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timer = nil
	if !m.dirty {
		return
	}
	m.dirty = false
	b, err := json.MarshalIndent(stateFile{Topology: m.topo, Hosts: m.hosts}, "", "  ")
	if err == nil {
		err = writeFileAtomic(m.path, append(b, '\n'))
	}
	if err != nil {
		// Retried at the next change; said once per distinct error.
		m.dirty = true
		if msg := err.Error(); msg != m.lastErr {
			m.lastErr = msg
			m.log.Warn("cannot write the controller state file: a restarted controller could not rebuild a lost allocation advertisement",
				zap.String("path", m.path), zap.Error(err))
		}
		return
	}
	m.lastErr = ""
}

// close writes what is pending and stops writing: the server is stopping.
func (m *allocMemory) close() {
	m.mu.Lock()
	m.closed = true
	if m.timer != nil {
		m.timer.Stop()
	}
	m.mu.Unlock()
	m.flush()
}

// writeFileAtomic replaces path with data: a crash leaves the old file or
// the new one, never half of one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing controller state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing controller state %s: %w", path, err)
	}
	return nil
}

// rememberedVLANs is the controller's own record of host's local VLANs:
// from this process's earlier reads first, else from the state file.
func (s *session) rememberedVLANs() (vlans map[uint32]uint16, source string, ok bool) {
	host := s.id.host.Name
	if last, ok := s.srv.lastAlloc(host); ok && len(last.LocalVLAN) > 0 {
		return maps.Clone(last.LocalVLAN), rebuiltFromMemory, true
	}
	if v, ok := s.srv.mem.get(host); ok {
		return v, rebuiltFromStateFile, true
	}
	return nil, "", false
}

// rebuildVLANs gives back the local VLANs of a br-tun that holds no
// advertisement at all (ovs-vswitchd restarted and forgot its flows) from
// the controller's own record, once br-tun's ports (ports, name to
// number) show it is set up as the record expects, and advertises them
// again, so that a later controller finds them on the switch. The error
// says why it cannot (wrapping errNoAdvertisement).
func (s *session) rebuildVLANs(ctx context.Context, ports map[string]uint32) (map[uint32]uint16, error) {
	vlans, source, ok := s.rememberedVLANs()
	if !ok {
		where := "it has not read this host's since it started and keeps no --state-file"
		if s.srv.o.StateFile != "" {
			where = "neither since it started nor in its state file " + s.srv.o.StateFile
		}
		return nil, fmt.Errorf("%w (br-tun holds none, and the controller has no record of the host's local VLANs: %s)", errNoAdvertisement, where)
	}
	if err := s.checkRebuild(vlans, ports); err != nil {
		return nil, fmt.Errorf("%w (br-tun holds none, and the allocation the controller remembers (%s) does not fit the switch: %v)", errNoAdvertisement, source, err)
	}
	// Only the networks the host has now: a network removed since is
	// not advertised again.
	nets := map[uint32]uint16{}
	t, h := s.topo()
	for _, n := range t.NetworksOn(h) {
		nets[n.VNI] = vlans[n.VNI]
	}
	res, err := s.sw.Reconcile(ctx, flows.CompileAllocation(topology.Allocation{LocalVLAN: nets}), flows.CookieAllocation, flows.CookieOwnerMask)
	if err != nil {
		return nil, fmt.Errorf("restoring the allocation advertisement: %w", err)
	}
	s.countSent(res)
	s.srv.met.allocRebuilds.WithLabelValues(source).Inc()
	s.log.Info("rebuilt the allocation advertisement the switch had lost", zap.String("source", source), zap.Any("local_vlans", nets))
	return nets, nil
}

// checkRebuild reports why the remembered vlans cannot serve br-tun as it
// is: a network of the host without a VLAN (added since the controller
// read the host: only apply knows its VLAN), or a port apply makes that
// br-tun lacks (apply, or ovs-vswitchd, has not finished setting it up).
func (s *session) checkRebuild(vlans map[uint32]uint16, ports map[string]uint32) error {
	var problems []string
	if err := checkLocalVLANs(vlans); err != nil {
		problems = append(problems, err.Error())
	}
	t, h := s.topo()
	for _, n := range t.NetworksOn(h) {
		if _, ok := vlans[n.VNI]; !ok {
			problems = append(problems, fmt.Sprintf("no local VLAN for VNI %d (network %s, added since)", n.VNI, n.Name))
		}
	}
	if no, ok := ports[topology.PatchTun]; !ok || no != topology.PatchOFPort {
		problems = append(problems, fmt.Sprintf("no patch port %s at ofport %d", topology.PatchTun, topology.PatchOFPort))
	}
	for _, p := range t.Peers(h) {
		name := topology.TunnelPortName(p.Name)
		no, ok := ports[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no tunnel port %s to peer %s", name, p.Name))
		case !topology.UsableTunnelOFPort(no):
			problems = append(problems, fmt.Sprintf("tunnel port %s is ofport %d, not a usable tunnel port number", name, no))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// setNotReady records whether br-tun is held back for want of its
// allocation or served: the gauge counts each session at most once.
func (s *session) setNotReady(notReady bool) {
	if s.notReady.CompareAndSwap(!notReady, notReady) {
		if notReady {
			s.srv.met.notReady.Inc()
		} else {
			s.srv.met.notReady.Dec()
		}
	}
}
