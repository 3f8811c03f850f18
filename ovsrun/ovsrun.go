// Package ovsrun starts and stops private Open vSwitch instances: one
// ovsdb-server and one ovs-vswitchd with their own run, log and database
// directory, optionally inside a network namespace. The lab runs one per
// managed host; tests run them to talk to real OVS.
package ovsrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SchemaPath is where Debian's openvswitch-common installs the vswitch schema.
const SchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// Instance is one private OVS: its directory holds conf.db, db.sock, the
// pid and log files and each bridge's <bridge>.mgmt socket.
type Instance struct {
	Dir   string // OVS_RUNDIR, OVS_LOGDIR and OVS_DBDIR
	NetNS string // network namespace the daemons run in; "" for the current one
}

// DBEndpoint is the OVSDB endpoint of the instance, as --db takes it.
func (i *Instance) DBEndpoint() string { return "unix:" + filepath.Join(i.Dir, "db.sock") }

// MgmtSocket is the OpenFlow management socket of bridge.
func (i *Instance) MgmtSocket(bridge string) string {
	return filepath.Join(i.Dir, bridge+".mgmt")
}

// Env is the environment that points OVS's tools at this instance.
func (i *Instance) Env() []string {
	return []string{"OVS_RUNDIR=" + i.Dir, "OVS_LOGDIR=" + i.Dir, "OVS_DBDIR=" + i.Dir}
}

// Command builds a command that runs inside the instance's namespace with its
// environment.
func (i *Instance) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if i.NetNS != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", i.NetNS, name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Env = append(os.Environ(), i.Env()...)
	return cmd
}

// Run runs a command inside the instance and returns its standard output; the
// error carries standard error.
func (i *Instance) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := i.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Vsctl runs ovs-vsctl against the instance's database.
func (i *Instance) Vsctl(ctx context.Context, args ...string) (string, error) {
	return i.Run(ctx, "ovs-vsctl", append([]string{"--db=" + i.DBEndpoint(), "--timeout=10"}, args...)...)
}

// Ofctl runs ovs-ofctl -O OpenFlow13 against bridge's management socket.
func (i *Instance) Ofctl(ctx context.Context, verb, bridge string, args ...string) (string, error) {
	full := append([]string{"-O", "OpenFlow13", verb, "unix:" + i.MgmtSocket(bridge)}, args...)
	return i.Run(ctx, "ovs-ofctl", full...)
}

// Appctl runs ovs-appctl against the instance's ovs-vswitchd.
func (i *Instance) Appctl(ctx context.Context, args ...string) (string, error) {
	pid, err := readPid(filepath.Join(i.Dir, "ovs-vswitchd.pid"))
	if err != nil {
		return "", err
	}
	target := filepath.Join(i.Dir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid))
	return i.Run(ctx, "ovs-appctl", append([]string{"-t", target}, args...)...)
}

// Start creates the database if it does not exist and starts ovsdb-server and,
// when vswitchd is true, ovs-vswitchd. It waits until the database answers and
// returns an error naming the daemon that did not come up.
func (i *Instance) Start(ctx context.Context, vswitchd bool) error {
	if err := os.MkdirAll(i.Dir, 0o755); err != nil {
		return fmt.Errorf("creating OVS directory: %w", err)
	}
	db := filepath.Join(i.Dir, "conf.db")
	if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
		if _, err := i.Run(ctx, "ovsdb-tool", "create", db, SchemaPath); err != nil {
			return fmt.Errorf("creating OVS database: %w", err)
		}
	}
	if _, err := i.Run(ctx, "ovsdb-server", db,
		"--remote=punix:"+filepath.Join(i.Dir, "db.sock"),
		"--pidfile="+filepath.Join(i.Dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(i.Dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(i.Dir, "ovsdb-server.log"), "--detach"); err != nil {
		return fmt.Errorf("starting ovsdb-server: %w", err)
	}
	if _, err := i.Vsctl(ctx, "--no-wait", "init"); err != nil {
		return fmt.Errorf("initialising OVS database: %w", err)
	}
	if !vswitchd {
		return nil
	}
	return i.StartVswitchd(ctx)
}

// StartVswitchd starts ovs-vswitchd alone (ovsdb-server must be running): the
// lab and the tests use it to restart the switch.
func (i *Instance) StartVswitchd(ctx context.Context) error {
	if _, err := i.Run(ctx, "ovs-vswitchd", i.DBEndpoint(),
		"--pidfile="+filepath.Join(i.Dir, "ovs-vswitchd.pid"),
		"--log-file="+filepath.Join(i.Dir, "ovs-vswitchd.log"), "--detach"); err != nil {
		return fmt.Errorf("starting ovs-vswitchd: %w", err)
	}
	// ovs-vsctl waits for ovs-vswitchd to catch up with the database.
	if _, err := i.Vsctl(ctx, "set", "Open_vSwitch", ".", "external_ids:ovs-vxctl-probe=1", "--", "remove", "Open_vSwitch", ".", "external_ids", "ovs-vxctl-probe"); err != nil {
		return fmt.Errorf("waiting for ovs-vswitchd: %w", err)
	}
	return nil
}

// Stop deletes every bridge (so the userspace datapath's tap devices go too),
// stops both daemons and waits for them to exit. It is safe to call on an
// instance that is partly or not at all running.
func (i *Instance) Stop(ctx context.Context) error {
	var errs []error
	if out, err := i.Vsctl(ctx, "--no-wait", "list-br"); err == nil {
		for _, br := range strings.Fields(out) {
			// --no-wait: ovs-vswitchd may be dead, and waiting for it would hang.
			if _, err := i.Vsctl(ctx, "--no-wait", "--if-exists", "del-br", br); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range []string{"ovs-vswitchd", "ovsdb-server"} {
		if err := stopPid(filepath.Join(i.Dir, name+".pid")); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// StopVswitchd kills ovs-vswitchd abruptly (as a crash would) and waits for it
// to exit; bridges stay in the database.
func (i *Instance) StopVswitchd() error {
	return stopPid(filepath.Join(i.Dir, "ovs-vswitchd.pid"))
}

// Running reports whether the daemon ("ovsdb-server" or "ovs-vswitchd") lives.
func (i *Instance) Running(daemon string) bool {
	pid, err := readPid(filepath.Join(i.Dir, daemon+".pid"))
	return err == nil && alive(pid)
}

// alive reports whether pid is a live process: a zombie (exited, not yet
// reaped by its parent) does not count.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}

func stopPid(path string) error {
	pid, err := readPid(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if !alive(pid) || syscall.Kill(pid, syscall.SIGTERM) != nil {
		os.Remove(path)
		return nil // already gone
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			os.Remove(path)
			return nil
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	os.Remove(path)
	return nil
}
