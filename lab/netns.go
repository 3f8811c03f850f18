package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs name with args, feeding stdin when it is not empty, and returns
// standard output; the error carries the command line and standard error.
func run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if stdin != "" {
			msg += "\ninput was:\n" + strings.TrimSpace(stdin)
		}
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// ipBatch runs iproute2 commands (one per line, without the leading "ip")
// in one process, inside namespace ns ("" for the current one). One process
// per namespace and step keeps Up fast. Lines must name devices with the
// "dev" or "name" keyword: ip reads a bare "a" as "address".
func ipBatch(ctx context.Context, ns string, lines []string) error {
	return batch(ctx, "ip", ns, lines)
}

// bridgeBatch is ipBatch for the bridge(8) tool.
func bridgeBatch(ctx context.Context, ns string, lines []string) error {
	return batch(ctx, "bridge", ns, lines)
}

func batch(ctx context.Context, tool, ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	_, err := run(ctx, strings.Join(lines, "\n")+"\n", tool, args...)
	return err
}

// nsExec runs argv inside namespace ns.
func nsExec(ctx context.Context, ns string, argv ...string) (string, error) {
	return run(ctx, "", "ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// txOff turns transmit checksum offload off on dev in ns: the userspace
// datapath and OVS's VXLAN receive path drop packets whose checksum the
// kernel left to a NIC that does not exist.
func txOff(ctx context.Context, ns, dev string) error {
	if _, err := nsExec(ctx, ns, "ethtool", "-K", dev, "tx", "off"); err != nil {
		return fmt.Errorf("turning checksum offload off on %s in %s: %w", dev, ns, err)
	}
	return nil
}

// nsExists reports whether the named network namespace exists.
func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, name))
	return err == nil
}

// labNamespaces lists the existing namespaces of the lab of topology topo,
// found by name so that a lab whose topology file changed is still found.
func labNamespaces(topo string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		if isLabNS(topo, e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// nsPids lists the processes running in any of the namespaces nss, as
// `ip netns pids` does (comparing /proc/PID/ns/net with the namespace
// files), in one pass over /proc.
func nsPids(nss []string) []int {
	type key struct{ dev, ino uint64 }
	want := map[key]bool{}
	for _, ns := range nss {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(netnsDir, ns), &st) == nil {
			want[key{st.Dev, st.Ino}] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) == nil && want[key{st.Dev, st.Ino}] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// labDaemons finds OVS daemons whose command line names a file under dir:
// the lab's daemons even when their pid files are gone.
func labDaemons(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && isDaemonOf(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isDaemonOf reports whether pid is an ovsdb-server or ovs-vswitchd whose
// command line names a file under dir.
func isDaemonOf(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	switch filepath.Base(args[0]) {
	case "ovsdb-server", "ovs-vswitchd":
	default:
		return false
	}
	prefix := filepath.Clean(dir) + "/"
	for _, a := range args[1:] {
		if strings.Contains(a, prefix) {
			return true
		}
	}
	return false
}

// killPids sends SIGTERM to pids, waits up to a few seconds for them to
// exit, then SIGKILLs the rest.
func killPids(pids []int) {
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
