package integration

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Set by TestMain.
var (
	// vxctl is the absolute path of the ovs-vxctl binary built for the run.
	vxctl string
	// workDir holds the binary and the topology copies of the run.
	workDir string
	// repoRoot is the module's root directory (examples/ live there).
	repoRoot string
)

// requiredTools are the programs the lab and the tests run. A missing one
// fails the run: CI installs them (scripts/install-deps.sh), and a suite that
// skips itself silently is a suite that cannot fail.
var requiredTools = []string{
	"ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl",
	"ovsdb-client", "ethtool", "ping", "tcpdump", "tshark",
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Each test skips itself: no binary, no root needed.
		os.Exit(m.Run())
	}
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// setup checks the machine and builds ovs-vxctl into a temporary directory.
func setup() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("these tests need root (network namespaces, OVS daemons); run them as root or with -short to skip them")
	}
	var missing []string
	for _, tool := range requiredTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing programs %s: install them with scripts/install-deps.sh (Debian: openvswitch-switch, iproute2, ethtool, iputils-ping, tcpdump, tshark)", strings.Join(missing, ", "))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			return fmt.Errorf("no go command in PATH or /usr/local/go/bin to build ovs-vxctl")
		}
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("finding the module root with `go env GOMOD`: %v (%q)", err, out)
	}
	repoRoot = filepath.Dir(strings.TrimSpace(string(out)))
	workDir, err = os.MkdirTemp("", "it-vx-")
	if err != nil {
		return fmt.Errorf("creating the work directory: %w", err)
	}
	vxctl = filepath.Join(workDir, "ovs-vxctl")
	cmd := exec.Command(goBin, "build", "-o", vxctl, "./cmd/ovs-vxctl")
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(workDir)
		return fmt.Errorf("building ./cmd/ovs-vxctl: %w\n%s", err, stderr.String())
	}
	return nil
}
