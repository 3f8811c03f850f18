// Package lab builds the overlay of a topology file on one machine: one
// network namespace and one private userspace Open vSwitch per managed host, a
// shared underlay (a Linux bridge in its own namespace) joining them, one
// namespace per VM port with its MAC, address, gateway and MTU, a Linux-kernel
// VXLAN VTEP per unmanaged host, and then `ovs-vxctl apply` inside every
// managed host. Down removes all of it, also from a half-built lab.
//
// Namespaces of the lab of topology T: "vx-T" (underlay), "vx-T.<host>" and
// "vx-T.<host>.<port>" (VMs). Inside a host namespace the underlay veth is
// "vx-ul"; on managed hosts it sits on the OVS bridge "br-phy", which holds
// the VTEP address, because OVS's userspace tunnels route through an OVS
// internal port. Veths are created directly in their namespaces, never in
// the root namespace, so labs cannot clash on interface names there.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Options say which lab to act on.
type Options struct {
	Topology  *topology.Topology
	File      string      // absolute path of the topology file (passed to apply)
	Self      string      // path of the ovs-vxctl binary used to run apply in each host
	Dir       string      // state root; default /run/ovs-vxctl/lab/<topology name>
	Log       *zap.Logger // nil: no logging
	SkipApply bool        // bring up namespaces, OVS, underlay and VMs only
	// ControllerArgs are passed to `ovs-vxctl controller` when the topology
	// is in controller mode (e.g. --metrics-listen).
	ControllerArgs []string
	// Agents runs `ovs-vxctl agent` in every managed host after the apply
	// (see AgentLog), which then re-applies at every change; without it
	// the lab only applies once.
	Agents bool
}

func (o *Options) logger() *zap.Logger {
	if o.Log == nil {
		return zap.NewNop()
	}
	return o.Log
}

// Report says how long Up took, step by step and host by host.
type Report struct {
	Topology string        `json:"topology"`
	Dir      string        `json:"dir"`
	Total    time.Duration `json:"total_ns"`
	Steps    []StepTime    `json:"steps"`
	Hosts    []HostTime    `json:"hosts"`
}

// StepTime is the duration of one step of Up. Steps run one after the other;
// within a step, hosts are handled in parallel.
type StepTime struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// HostTime is the time spent on one host.
type HostTime struct {
	Name     string        `json:"name"`
	Managed  bool          `json:"managed"`
	Build    time.Duration `json:"build_ns"`     // namespace links, OVS, br-phy, VMs (all but apply)
	OVSStart time.Duration `json:"ovs_start_ns"` // starting ovsdb-server and ovs-vswitchd (part of Build)
	Apply    time.Duration `json:"apply_ns"`     // running ovs-vxctl apply
}

// String renders the report for people, one line per step and per host.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s up in %v\n", r.Topology, r.Total.Round(time.Millisecond))
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  step %-10s %v\n", s.Name, s.Duration.Round(time.Millisecond))
	}
	for _, h := range r.Hosts {
		if h.Managed {
			fmt.Fprintf(&b, "  host %-12s build %v (ovs start %v), apply %v\n", h.Name,
				h.Build.Round(time.Millisecond), h.OVSStart.Round(time.Millisecond), h.Apply.Round(time.Millisecond))
		} else {
			fmt.Fprintf(&b, "  host %-12s build %v (kernel VTEP)\n", h.Name, h.Build.Round(time.Millisecond))
		}
	}
	return b.String()
}

// cleanupTimeout bounds the Down that a failed Up runs.
const cleanupTimeout = 2 * time.Minute

// Up builds the lab. It refuses to start when any part of the lab already
// exists, and removes what it built when it fails half way.
func Up(ctx context.Context, o Options) (rep *Report, err error) {
	start := time.Now()
	log := o.logger()
	p, err := newPlan(o)
	if err != nil {
		return nil, err
	}
	if _, err := directoryMembers(o.Topology); err != nil {
		return nil, err
	}
	if err := checkAbsent(p); err != nil {
		return nil, err
	}
	if !o.SkipApply {
		for _, h := range o.Topology.ManagedHosts() {
			if h.Datapath == topology.DatapathSystem {
				log.Warn("host uses the kernel datapath, which the lab's OVS may not have; use datapath: netdev for labs", zap.String("host", h.Name))
			}
		}
	}
	rep = &Report{Topology: o.Topology.Name, Dir: p.dir}
	for _, hp := range p.hosts {
		rep.Hosts = append(rep.Hosts, HostTime{Name: hp.h.Name, Managed: hp.h.Managed})
	}
	defer func() {
		if err == nil {
			return
		}
		log.Warn("lab up failed, removing what was built", zap.Error(err))
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := down(cctx, o, p.dir); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up after the failure: %w", derr))
		}
		err = fmt.Errorf("%w (what was built has been removed)", err)
		rep = nil
	}()
	step := func(name string, f func() error) error {
		t := time.Now()
		err := f()
		rep.Steps = append(rep.Steps, StepTime{Name: name, Duration: time.Since(t)})
		log.Debug("lab step done", zap.String("step", name), zap.Duration("took", time.Since(t)), zap.Error(err))
		return err
	}
	if err := step("namespaces", func() error { return p.namespaces(ctx) }); err != nil {
		return nil, err
	}
	if err := step("hosts", func() error {
		return p.forHosts(func(i int, hp *hostPlan) error {
			t := time.Now()
			err := p.buildHost(ctx, hp, &rep.Hosts[i])
			rep.Hosts[i].Build = time.Since(t)
			return err
		}, false)
	}); err != nil {
		return nil, err
	}
	hasDir := len(o.Topology.Directory) > 0
	if hasDir {
		// The directory's addresses go on the underlay with the
		// controllers'; the controllers need the cluster's leader.
		if err := step("directory", func() error {
			if err := p.controllerRoutes(ctx); err != nil {
				return err
			}
			return p.startDirectory(ctx)
		}); err != nil {
			return nil, err
		}
	}
	if p.withCtrl {
		if err := step("controller", func() error {
			if !hasDir {
				if err := p.controllerRoutes(ctx); err != nil {
					return err
				}
			}
			if o.SkipApply {
				return nil
			}
			return p.startController(ctx)
		}); err != nil {
			return nil, err
		}
	}
	if !o.SkipApply {
		if err := step("apply", func() error {
			return p.forHosts(func(i int, hp *hostPlan) error {
				t := time.Now()
				err := p.apply(ctx, hp)
				rep.Hosts[i].Apply = time.Since(t)
				return err
			}, true)
		}); err != nil {
			return nil, err
		}
		if o.Agents || p.hasBound() {
			if err := step("agents", func() error { return p.agentsAndPlugs(ctx) }); err != nil {
				return nil, err
			}
		}
		if len(o.Topology.HardwareVTEPs()) > 0 {
			if err := step("hwvtep", func() error { return p.applyHardwareVTEPs(ctx, rep) }); err != nil {
				return nil, err
			}
		}
	}
	rep.Total = time.Since(start)
	log.Info("lab up", zap.String("topology", o.Topology.Name), zap.Duration("took", rep.Total))
	return rep, nil
}

// checkAbsent fails when any namespace or state of the lab exists.
func checkAbsent(p *plan) error {
	nss, err := labNamespaces(p.o.Topology.Name)
	if err != nil {
		return err
	}
	var what []string
	if len(nss) > 0 {
		what = append(what, "namespaces "+strings.Join(nss, ", "))
	}
	if entries, err := os.ReadDir(p.dir); err == nil && len(entries) > 0 {
		what = append(what, "state in "+p.dir)
	}
	if pids := labDaemons(p.dir); len(pids) > 0 {
		what = append(what, fmt.Sprintf("OVS daemons with pids %v", pids))
	}
	if len(what) > 0 {
		return fmt.Errorf("lab %s is already (partly) up (%s): run `ovs-vxctl lab down` for it first", p.o.Topology.Name, strings.Join(what, "; "))
	}
	return nil
}

// forHosts runs f for every host (only managed ones when managedOnly) in
// parallel and joins the errors, each naming its host.
func (p *plan) forHosts(f func(i int, hp *hostPlan) error, managedOnly bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.hosts))
	for i, hp := range p.hosts {
		if managedOnly && !hp.h.Managed {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(i, hp); err != nil {
				errs[i] = fmt.Errorf("host %s: %w", hp.h.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// namespaces creates the state directory, every namespace of the lab and the
// underlay bridge.
func (p *plan) namespaces(ctx context.Context) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("creating lab state directory: %w", err)
	}
	if err := writeRecord(p.dir, p.o); err != nil {
		return err
	}
	lines := []string{"netns add " + p.ul}
	for _, hp := range p.hosts {
		lines = append(lines, "netns add "+hp.ns)
		for _, vm := range hp.vms {
			lines = append(lines, "netns add "+vm.ns)
		}
	}
	if err := ipBatch(ctx, "", lines); err != nil {
		return fmt.Errorf("creating namespaces: %w", err)
	}
	// STP is off by default, so ports forward at once; snooping off so
	// IPv6 neighbour discovery is flooded without a querier.
	if err := ipBatch(ctx, p.ul, []string{
		"link set dev lo up",
		fmt.Sprintf("link add name %s type bridge mcast_snooping 0", UnderlayBridge),
		fmt.Sprintf("link set dev %s mtu %d up", UnderlayBridge, UnderlayMTU),
	}); err != nil {
		return fmt.Errorf("creating the underlay bridge: %w", err)
	}
	return nil
}

// buildHost builds one host: its underlay link and VMs, while its OVS starts
// (managed), then br-phy and the VTEP address (managed) or the kernel VTEP
// (unmanaged).
func (p *plan) buildHost(ctx context.Context, hp *hostPlan, ht *HostTime) error {
	if hp.h.IsHardwareVTEP() {
		return p.buildHardwareVTEP(ctx, hp, ht)
	}
	inst := HostInstance(p.o, hp.h.Name)
	var ovsErr error
	var wg sync.WaitGroup
	if hp.h.Managed {
		// Starting OVS needs only the namespace: overlap it with the links.
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			ovsErr = inst.Start(ctx, true)
			ht.OVSStart = time.Since(t)
		}()
	}
	linkErr := p.buildLinks(ctx, hp)
	wg.Wait()
	if err := errors.Join(linkErr, ovsErr); err != nil {
		return err
	}
	if !hp.h.Managed {
		return p.buildKernelHost(ctx, hp)
	}
	if _, err := inst.Vsctl(ctx,
		"add-br", PhyBridge,
		"--", "set", "Bridge", PhyBridge, "datapath_type=netdev", "external_ids:"+MarkKey+"="+p.o.Topology.Name,
		"--", "set", "Interface", PhyBridge, fmt.Sprintf("mtu_request=%d", UnderlayMTU),
		"--", "add-port", PhyBridge, UnderlayIf); err != nil {
		return fmt.Errorf("creating %s: %w", PhyBridge, err)
	}
	if err := ipBatch(ctx, hp.ns, p.vtepLines(hp, PhyBridge)); err != nil {
		return fmt.Errorf("addressing the VTEP: %w", err)
	}
	if err := txOff(ctx, hp.ns, UnderlayIf); err != nil {
		return err
	}
	if err := p.forward(ctx, hp); err != nil {
		return err
	}
	return waitOVSRoutes(ctx, inst, hp.others)
}

// buildLinks links the host to the underlay and creates its VM ports (the
// VMs in parallel).
func (p *plan) buildLinks(ctx context.Context, hp *hostPlan) error {
	if err := ipBatch(ctx, p.ul, []string{
		fmt.Sprintf("link add name %s mtu %d type veth peer name %s mtu %d netns %s", hp.ulIf, UnderlayMTU, UnderlayIf, UnderlayMTU, hp.ns),
		fmt.Sprintf("link set dev %s master %s up", hp.ulIf, UnderlayBridge),
	}); err != nil {
		return fmt.Errorf("linking to the underlay: %w", err)
	}
	lines := []string{"link set dev lo up", "link set dev " + UnderlayIf + " up"}
	for _, vm := range hp.vms {
		lines = append(lines,
			fmt.Sprintf("link add name %s mtu %d type veth peer name %s mtu %d netns %s", vm.port.Name, VMMTUOf(vm.port), VMIf, VMMTUOf(vm.port), vm.ns),
			fmt.Sprintf("link set dev %s up", vm.port.Name))
	}
	if err := ipBatch(ctx, hp.ns, lines); err != nil {
		return fmt.Errorf("creating links: %w", err)
	}
	errs := make([]error, len(hp.vms))
	var wg sync.WaitGroup
	for i, vm := range hp.vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.buildVM(ctx, vm); err != nil {
				errs[i] = fmt.Errorf("port %s: %w", vm.port.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// vtepLines put the host's VTEP address on dev and add on-link host routes
// to every other VTEP. The address's prefix covers every VTEP of the lab:
// OVS 3.1 drops a gateway-less route from its tunnel routing table unless an
// address of the device has a subnet containing the destination, so a /32
// VTEP with host routes alone leaves OVS unable to tunnel. The host routes
// keep VTEPs reachable when the common prefix is /0 (the kernel adds no
// route for a /0 address).
func (p *plan) vtepLines(hp *hostPlan, dev string) []string {
	v := hp.h.VTEP.Unmap()
	lines := []string{fmt.Sprintf("link set dev %s up", dev)}
	if v.Is4() {
		lines = append(lines, fmt.Sprintf("addr add %s/%d dev %s", v, hp.bits, dev))
	} else {
		lines = append(lines, fmt.Sprintf("addr add %s/%d dev %s nodad", v, hp.bits, dev))
	}
	for _, o := range hp.others {
		lines = append(lines, fmt.Sprintf("route add %s/%d dev %s", o, hostBits(o), dev))
	}
	for _, c := range p.controllerIPs() {
		if c.Is4() == v.Is4() && !slices.Contains(hp.others, c) {
			lines = append(lines, fmt.Sprintf("route add %s/%d dev %s", c, hostBits(c), dev))
		}
	}
	return lines
}

// buildVM configures eth0 in a VM namespace.
func (p *plan) buildVM(ctx context.Context, vm *vmPlan) error {
	lines := []string{
		"link set dev lo up",
		fmt.Sprintf("link set dev %s address %s up", VMIf, vm.mac),
	}
	ip := vm.port.IP
	if ip.IsValid() {
		line := fmt.Sprintf("addr add %s dev %s", ip, VMIf)
		if ip.Addr().Is6() {
			line += " nodad"
		}
		lines = append(lines, line)
	}
	if gw := vm.port.Gateway; gw.IsValid() {
		line := fmt.Sprintf("route add default via %s dev %s", gw, VMIf)
		if !ip.IsValid() || !ip.Masked().Contains(gw) {
			line += " onlink"
		}
		lines = append(lines, line)
	}
	if err := ipBatch(ctx, vm.ns, lines); err != nil {
		return fmt.Errorf("configuring %s in %s: %w", VMIf, vm.ns, err)
	}
	return txOff(ctx, vm.ns, VMIf)
}

// waitOVSRoutes waits until the host's ovs-vswitchd has learned a route to
// every peer VTEP through br-phy: OVS reads its tunnel routing table from the
// namespace, and without those routes it drops tunnelled packets.
func waitOVSRoutes(ctx context.Context, inst *ovsrun.Instance, peers []netip.Addr) error {
	if len(peers) == 0 {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := inst.Appctl(ctx, "ovs/route/show")
		missing := missingRoutes(out, peers)
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("reading OVS's tunnel routes: %w", err)
			}
			return fmt.Errorf("OVS has no tunnel route to %v via %s (ovs/route/show:\n%s)", missing, PhyBridge, strings.TrimSpace(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// missingRoutes returns the peers that ovs/route/show output lacks as host
// routes through br-phy (lines like "Cached: 10.0.0.2/32 dev br-phy SRC ...").
func missingRoutes(out string, peers []netip.Addr) []netip.Addr {
	have := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+2 < len(f); i++ {
			if f[i+1] == "dev" && f[i+2] == PhyBridge {
				have[f[i]] = true
			}
		}
	}
	var missing []netip.Addr
	for _, peer := range peers {
		if !have[fmt.Sprintf("%s/%d", peer, hostBits(peer))] {
			missing = append(missing, peer)
		}
	}
	return missing
}

// apply runs `ovs-vxctl apply` for the host inside its namespace, against
// its OVS.
func (p *plan) apply(ctx context.Context, hp *hostPlan) error {
	inst := HostInstance(p.o, hp.h.Name)
	cmd := inst.Command(ctx, p.o.Self, "apply", "-f", p.o.File, "--host", hp.h.Name, "--db", inst.DBEndpoint())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ovs-vxctl apply: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	p.o.logger().Debug("applied", zap.String("host", hp.h.Name), zap.String("output", strings.TrimSpace(stdout.String())))
	return nil
}

// Down removes the lab: it stops every OVS of the lab (deleting its bridges
// first), ends every process left in the lab's namespaces, deletes the
// namespaces (found by name, so a lab whose topology changed goes too) and
// the state directory. It works on a half-built lab and on none at all,
// and needs only Topology.Name (and Dir, if Up was given one).
func Down(ctx context.Context, o Options) error {
	if o.Topology == nil || !nameRE.MatchString(o.Topology.Name) {
		return fmt.Errorf("a topology with a valid name is needed")
	}
	return down(ctx, o, o.dir())
}

func down(ctx context.Context, o Options, dir string) error {
	log := o.logger()
	start := time.Now()
	var errs []error
	stopAgents(dir)
	if err := stopDirectory(dir); err != nil {
		errs = append(errs, err)
	}

	// Every OVS of the lab: those of the topology's managed hosts and any
	// other instance directory left in the state root.
	insts := map[string]*ovsrun.Instance{}
	for _, h := range o.Topology.Hosts {
		if h.Managed {
			i := HostInstance(o, h.Name)
			insts[i.Dir] = i
		}
	}
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				i := HostInstance(o, e.Name())
				i.Dir = filepath.Join(dir, e.Name())
				insts[i.Dir] = i
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, inst := range insts {
		if _, err := os.Stat(inst.Dir); err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopInstance(ctx, inst); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stopping OVS in %s: %w", inst.Dir, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	killPids(labDaemons(dir))
	log.Debug("lab down: OVS stopped", zap.Duration("after", time.Since(start)))

	nss, err := labNamespaces(o.Topology.Name)
	if err != nil {
		errs = append(errs, err)
	}
	killPids(nsPids(nss))
	log.Debug("lab down: processes ended", zap.Duration("after", time.Since(start)))
	if len(nss) > 0 {
		lines := make([]string, len(nss))
		for i, ns := range nss {
			lines[i] = "netns del " + ns
		}
		// -force: go on past a namespace that vanished meanwhile.
		if _, err := run(ctx, strings.Join(lines, "\n")+"\n", "ip", "-force", "-batch", "-"); err != nil {
			log.Debug("deleting namespaces", zap.Error(err))
		}
	}
	log.Debug("lab down: namespaces deleted", zap.Duration("after", time.Since(start)))
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("removing lab state: %w", err))
	}
	if o.Dir == "" {
		// Remove the default roots too when no other lab uses them.
		os.Remove(filepath.Dir(dir))
		os.Remove(filepath.Dir(filepath.Dir(dir)))
	}

	if left, _ := labNamespaces(o.Topology.Name); len(left) > 0 {
		errs = append(errs, fmt.Errorf("namespaces left behind: %s", strings.Join(left, ", ")))
	}
	if left := labDaemons(dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("OVS daemons still running: pids %v", left))
	}
	log.Info("lab down", zap.String("topology", o.Topology.Name), zap.Duration("took", time.Since(start)))
	if len(errs) > 0 {
		return fmt.Errorf("lab %s: %w", o.Topology.Name, errors.Join(errs...))
	}
	return nil
}

// stopInstance stops one OVS. `ovs-appctl exit --cleanup` makes
// ovs-vswitchd delete its datapath, so the userspace datapath's persistent
// taps go, and exit at once; the daemons are then ended by pid, counting
// zombies as gone (this machine's init may reap detached daemons seconds
// late). Instance.Stop finally covers whatever is left, e.g. an ovs-vswitchd
// that did not answer.
func stopInstance(ctx context.Context, inst *ovsrun.Instance) error {
	if inst.NetNS != "" && !nsExists(inst.NetNS) {
		inst.NetNS = "" // the sockets are reachable from any namespace
	}
	if inst.Running("ovs-vswitchd") {
		inst.Appctl(ctx, "--timeout=5", "exit", "--cleanup")
	}
	for _, daemon := range []string{"ovs-vswitchd", "ovsdb-server"} {
		pidFile := filepath.Join(inst.Dir, daemon+".pid")
		pid, ok := readPid(pidFile)
		if !ok {
			continue
		}
		// A stale pid file may name a pid reused by another program: only
		// end the process if it is this instance's daemon.
		if isDaemonOf(pid, inst.Dir) {
			killPids([]int{pid})
		}
		if !alive(pid) || !isDaemonOf(pid, inst.Dir) {
			os.Remove(pidFile)
		}
	}
	return inst.Stop(ctx)
}

// readPid reads an OVS pid file.
func readPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}
