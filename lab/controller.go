package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// ControllerLog is the file, in the lab's directory, the lab's controller
// logs to.
const ControllerLog = "controller.log"

// controllerAddr returns the address the topology's controller listens on
// when any managed host is in controller mode (the lab then runs it).
func controllerAddr(t *topology.Topology) (netip.AddrPort, bool, error) {
	need := false
	for _, h := range t.ManagedHosts() {
		need = need || h.Mode == topology.ModeController
	}
	if !need {
		return netip.AddrPort{}, false, nil
	}
	_, hostport, ok := strings.Cut(t.Controller, ":")
	if !ok {
		return netip.AddrPort{}, false, fmt.Errorf("controller %q: want tcp:IP:PORT or ssl:IP:PORT", t.Controller)
	}
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("controller %q: %w", t.Controller, err)
	}
	return ap, true, nil
}

// controllerRoutes puts the controller's address on the underlay bridge, with
// on-link routes to every VTEP of its family, so switches reach it across the
// underlay exactly as they reach each other.
func (p *plan) controllerRoutes(ctx context.Context) error {
	a := p.ctrl.Addr().Unmap()
	lines := []string{fmt.Sprintf("addr add %s/%d dev %s", a, hostBits(a), UnderlayBridge)}
	if a.Is6() {
		lines[0] += " nodad"
	}
	for _, hp := range p.hosts {
		if v := hp.h.VTEP.Unmap(); v.Is4() == a.Is4() {
			lines = append(lines, fmt.Sprintf("route add %s/%d dev %s", v, hostBits(v), UnderlayBridge))
		}
	}
	if err := ipBatch(ctx, p.ul, lines); err != nil {
		return fmt.Errorf("addressing the controller on the underlay: %w", err)
	}
	// The switches' TCP to the controller crosses OVS's userspace datapath,
	// which drops frames with partial checksums (see the kernel VTEPs).
	return txOff(ctx, p.ul, UnderlayBridge)
}

// startController runs `ovs-vxctl controller` in the underlay namespace, in
// the background, logging to the lab's directory, and waits until it
// listens. Down ends it with every other process of the lab's namespaces.
func (p *plan) startController(ctx context.Context) error {
	logPath := filepath.Join(p.dir, ControllerLog)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("creating the controller's log: %w", err)
	}
	defer logf.Close()
	args := []string{"netns", "exec", p.ul, p.o.Self, "controller", "-f", p.o.File, "--listen", p.o.Topology.Controller}
	args = append(args, p.o.ControllerArgs...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the controller: %w", err)
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
			return fmt.Errorf("the controller exited at once (%v): %s", err, strings.TrimSpace(string(b)))
		case <-deadline.C:
			return fmt.Errorf("the controller did not listen on %s within 10s (see %s)", p.o.Topology.Controller, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if listening(ctx, p.ul, p.ctrl) {
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
