package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeInstall runs `make install` of the repository with the given
// variables, building the binary into the test's directory (BIN) rather
// than the checkout's bin/.
func makeInstall(t *testing.T, bin string, vars ...string) {
	t.Helper()
	args := append([]string{"-C", "../..", "--no-print-directory", "install", "BIN=" + bin}, vars...)
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestMakeInstall installs into a staging directory as a package would
// (DESTDIR, PREFIX=/usr) and checks every file; then installs with the
// prefix inside a test directory so that the units' ExecStart binary and
// man page exist, and has systemd-analyze verify the units.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make: skipped under -short")
	}
	for _, tool := range []string{"make", "git", "install", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "ovs-vxctl")
	dest := t.TempDir()
	makeInstall(t, bin, "DESTDIR="+dest, "PREFIX=/usr")
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil {
			t.Fatalf("make install did not install %s: %v", rel, err)
		}
		return string(b)
	}

	if fi, err := os.Stat(filepath.Join(dest, "usr/bin/ovs-vxctl")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("binary: %v", err)
	}
	out, err := exec.Command(filepath.Join(dest, "usr/bin/ovs-vxctl"), "--version").Output()
	if err != nil {
		t.Fatalf("installed ovs-vxctl --version: %v", err)
	}
	// The Makefile's version: git describe (the tree may turn dirty or
	// clean meanwhile, as others edit it), or "unknown" outside a checkout.
	v := "unknown"
	if described, err := exec.Command("git", "describe", "--tags", "--always").Output(); err == nil {
		v = strings.TrimSpace(string(described))
	}
	if !strings.HasPrefix(string(out), "ovs-vxctl "+v+"\n") && !strings.HasPrefix(string(out), "ovs-vxctl "+v+"-dirty\n") {
		t.Errorf("installed binary says %q, want the version git describes, %s", out, v)
	}

	for _, page := range []string{"ovs-vxctl.8", "ovs-vxctl-apply.8", "ovs-vxctl-lab-up.8", "ovs-vxctl-controller.8"} {
		if m := read("usr/share/man/man8/" + page); !strings.Contains(m, `.TH "OVS-VXCTL" "8"`) {
			t.Errorf("%s is not a section 8 man page:\n%.200s", page, m)
		}
	}
	if fileExists(filepath.Join(dest, "usr/share/man/man8/ovs-vxctl-gen-man.8")) {
		t.Error("the hidden gen-man verb has a man page")
	}
	if c := read("usr/share/bash-completion/completions/ovs-vxctl"); !strings.Contains(c, "__start_ovs-vxctl") {
		t.Errorf("bash completion:\n%.200s", c)
	}
	if c := read("usr/share/zsh/vendor-completions/_ovs-vxctl"); !strings.HasPrefix(c, "#compdef ovs-vxctl") {
		t.Errorf("zsh completion:\n%.200s", c)
	}
	for unit, verb := range map[string]string{"ovs-vxctl-agent.service": "agent", "ovs-vxctl-controller.service": "controller"} {
		u := read("usr/lib/systemd/system/" + unit)
		for _, want := range []string{
			"ExecStart=/usr/bin/ovs-vxctl " + verb + " -f /etc/ovs-vxctl/topology.yaml",
			"After=openvswitch-switch.service", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
			"EnvironmentFile=-/etc/default/ovs-vxctl",
		} {
			if !strings.Contains(u, want) {
				t.Errorf("%s lacks %q", unit, want)
			}
		}
		if strings.Contains(u, "@") {
			t.Errorf("%s has an unreplaced @VARIABLE@", unit)
		}
	}
	if !strings.Contains(read("usr/lib/systemd/system/ovs-vxctl-agent.service"), "Requires=openvswitch-switch.service") {
		t.Error("the agent does not require openvswitch-switch")
	}
	read("etc/default/ovs-vxctl")

	verifyUnits(t, bin)
}

// verifyUnits installs with PREFIX and SYSCONFDIR in a test directory, so
// that the units name a binary and a man page that exist, and runs
// systemd-analyze verify on them with man pointed at the installed pages.
func verifyUnits(t *testing.T, bin string) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not found (apt-get install systemd): units not verified")
		return
	}
	prefix := t.TempDir()
	makeInstall(t, bin, "PREFIX="+prefix, "SYSCONFDIR="+filepath.Join(prefix, "etc"))
	units := []string{filepath.Join(prefix, "lib/systemd/system/ovs-vxctl-controller.service")}
	// The agent requires openvswitch-switch.service, which verify loads.
	if fileExists("/lib/systemd/system/openvswitch-switch.service") || fileExists("/etc/systemd/system/openvswitch-switch.service") {
		units = append(units, filepath.Join(prefix, "lib/systemd/system/ovs-vxctl-agent.service"))
	} else {
		t.Log("no openvswitch-switch.service here: the agent unit is not verified")
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(prefix, "share/man"))
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify %v: %v\n%s", units, err, out)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
