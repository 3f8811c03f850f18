package ovsrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// VTEPSchemaPath is where Debian's openvswitch-vtep installs the
// hardware_vtep schema.
const VTEPSchemaPath = "/usr/share/openvswitch/vtep.ovsschema"

// VTEPEmulatorPath is OVS's VTEP emulator (openvswitch-vtep), a Python
// daemon that makes an OVS switch behave as a hardware VTEP driven by the
// hardware_vtep database.
const VTEPEmulatorPath = "/usr/share/openvswitch/scripts/ovs-vtep"

// VTEPDBEndpoint is where StartVTEP's ovsdb-server serves both databases:
// the same socket as DBEndpoint, which is where vtep-ctl and ovs-vtep look.
func (i *Instance) VTEPDBEndpoint() string { return i.DBEndpoint() }

// StartVTEP is Start for a hardware VTEP emulator's host: one ovsdb-server
// serving both the Open_vSwitch database (conf.db) and the hardware_vtep
// one (vtep.db) on db.sock and on every extra remote (e.g. "ptcp:6640:IP"),
// then ovs-vswitchd. ovs-vtep itself is started by StartVTEPEmulator, once
// the physical switch exists.
func (i *Instance) StartVTEP(ctx context.Context, remotes ...string) error {
	if err := os.MkdirAll(i.Dir, 0o755); err != nil {
		return fmt.Errorf("creating OVS directory: %w", err)
	}
	dbs := map[string]string{filepath.Join(i.Dir, "conf.db"): SchemaPath, filepath.Join(i.Dir, "vtep.db"): VTEPSchemaPath}
	for db, schema := range dbs {
		if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
			if _, err := i.Run(ctx, "ovsdb-tool", "create", db, schema); err != nil {
				return fmt.Errorf("creating database %s: %w", db, err)
			}
		}
	}
	args := []string{filepath.Join(i.Dir, "conf.db"), filepath.Join(i.Dir, "vtep.db"),
		"--remote=punix:" + filepath.Join(i.Dir, "db.sock"),
		"--pidfile=" + filepath.Join(i.Dir, "ovsdb-server.pid"),
		"--unixctl=" + filepath.Join(i.Dir, "ovsdb-server.ctl"),
		"--log-file=" + filepath.Join(i.Dir, "ovsdb-server.log"), "--detach"}
	for _, r := range remotes {
		args = append(args, "--remote="+r)
	}
	if _, err := i.Run(ctx, "ovsdb-server", args...); err != nil {
		return fmt.Errorf("starting ovsdb-server: %w", err)
	}
	if _, err := i.Vsctl(ctx, "--no-wait", "init"); err != nil {
		return fmt.Errorf("initialising OVS database: %w", err)
	}
	return i.StartVswitchd(ctx)
}

// Vtepctl runs vtep-ctl against the instance's hardware_vtep database.
func (i *Instance) Vtepctl(ctx context.Context, args ...string) (string, error) {
	return i.Run(ctx, "vtep-ctl", append([]string{"--db=" + i.VTEPDBEndpoint(), "--timeout=10"}, args...)...)
}

// StartVTEPEmulator starts ovs-vtep for physical switch ps (an OVS bridge
// of the instance that is also a Physical_Switch of its hardware_vtep
// database) with its pid and log files in the instance's directory.
func (i *Instance) StartVTEPEmulator(ctx context.Context, ps string) error {
	if _, err := i.Run(ctx, VTEPEmulatorPath, "--detach", "--no-chdir",
		"--pidfile="+filepath.Join(i.Dir, "ovs-vtep.pid"),
		"--log-file="+filepath.Join(i.Dir, "ovs-vtep.log"), ps); err != nil {
		return fmt.Errorf("starting the VTEP emulator ovs-vtep for %s: %w", ps, err)
	}
	return nil
}

// StopVTEPEmulator ends ovs-vtep, if it runs, and waits for it to exit.
func (i *Instance) StopVTEPEmulator() error {
	return stopPid(filepath.Join(i.Dir, "ovs-vtep.pid"))
}
