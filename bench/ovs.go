package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Prefix names everything the benchmark creates outside its own process:
// network namespaces, directories, lab topologies.
const Prefix = "bx"

// ovsEnv is a private Open vSwitch in a network namespace of its own (the
// userspace datapath makes a tap device per bridge, which must not clash
// with anything on the machine).
type ovsEnv struct {
	inst *ovsrun.Instance
	ns   string
}

// startOVS starts ovsdb-server and ovs-vswitchd in namespace bx-<pid>-<tag>
// with their files under /tmp/bx-<pid>-<tag>.
func startOVS(ctx context.Context, tag string) (*ovsEnv, error) {
	name := fmt.Sprintf("%s-%d-%s", Prefix, os.Getpid(), tag)
	dir := filepath.Join("/tmp", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating network namespace %s: %v: %s", name, err, out)
	}
	e := &ovsEnv{inst: &ovsrun.Instance{Dir: dir, NetNS: name}, ns: name}
	if _, err := e.inst.Run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		e.stop()
		return nil, err
	}
	if err := e.inst.Start(ctx, true); err != nil {
		e.stop()
		return nil, fmt.Errorf("starting OVS in %s: %w", name, err)
	}
	return e, nil
}

// stop stops the daemons and removes the namespace and directory.
func (e *ovsEnv) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.inst.Stop(ctx); err != nil {
		progress("stopping OVS in %s: %v", e.ns, err)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "del", e.ns).CombinedOutput(); err != nil {
		progress("deleting namespace %s: %v: %s", e.ns, err, out)
	}
	os.RemoveAll(e.inst.Dir)
}

// target is br-tun's management socket as openflow.Dial takes it.
func (e *ovsEnv) target() string { return "unix:" + e.inst.MgmtSocket(topology.BridgeTun) }

// freshBridge deletes br-tun (with its flows) and creates it anew, empty,
// as apply creates it: userspace datapath, OpenFlow 1.3, secure fail mode.
func (e *ovsEnv) freshBridge(ctx context.Context) error {
	if _, err := e.inst.Vsctl(ctx, "--if-exists", "del-br", topology.BridgeTun,
		"--", "add-br", topology.BridgeTun,
		"--", "set", "bridge", topology.BridgeTun, "datapath_type=netdev", "protocols=OpenFlow13",
		"fail_mode=secure", "other_config:disable-in-band=true"); err != nil {
		return fmt.Errorf("re-creating %s: %w", topology.BridgeTun, err)
	}
	// A new bridge may hold a NORMAL flow until its fail mode applies.
	if _, err := e.inst.Ofctl(ctx, "del-flows", topology.BridgeTun); err != nil {
		return fmt.Errorf("emptying %s: %w", topology.BridgeTun, err)
	}
	n, err := e.flowCount(ctx)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("fresh %s holds %d flows, want 0", topology.BridgeTun, n)
	}
	return nil
}

// flowCount asks OVS how many flows br-tun holds.
func (e *ovsEnv) flowCount(ctx context.Context) (int, error) {
	out, err := e.inst.Ofctl(ctx, "dump-aggregate", topology.BridgeTun)
	if err != nil {
		return 0, err
	}
	i := strings.Index(out, "flow_count=")
	if i < 0 {
		return 0, fmt.Errorf("dump-aggregate printed no flow_count: %q", out)
	}
	var n int
	if _, err := fmt.Sscanf(out[i:], "flow_count=%d", &n); err != nil {
		return 0, fmt.Errorf("dump-aggregate: %w: %q", err, out)
	}
	return n, nil
}

// ofctlBundle runs `ovs-ofctl -O OpenFlow13 --bundle add-flows` of file
// against br-tun and returns its wall time and its CPU time. It runs
// outside the namespace: the management socket is a file, and `ip netns
// exec` would add its own start-up time to the C tool's side only.
func (e *ovsEnv) ofctlBundle(ctx context.Context, file string) (took, cpu time.Duration, err error) {
	cmd := exec.CommandContext(ctx, "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows",
		"unix:"+e.inst.MgmtSocket(topology.BridgeTun), file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	took = time.Since(start)
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return took, cpu, fmt.Errorf("ovs-ofctl --bundle add-flows: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return took, cpu, nil
}

// runOut runs a program and returns its standard output.
func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

// progress writes a line about what the benchmark is doing to standard error.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
