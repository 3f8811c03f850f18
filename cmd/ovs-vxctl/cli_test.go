package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

const threeHosts = "../../examples/three-hosts/topology.yaml"

// runCLI runs the command line in-process and returns its exit status,
// standard output and standard error.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnknownSubcommandFails(t *testing.T) {
	root := newRootCmd(&globalOptions{}, &bytes.Buffer{}, &bytes.Buffer{})
	var groups [][]string
	walk(root, func(c *cobra.Command) {
		if c != root && c.HasAvailableSubCommands() {
			groups = append(groups, strings.Fields(c.CommandPath())[1:])
		}
	})
	if len(groups) < 2 { // lab and completion at least
		t.Fatalf("found only command groups %v", groups)
	}
	for _, g := range groups {
		code, _, stderr := runCLI(t, append(g, "nosuch")...)
		if code != 1 || !strings.Contains(stderr, `unknown subcommand "nosuch"`) {
			t.Errorf("%v nosuch: exit %d, stderr %q; want 1 and unknown subcommand", g, code, stderr)
		}
		if code, out, _ := runCLI(t, g...); code != 0 || !strings.Contains(out, "Available Commands") {
			t.Errorf("%v alone: exit %d, want 0 and its help, got %q", g, code, out)
		}
	}
	code, _, stderr := runCLI(t, "lab", "dwon", "-f", threeHosts)
	if code != 1 || !strings.Contains(stderr, `did you mean "down"`) || !strings.Contains(stderr, "down, exec, status, up") {
		t.Errorf("lab dwon: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "nosuch"); code != 1 || !strings.Contains(stderr, `unknown command "nosuch"`) {
		t.Errorf("nosuch: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, flag, _ := runCLI(t, "--version")
	code2, verb, _ := runCLI(t, "version")
	if code != 0 || code2 != 0 || flag != verb {
		t.Fatalf("--version (exit %d) %q and version (exit %d) %q differ", code, flag, code2, verb)
	}
	if !strings.HasPrefix(flag, "ovs-vxctl "+buildVersion(version)+"\n") || !strings.Contains(flag, runtime.Version()) ||
		!strings.Contains(flag, "Open vSwitch ") {
		t.Errorf("version output %q", flag)
	}
	_, js, _ := runCLI(t, "--version", "--format", "json")
	var v map[string]string
	if err := json.Unmarshal([]byte(js), &v); err != nil || v["go"] != runtime.Version() || v["ovs-vxctl"] == "" {
		t.Errorf("version json %q: %v", js, err)
	}
	if got := buildVersion("v1.2.3-4-gabcdef0-dirty"); got != "v1.2.3-4-gabcdef0-dirty" {
		t.Errorf("a stamped version is printed as %q", got)
	}
	if got := buildVersion(""); got == "" {
		t.Error("unstamped version is empty")
	}
}

func TestHostErrorsListHosts(t *testing.T) {
	code, _, stderr := runCLI(t, "flows", "-f", threeHosts, "--host", "nope")
	if code != 1 || !strings.Contains(stderr, "--host nope") || !strings.Contains(stderr, "hosts: host1, host2, host3") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestLabNeedsRoot(t *testing.T) {
	root := newRootCmd(&globalOptions{}, &bytes.Buffer{}, &bytes.Buffer{})
	find := func(path ...string) *cobra.Command {
		c, _, err := root.Find(path)
		if err != nil || c.Name() != path[len(path)-1] {
			t.Fatalf("no command %v: %v", path, err)
		}
		return c
	}
	for _, verb := range []string{"up", "down", "status", "exec"} {
		err := needsRoot(find("lab", verb), 1000)
		if err == nil || !strings.Contains(err.Error(), "lab "+verb+" needs root") {
			t.Errorf("lab %s as uid 1000: %v", verb, err)
		}
		if err := needsRoot(find("lab", verb), 0); err != nil {
			t.Errorf("lab %s as root: %v", verb, err)
		}
	}
	for _, path := range [][]string{{"lab"}, {"validate"}, {"flows"}} {
		if err := needsRoot(find(path...), 1000); err != nil {
			t.Errorf("%v as uid 1000: %v", path, err)
		}
	}
}

func TestValidateJSON(t *testing.T) {
	decode := func(out string) validation {
		t.Helper()
		var v validation
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("not JSON: %q: %v", out, err)
		}
		return v
	}
	code, out, _ := runCLI(t, "validate", "-f", threeHosts, "--format", "json")
	if v := decode(out); code != 0 || !v.Valid || v.Topology != "three-hosts" || v.Hosts != 3 || len(v.Problems) != 0 {
		t.Errorf("valid file: exit %d, %+v", code, v)
	}
	bad := writeFile(t, "bad.yaml", "name: t\nhosts:\n  - name: h1\n    vtep: 10.0.0.1\nnetworks:\n  - name: n\n    vni: 99999999\n  - name: m\n    vni: -1\n")
	code, out, stderr := runCLI(t, "validate", "-f", bad, "--format", "json")
	v := decode(out)
	if code != 1 || v.Valid || len(v.Problems) < 2 || !strings.Contains(stderr, "invalid topology") {
		t.Fatalf("invalid file: exit %d, %+v, stderr %q", code, v, stderr)
	}
	for _, p := range v.Problems {
		if !strings.HasPrefix(p.Path, "networks[") || p.Line == 0 || p.Message == "" {
			t.Errorf("problem %+v lacks its path, line or message", p)
		}
	}
	code, out, _ = runCLI(t, "validate", "-f", filepath.Join(t.TempDir(), "missing.yaml"), "--format", "json")
	if v := decode(out); code != 1 || v.Valid || len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Message, "no such file") {
		t.Errorf("missing file: exit %d, %+v", code, v)
	}
}

func TestErrorsAreJSONUnderJSONLogs(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "name: t\nhosts:\n  - name: h1\n    vtep: nonsense\n")
	for _, tc := range []struct {
		args     []string
		problems int
	}{
		{[]string{"flows", "-f", bad, "--log-format", "json"}, 1},
		{[]string{"--log-format", "json", "lab", "dwon"}, 0},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		var e struct {
			Level    string   `json:"level"`
			Error    string   `json:"error"`
			ExitCode int      `json:"exit_code"`
			Command  string   `json:"command"`
			Problems []string `json:"problems"`
		}
		if code != 1 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &e) != nil {
			t.Errorf("%v: exit %d, stderr %q: want one JSON line", tc.args, code, stderr)
			continue
		}
		if e.Level != "error" || e.Error == "" || e.ExitCode != 1 || !strings.HasPrefix(e.Command, "ovs-vxctl ") || len(e.Problems) != tc.problems {
			t.Errorf("%v: %+v", tc.args, e)
		}
	}
	if _, _, stderr := runCLI(t, "flows", "-f", bad); !strings.HasPrefix(stderr, "ovs-vxctl: invalid topology") {
		t.Errorf("console error %q", stderr)
	}
}

func TestOVSDBConnectionError(t *testing.T) {
	sock := "unix:" + filepath.Join(t.TempDir(), "db.sock")
	code, _, stderr := runCLI(t, "show", "--db", sock, "--timeout", "5s")
	if code != 1 || !strings.Contains(stderr, "is ovsdb-server running?") || !strings.Contains(stderr, "OVSDB at "+sock) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, layer := range []string{"failed to connect", "failed to open connection"} {
		if strings.Contains(stderr, layer) {
			t.Errorf("stderr %q repeats libovsdb's %q", stderr, layer)
		}
	}
}
