// Package ovsruntest gives tests a private Open vSwitch (an ovsrun.Instance)
// in a network namespace of its own (the userspace datapath creates a tap
// device per bridge, which would clash between instances) with a short
// directory under /tmp (unix socket paths must stay under 108 bytes), and
// removes all of it when the test ends.
package ovsruntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
)

// Tools are the programs Start needs.
var Tools = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ip"}

// Require skips t under -short (the unit tier: no root, no OVS) and unless
// it runs as root (network namespaces) with Tools and extra installed.
func Require(t testing.TB, extra ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-OVS test: skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run Open vSwitch in a network namespace")
	}
	for _, tool := range append(append([]string(nil), Tools...), extra...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install openvswitch-switch iproute2)", tool)
		}
	}
}

// uniqueName is prefix followed by eight random hex digits.
func uniqueName(prefix string) string {
	var rnd [4]byte
	rand.Read(rnd[:])
	return prefix + hex.EncodeToString(rnd[:])
}

// NetNS creates a network namespace named prefix followed by random hex
// digits, with its loopback up, and deletes it when t ends. It needs root.
func NetNS(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	addNetNS(t, name)
	return name
}

func addNetNS(t testing.TB, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("creating network namespace %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("deleting network namespace %s: %v: %s", name, err, out)
		}
	})
	Run(t, name, "ip", "link", "set", "lo", "up")
}

// Start starts ovsdb-server and ovs-vswitchd in a new network namespace
// (named prefix plus random hex digits, see NetNS) and a new directory
// /tmp/<namespace>-*. When t ends it stops OVS, deletes the namespace and
// removes the directory, unless t failed: then the directory stays, with
// the daemons' logs, and t says where. It skips t as Require does.
func Start(t testing.TB, prefix string) *ovsrun.Instance {
	t.Helper()
	Require(t)
	name := uniqueName(prefix)
	dir, err := os.MkdirTemp("/tmp", name+"-")
	if err != nil {
		t.Fatalf("creating the OVS directory: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("OVS logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	addNetNS(t, name)
	inst := &ovsrun.Instance{Dir: dir, NetNS: name}
	// Registered last, so it runs first: OVS stops before its namespace
	// and directory go.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := inst.Stop(ctx); err != nil {
			t.Logf("stopping OVS in %s: %v", dir, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := inst.Start(ctx, true); err != nil {
		t.Fatalf("starting OVS in %s (namespace %s): %v", dir, name, err)
	}
	return inst
}

// Run runs name with args inside network namespace ns ("" for the test's
// own) and returns its combined output; it fails t if the command fails.
func Run(t testing.TB, ns, name string, args ...string) string {
	t.Helper()
	argv := append([]string{name}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// ListenTCP opens a TCP listener on addr inside network namespace ns (a
// socket belongs to the namespace it was created in). The caller closes it.
func ListenTCP(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := InNetNS(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in network namespace %s: %v", addr, ns, err)
	}
	return l
}

// InNetNS runs fn on a thread of its own moved into network namespace ns
// (sockets made and commands forked there belong to ns), then moves the
// thread back before it is unlocked. A thread left in ns would do harm: if
// it is the process's main thread, the whole test process looks like a
// member of ns, and `lab down` ends every process it finds in a lab's
// namespaces. When the way back fails, the goroutine ends still locked and
// Go ends the thread with it.
func InNetNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leaving network namespace %s: %w", ns, err))
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Pid is the process ID of inst's daemon ("ovsdb-server" or
// "ovs-vswitchd"), from its pid file.
func Pid(t testing.TB, inst *ovsrun.Instance, daemon string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(inst.Dir, daemon+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", daemon, err)
	}
	return pid
}
