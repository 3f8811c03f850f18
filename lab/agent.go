package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/hostagent"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Files of a host's agent, in the host's OVS directory.
const (
	// AgentLog is where the host's `ovs-vxctl agent` logs (JSON lines).
	AgentLog = "agent.log"
	// AgentPid holds its process ID.
	AgentPid = "agent.pid"
)

// agentStartWait bounds how long Up waits for an agent's first apply.
const agentStartWait = 30 * time.Second

// startAgent runs `ovs-vxctl agent` for the host inside its namespace, in
// the background, and waits until it has logged the end of its first apply.
// Down ends it before it stops the host's OVS.
func (p *plan) startAgent(ctx context.Context, hp *hostPlan) error {
	inst := HostInstance(p.o, hp.h.Name)
	logPath := filepath.Join(inst.Dir, AgentLog)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("creating the agent's log: %w", err)
	}
	defer logf.Close()
	// Not bound to ctx: the agent outlives `lab up`. `ip netns exec` execs
	// the agent, so the pid is the agent's.
	cmd := exec.Command("ip", "netns", "exec", hp.ns, p.o.Self, "agent", "-f", p.o.File, "--host", hp.h.Name,
		"--db", inst.DBEndpoint(), "--log-format", "json")
	cmd.Env = append(os.Environ(), inst.Env()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the agent: %w", err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(inst.Dir, AgentPid), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("recording the agent's pid: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return waitFirstApply(ctx, logPath, done)
}

// waitFirstApply waits until the agent logging to logPath has finished its
// first apply (successful or not: a failure is retried, and the log says
// why), failing if it exits first.
func waitFirstApply(ctx context.Context, logPath string, exited <-chan error) error {
	deadline := time.NewTimer(agentStartWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the agent exited at once (%v): %s", err, strings.TrimSpace(string(b)))
		case <-deadline.C:
			return fmt.Errorf("the agent did not finish its first apply within %s (see %s)", agentStartWait, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			b, _ := os.ReadFile(logPath)
			for _, msg := range []string{hostagent.MsgApplied, hostagent.MsgUnchanged, hostagent.MsgFailed} {
				if bytes.Contains(b, []byte(`"msg":"`+msg+`"`)) {
					return nil
				}
			}
		}
	}
}

// plugBound plugs the host's ports given by iface_id into br-int as
// libvirt does: under the port's name, with external_ids:iface-id and
// attached-mac on the Interface, nothing else. The agent (or the next
// apply) binds them.
func (p *plan) plugBound(ctx context.Context, hp *hostPlan) error {
	inst := HostInstance(p.o, hp.h.Name)
	var args []string
	for _, vm := range hp.vms {
		if vm.port.IfaceID == "" {
			continue
		}
		name := vm.port.Name
		args = append(args, "--", "--may-exist", "add-port", topology.BridgeInt, name,
			"--", "set", "Interface", name, "external_ids:iface-id="+vm.port.IfaceID, "external_ids:attached-mac="+vm.mac.String())
	}
	if len(args) == 0 {
		return nil
	}
	if _, err := inst.Vsctl(ctx, args[1:]...); err != nil {
		return fmt.Errorf("plugging the iface_id ports libvirt-style: %w", err)
	}
	return nil
}

// hasBound reports whether any managed host has a port given by iface_id.
func (p *plan) hasBound() bool {
	for _, hp := range p.hosts {
		for _, vm := range hp.vms {
			if hp.h.Managed && vm.port.IfaceID != "" {
				return true
			}
		}
	}
	return false
}

// stopAgents ends the agents of the lab in dir (by their pid files, and only
// processes that are still an ovs-vxctl agent), so that none re-applies
// while Down takes the hosts apart.
func stopAgents(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*", AgentPid))
	var pids []int
	for _, f := range files {
		pid, ok := readPid(f)
		if ok && isAgent(pid) {
			pids = append(pids, pid)
		}
		os.Remove(f)
	}
	killPids(pids)
}

// isAgent reports whether process pid runs `ovs-vxctl agent`.
func isAgent(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || syscall.Kill(pid, 0) != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 2 && args[1] == "agent" && args[2] == "-f"
}

// agentsAndPlugs starts the agents (with Options.Agents), then plugs the
// iface_id ports libvirt-style; without agents, one more apply binds them.
func (p *plan) agentsAndPlugs(ctx context.Context) error {
	if p.o.Agents {
		if err := p.forHosts(func(_ int, hp *hostPlan) error { return p.startAgent(ctx, hp) }, true); err != nil {
			return err
		}
	}
	if !p.hasBound() {
		return nil
	}
	return p.forHosts(func(_ int, hp *hostPlan) error {
		if err := p.plugBound(ctx, hp); err != nil || p.o.Agents {
			return err
		}
		return p.apply(ctx, hp)
	}, true)
}
