package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// ControllerLog is the file, in the lab's directory, the lab's controller
// logs to when the topology has one controller target.
const ControllerLog = "controller.log"

// controller is one `ovs-vxctl controller` process the lab runs: one per
// controller target of the topology.
type controller struct {
	target string         // as the topology gives it: --listen
	addr   netip.AddrPort // where it listens
	name   string         // --name; empty for a single controller
	log    string         // its log file, in the lab's directory
}

// ReplicaName is the --name the lab gives the controller of the topology's
// i-th controller target (0-based) when there are several.
func ReplicaName(i int) string { return fmt.Sprintf("ctl%d", i+1) }

// ReplicaLog is the log file, in the lab's directory, of replica name.
func ReplicaLog(name string) string { return "controller-" + name + ".log" }

// controllers returns the controllers the lab runs: one per controller
// target when any managed host is in controller mode, none otherwise. A
// single target without a directory keeps the unnamed controller logging
// to ControllerLog.
func controllers(t *topology.Topology) ([]controller, error) {
	need := false
	for _, h := range t.ManagedHosts() {
		need = need || h.Mode == topology.ModeController
	}
	if !need {
		return nil, nil
	}
	targets := t.ControllerTargets()
	if len(targets) == 0 {
		return nil, fmt.Errorf("hosts are in controller mode but the topology names no controller")
	}
	var out []controller
	for i, target := range targets {
		_, hostport, ok := strings.Cut(target, ":")
		if !ok {
			return nil, fmt.Errorf("controller %q: want tcp:IP:PORT or ssl:IP:PORT", target)
		}
		ap, err := netip.ParseAddrPort(hostport)
		if err != nil {
			return nil, fmt.Errorf("controller %q: %w", target, err)
		}
		c := controller{target: target, addr: ap, log: ControllerLog}
		// Replicas sharing a directory write their names in it.
		if len(targets) > 1 || len(t.Directory) > 0 {
			c.name = ReplicaName(i)
			c.log = ReplicaLog(c.name)
		}
		out = append(out, c)
	}
	return out, nil
}

// controllerIPs are the distinct addresses the lab's controllers and
// directory members listen on.
func (p *plan) controllerIPs() []netip.Addr {
	var out []netip.Addr
	for _, c := range p.ctrls {
		if a := c.addr.Addr().Unmap(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, a := range directoryIPs(p.o.Topology) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// controllerRoutes puts the controllers' addresses on the underlay bridge,
// with on-link routes to every VTEP of their family, so switches reach them
// across the underlay exactly as they reach each other.
func (p *plan) controllerRoutes(ctx context.Context) error {
	var lines []string
	for _, a := range p.controllerIPs() {
		line := fmt.Sprintf("addr add %s/%d dev %s", a, hostBits(a), UnderlayBridge)
		if a.Is6() {
			line += " nodad"
		}
		lines = append(lines, line)
	}
	var routed []netip.Addr
	for _, hp := range p.hosts {
		v := hp.h.VTEP.Unmap()
		if slices.Contains(routed, v) || !slices.ContainsFunc(p.controllerIPs(), func(a netip.Addr) bool { return a.Is4() == v.Is4() }) {
			continue
		}
		routed = append(routed, v)
		lines = append(lines, fmt.Sprintf("route add %s/%d dev %s", v, hostBits(v), UnderlayBridge))
	}
	if err := ipBatch(ctx, p.ul, lines); err != nil {
		return fmt.Errorf("addressing the controller on the underlay: %w", err)
	}
	// The switches' TCP to the controller crosses OVS's userspace datapath,
	// which drops frames with partial checksums (see the kernel VTEPs).
	return txOff(ctx, p.ul, UnderlayBridge)
}

// startController runs the lab's controllers, one after the other.
func (p *plan) startController(ctx context.Context) error {
	for _, c := range p.ctrls {
		if err := p.startOneController(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// controllerArgs are the arguments of `ip` that run controller c.
func (p *plan) controllerArgs(c controller) []string {
	args := []string{"netns", "exec", p.ul, p.o.Self, "controller", "-f", p.o.File, "--listen", c.target}
	if c.name != "" {
		args = append(args, "--name", c.name)
	}
	// Kept in the lab's directory, so a controller killed and started
	// again (as the failover tests do) rebuilds what it read from each
	// host; the caller's own --state-file wins.
	if !slices.ContainsFunc(p.o.ControllerArgs, func(a string) bool { return strings.HasPrefix(a, "--state-file") }) {
		args = append(args, "--state-file", filepath.Join(p.dir, controllerState(c.name)))
	}
	return append(args, p.o.ControllerArgs...)
}

// controllerState is the --state-file name of the controller called name
// ("" for a single unnamed controller).
func controllerState(name string) string {
	if name == "" {
		return "controller-state.json"
	}
	return "controller-state-" + name + ".json"
}

// startOneController runs `ovs-vxctl controller` for c in the underlay
// namespace, in the background, logging to the lab's directory, and waits
// until it listens. Down ends it with every other process of the lab's
// namespaces.
func (p *plan) startOneController(ctx context.Context, c controller) error {
	logPath := filepath.Join(p.dir, c.log)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("creating the controller's log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", p.controllerArgs(c)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the controller %s: %w", c.target, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the controller %s exited at once (%v): %s", c.target, err, strings.TrimSpace(string(b)))
		case <-deadline.C:
			return fmt.Errorf("the controller did not listen on %s within 10s (see %s)", c.target, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if listening(ctx, p.ul, c.addr) {
				return nil
			}
		}
	}
}

// listening reports whether something accepts TCP connections on ap inside
// namespace ns.
func listening(ctx context.Context, ns string, ap netip.AddrPort) bool {
	out, err := nsExec(ctx, ns, "ss", "-Hltn", "src", ap.String())
	return err == nil && strings.TrimSpace(out) != ""
}
