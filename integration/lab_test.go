package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// namePrefix starts the topology name of every lab these tests bring up, so
// they never collide with a lab of the same example that someone (the demo,
// another test package) runs on the machine at the same time. Flows do not
// depend on the topology name, so the golden files still apply.
const namePrefix = "it-"

// cmdTimeout bounds every command the tests run.
const cmdTimeout = 60 * time.Second

// result is what a command did.
type result struct {
	argv   []string
	stdout string
	stderr string
	code   int // -1: did not run or was killed
	took   time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("`%s` exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.argv, " "), r.code, r.stdout, r.stderr)
}

// run runs argv and returns what it did; it never fails the test.
func run(argv ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{argv: argv, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n(run error: " + err.Error() + ")"
	}
	return r
}

// mustRun runs argv and fails the test unless it exits 0.
func mustRun(t testing.TB, argv ...string) result {
	t.Helper()
	r := run(argv...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return r
}

// labEnv is one lab brought up for a test: a copy of an example topology
// under a prefixed name.
type labEnv struct {
	example   string // directory name under examples/
	file      string // absolute path of the topology copy
	topo      *topology.Topology
	opts      lab.Options
	report    lab.Report
	rootLinks []string // links of the root namespace before the lab came up
}

// copyExample writes a copy of examples/<example>/topology.yaml with the
// topology renamed to namePrefix+<name> (and edit applied to the text, when
// given) into dir, and returns its path.
func copyExample(t testing.TB, example, dir, base string, edit func(string) string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "examples", example, "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^name: ([a-z0-9-]+)\s*$`)
	if !re.Match(src) {
		t.Fatalf("examples/%s/topology.yaml: no top-level `name:` line to rename", example)
	}
	text := re.ReplaceAllString(string(src), "name: "+namePrefix+"$1")
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dir, base)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// upLab brings up the lab of example (running `lab down` first, in case an
// earlier run died half way) and registers its `lab down` as cleanup.
func upLab(t *testing.T, example string) *labEnv {
	t.Helper()
	dir := filepath.Join(workDir, example)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := copyExample(t, example, dir, "topology.yaml", nil)
	return startLab(t, example, file)
}

// startLab runs `lab down` (in case an earlier run died half way), then
// `lab up` of file, registers `lab down` as cleanup and logs the timings.
func startLab(t *testing.T, example, file string) *labEnv {
	t.Helper()
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	l := &labEnv{example: example, file: file, topo: topo, opts: lab.Options{Topology: topo, File: file}}
	if r := run(vxctl, "lab", "down", "-f", file); r.code != 0 {
		t.Fatalf("lab down before lab up: %v", r)
	}
	l.rootLinks = rootLinks(t)
	r := run(vxctl, "lab", "up", "-f", file, "--format", "json")
	t.Cleanup(func() {
		if r := run(vxctl, "lab", "down", "-f", file); r.code != 0 {
			t.Errorf("lab down in cleanup: %v", r)
		}
	})
	if r.code != 0 {
		t.Fatalf("lab up of %s: %v", topo.Name, r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &l.report); err != nil {
		t.Fatalf("lab up --format json: %v in %q", err, r.stdout)
	}
	l.opts.Dir = l.report.Dir
	t.Logf("lab %s up in %v (wall %v)", topo.Name, l.report.Total.Round(time.Millisecond), r.took.Round(time.Millisecond))
	for _, s := range l.report.Steps {
		t.Logf("  step %-10s %v", s.Name, s.Duration.Round(time.Millisecond))
	}
	for _, h := range l.report.Hosts {
		t.Logf("  host %-6s build %v (ovs start %v), apply %v", h.Name, h.Build.Round(time.Millisecond),
			h.OVSStart.Round(time.Millisecond), h.Apply.Round(time.Millisecond))
	}
	return l
}

// vx runs ovs-vxctl in the root namespace.
func (l *labEnv) vx(args ...string) result {
	return run(append([]string{vxctl}, args...)...)
}

// exec runs argv in the namespace of host or VM port name with `lab exec`.
func (l *labEnv) exec(name string, argv ...string) result {
	return run(append([]string{vxctl, "lab", "exec", "-f", l.file, name, "--"}, argv...)...)
}

// mustExec is exec that fails the test unless the command exits 0.
func (l *labEnv) mustExec(t testing.TB, name string, argv ...string) result {
	t.Helper()
	r := l.exec(name, argv...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return r
}

// hostVx runs `ovs-vxctl ARGS -f FILE --host HOST` inside host's namespace,
// where lab exec points OVS_RUNDIR at the host's OVS.
func (l *labEnv) hostVx(host, file string, args ...string) result {
	argv := append([]string{vxctl}, args...)
	argv = append(argv, "-f", file, "--host", host)
	return l.exec(host, argv...)
}

// inst is the private OVS of host.
func (l *labEnv) inst(host string) *ovsrun.Instance { return lab.HostInstance(l.opts, host) }

// dumpFlows returns the flows of bridge on host as ovs-ofctl prints them
// (--no-stats), read over the bridge's management socket inside the host.
func (l *labEnv) dumpFlows(t testing.TB, host, bridge string) []string {
	t.Helper()
	r := l.mustExec(t, host, "sh", "-c",
		`exec ovs-ofctl -O OpenFlow13 dump-flows "unix:$OVS_RUNDIR/`+bridge+`.mgmt" --no-stats`)
	return lines(r.stdout)
}

// vsctl runs ovs-vsctl against host's OVS.
func (l *labEnv) vsctl(t testing.TB, host string, args ...string) string {
	t.Helper()
	argv := append([]string{"ovs-vsctl", "--db=" + l.inst(host).DBEndpoint(), "--timeout=10"}, args...)
	return strings.TrimSpace(mustRun(t, argv...).stdout)
}

// ofctl runs ovs-ofctl -O OpenFlow13 VERB unix:<mgmt of bridge> ARGS against host's OVS.
func (l *labEnv) ofctl(t testing.TB, host, verb, bridge string, args ...string) string {
	t.Helper()
	argv := append([]string{"ovs-ofctl", "-O", "OpenFlow13", verb, "unix:" + l.inst(host).MgmtSocket(bridge)}, args...)
	return mustRun(t, argv...).stdout
}

// managedHosts are the names of the topology's managed hosts.
func (l *labEnv) managedHosts() []string {
	var out []string
	for _, h := range l.topo.ManagedHosts() {
		out = append(out, h.Name)
	}
	return out
}

// lines splits s into its non-empty lines, each trimmed.
func lines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// sorted returns a sorted copy.
func sorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

// withCookiePrefix keeps the flow lines whose cookie starts with prefix
// (e.g. "0x7678").
func withCookiePrefix(flows []string, prefix string) []string {
	var out []string
	for _, f := range flows {
		if strings.HasPrefix(f, "cookie="+prefix) {
			out = append(out, f)
		}
	}
	return out
}

// withoutCookiePrefix drops the flow lines whose cookie starts with prefix.
func withoutCookiePrefix(flows []string, prefix string) []string {
	var out []string
	for _, f := range flows {
		if !strings.HasPrefix(f, "cookie="+prefix) {
			out = append(out, f)
		}
	}
	return out
}

// diffLines reports the lines only in a and only in b, for error messages.
func diffLines(a, b []string) string {
	ca, cb := map[string]int{}, map[string]int{}
	for _, x := range a {
		ca[x]++
	}
	for _, x := range b {
		cb[x]++
	}
	var s strings.Builder
	for _, x := range sorted(a) {
		if cb[x] > 0 {
			cb[x]--
			continue
		}
		s.WriteString("- " + x + "\n")
	}
	for _, x := range b {
		ca[x]--
	}
	for _, x := range sorted(b) {
		if ca[x] < 0 {
			ca[x]++
			s.WriteString("+ " + x + "\n")
		}
	}
	return s.String()
}

// equalLines reports whether a and b hold the same lines in the same order.
func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rootLinks lists the interface names of the root network namespace.
func rootLinks(t testing.TB) []string {
	t.Helper()
	r := mustRun(t, "ip", "-o", "link", "show")
	var names []string
	for _, line := range lines(r.stdout) {
		// "3: name@peer: <...>"
		f := strings.SplitN(line, ": ", 3)
		if len(f) >= 2 {
			name, _, _ := strings.Cut(f[1], "@")
			names = append(names, name)
		}
	}
	return names
}

// labNamespaces lists the namespaces of the lab (its underlay and every
// "vx-<topology>.*").
func (l *labEnv) labNamespaces(t testing.TB) []string {
	t.Helper()
	r := mustRun(t, "ip", "netns", "list")
	base := lab.UnderlayNS(l.opts)
	var out []string
	for _, line := range lines(r.stdout) {
		name := strings.Fields(line)[0]
		if name == base || strings.HasPrefix(name, base+".") {
			out = append(out, name)
		}
	}
	return out
}

// processesWith lists "pid: cmdline" of the processes whose command line
// contains s.
func processesWith(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie/kernel thread
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, s) {
			out = append(out, pid+": "+cmdline)
		}
	}
	return out
}
