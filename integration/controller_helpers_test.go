package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Helpers of the controller-mode tests (controller_test.go).

// controllerLog is the path of the log of the lab's controller.
func (l *labEnv) controllerLog() string { return filepath.Join(l.report.Dir, lab.ControllerLog) }

// logTail returns the last n lines of the file at path, for failure messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// logLines returns the lines of the file at path that contain every one of
// the given strings.
func logLines(t testing.TB, path string, all ...string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// netnsInode is the inode of the named network namespace: a process whose
// /proc/PID/ns/net link names it lives in that namespace.
func netnsInode(t testing.TB, ns string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	return st.Ino
}

// controllerPids lists the live `ovs-vxctl controller` processes running in
// namespace ns (the lab runs exactly one, in its underlay namespace).
func controllerPids(t testing.TB, ns string) []int {
	t.Helper()
	want := fmt.Sprintf("net:[%d]", netnsInode(t, ns))
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || link != want {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) >= 2 && filepath.Base(argv[0]) == "ovs-vxctl" && argv[1] == "controller" && processAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// processAlive reports whether pid is a live process; a zombie (exited, not
// yet reaped) does not count.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// waitGone waits until pid is no longer a live process.
func waitGone(t testing.TB, pid int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); processAlive(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive %v after it was killed", pid, within)
		}
	}
}

// ctlProc is an `ovs-vxctl controller` the test started.
type ctlProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited and was reaped
}

// startControllerIn starts `ovs-vxctl controller -f file --listen listen
// extra...` in namespace ns as the lab does (`ip netns exec`, output appended
// to logPath) and waits until it listens. It is stopped in owner's cleanup if
// still running (owner outlives t when a subtest starts a controller that
// later subtests use).
func startControllerIn(t, owner testing.TB, ns, file, listen, logPath string, extra ...string) *ctlProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("opening the controller's log: %v", err)
	}
	defer logf.Close()
	args := append([]string{"netns", "exec", ns, vxctl, "controller", "-f", file, "--listen", listen}, extra...)
	p := &ctlProc{cmd: exec.Command("ip", args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the controller: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() { p.stop() })
	_, hostport, _ := strings.Cut(listen, ":")
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("the controller exited at once (%v); its log ends with:\n%s", p.cmd.ProcessState, logTail(logPath, 20))
		default:
		}
		if r := run("ip", "netns", "exec", ns, "ss", "-Hltn", "src", hostport); r.code == 0 && strings.TrimSpace(r.stdout) != "" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller does not listen on %s after 10s; its log ends with:\n%s", listen, logTail(logPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the controller (SIGTERM, then SIGKILL) unless it has exited.
func (p *ctlProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// bridgeController returns is_connected and status of bridge's controller.
func (l *labEnv) bridgeController(t testing.TB, host, bridge string) (connected bool, status string) {
	t.Helper()
	ctl := strings.Trim(l.vsctl(t, host, "get", "Bridge", bridge, "controller"), "[]")
	out := l.vsctl(t, host, "--bare", "--columns=is_connected,status", "list", "Controller", ctl)
	f := lines(out)
	if len(f) == 0 {
		t.Fatalf("%s %s: no Controller row", host, bridge)
	}
	return f[0] == "true", strings.Join(f[1:], " ")
}

// allConnected reports whether br-int and br-tun of every managed host have
// their controller connected.
func (l *labEnv) allConnected(t testing.TB) bool {
	t.Helper()
	for _, h := range l.managedHosts() {
		for _, br := range []string{"br-int", "br-tun"} {
			if c, _ := l.bridgeController(t, h, br); !c {
				return false
			}
		}
	}
	return true
}

// metricsAddr is where a controller the tests start serves metrics, inside
// the underlay namespace.
const metricsAddr = "127.0.0.1:9464"

// fetchMetrics reads http://addr/metrics inside namespace ns (with bash's
// /dev/tcp: no HTTP client needs to be installed) and returns every sample
// by series ("name{labels}").
func fetchMetrics(ns, addr string) (map[string]float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	r := run("ip", "netns", "exec", ns, "bash", "-c",
		fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s && printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' >&3 && cat <&3`, host, port, addr))
	if r.code != 0 {
		return nil, fmt.Errorf("reading metrics: %v", r)
	}
	_, body, ok := strings.Cut(r.stdout, "\r\n\r\n")
	if !ok || !strings.HasPrefix(r.stdout, "HTTP/1.") || !strings.Contains(strings.SplitN(r.stdout, "\n", 2)[0], " 200 ") {
		return nil, fmt.Errorf("metrics: not an HTTP 200 answer: %q", r.stdout[:min(200, len(r.stdout))])
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: bad value in %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, nil
}

// metricSum adds up every series of the metric name.
func metricSum(m map[string]float64, name string) float64 {
	var sum float64
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			sum += v
		}
	}
	return sum
}

// table20 returns host's br-tun table 20 flows without their cookie, keyed
// by the rest of the line, with the cookie as value.
func (l *labEnv) table20(t testing.TB, host string) map[string]string {
	t.Helper()
	return table20Of(lines(l.ofctl(t, host, "dump-flows", "br-tun", "table=20", "--no-stats")))
}

func table20Of(fl []string) map[string]string {
	out := map[string]string{}
	for _, f := range fl {
		cookie, rest, ok := strings.Cut(f, ", ")
		if ok && strings.HasPrefix(rest, "table=20,") {
			out[rest] = strings.TrimPrefix(cookie, "cookie=")
		}
	}
	return out
}

// unicastEntry is the table-20 entry (without cookie) the controller installs
// for mac of VNI vni, with local VLAN vlan, towards tunnel port port.
func unicastEntry(vlan int, mac string, vni uint32, port string) string {
	return fmt.Sprintf("table=20, priority=2,dl_vlan=%d,dl_dst=%s actions=pop_vlan,set_field:%#x->tun_id,output:%s", vlan, mac, vni, port)
}

// portTag is the local VLAN tag of port on host's br-int.
func (l *labEnv) portTag(t testing.TB, host, port string) int {
	t.Helper()
	tag := l.vsctl(t, host, "get", "Port", port, "tag")
	vlan, err := strconv.Atoi(tag)
	if err != nil || vlan < 1 || vlan > 4094 {
		t.Fatalf("port %s on %s has no local VLAN tag: %q", port, host, tag)
	}
	return vlan
}

// vniOf is the VNI of the network named name.
func (l *labEnv) vniOf(t testing.TB, network string) uint32 {
	t.Helper()
	for _, n := range l.topo.Networks {
		if n.Name == network {
			return n.VNI
		}
	}
	t.Fatalf("topology %s has no network %s", l.topo.Name, network)
	return 0
}

var linkEtherRE = regexp.MustCompile(`link/ether ([0-9a-f:]{17})`)

// macIn reads the MAC of dev inside namespace ns.
func macIn(t testing.TB, ns, dev string) string {
	t.Helper()
	r := mustRun(t, "ip", "-n", ns, "-o", "link", "show", "dev", dev)
	m := linkEtherRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no MAC in `ip -o link show %s` in %s: %q", dev, ns, r.stdout)
	}
	return m[1]
}

// vmMAC is the MAC the VM's eth0 has (declared or, for a port without one,
// the one the lab gave it), read from the VM and checked against the file.
func (l *labEnv) vmMAC(t testing.TB, v vm) string {
	t.Helper()
	mac := macIn(t, lab.VMNS(l.opts, v.host, v.port), lab.VMIf)
	if v.mac != "" && v.mac != mac {
		t.Fatalf("%s: eth0 has MAC %s, the topology declares %s", v.name(), mac, v.mac)
	}
	return mac
}

// vtepOf is the VTEP address of host.
func (l *labEnv) vtepOf(host string) string { return l.topo.Host(host).VTEP.String() }

// fdbEntry is one line of `ovs-vxctl fdb --format json`.
type fdbEntry struct {
	MAC        string `json:"mac"`
	VNI        uint32 `json:"vni"`
	LocalVLAN  int    `json:"local_vlan"`
	Peer       string `json:"peer"`
	RemoteVTEP string `json:"remote_vtep"`
	OFPort     uint32 `json:"ofport"`
	Origin     string `json:"origin"`
}

// fdb runs `ovs-vxctl fdb --format json` on host.
func (l *labEnv) fdb(t testing.TB, host string) []fdbEntry {
	t.Helper()
	r := l.hostVx(host, l.file, "fdb", "--format", "json")
	if r.code != 0 {
		t.Fatalf("%s: fdb: %v", host, r)
	}
	var out []fdbEntry
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%s: fdb --format json: %v in %q", host, err, r.stdout)
	}
	return out
}

// extraVM is a VM the test adds to a running lab (a namespace, a veth into
// the host's namespace, an access port on br-int), removed in cleanup.
type extraVM struct {
	ns, hostNS, hostIf string
	mac, ip            string // ip without prefix
}

// addVM creates VM name on host with mac and address cidr, its br-int port
// tagged vlan. IPv6 is off in the VM so that the first frame it sends is the
// one the test sends (an ARP request), which the measurements start from; the
// port joins br-int only after eth0 is up, for the same reason.
func (l *labEnv) addVM(t testing.TB, host, name, mac, cidr string, vlan int) *extraVM {
	t.Helper()
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatal(err)
	}
	v := &extraVM{ns: lab.VMNS(l.opts, host, name), hostNS: lab.HostNS(l.opts, host), hostIf: name, mac: mac, ip: prefix.Addr().String()}
	db := "--db=" + l.inst(host).DBEndpoint()
	t.Cleanup(func() {
		run("ovs-vsctl", db, "--timeout=10", "--if-exists", "del-port", "br-int", v.hostIf)
		run("ip", "-n", v.hostNS, "link", "del", v.hostIf)
		run("ip", "netns", "del", v.ns)
	})
	mustRun(t, "ip", "netns", "add", v.ns)
	mustRun(t, "ip", "-n", v.hostNS, "link", "add", "name", v.hostIf, "mtu", fmt.Sprint(lab.VMMTU), "type", "veth",
		"peer", "name", lab.VMIf, "mtu", fmt.Sprint(lab.VMMTU), "netns", v.ns)
	mustRun(t, "ip", "netns", "exec", v.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
		"net.ipv6.conf."+lab.VMIf+".disable_ipv6=1")
	mustRun(t, "ip", "-n", v.ns, "link", "set", "dev", "lo", "up")
	mustRun(t, "ip", "-n", v.ns, "link", "set", "dev", lab.VMIf, "address", mac)
	mustRun(t, "ip", "-n", v.ns, "addr", "add", cidr, "dev", lab.VMIf)
	mustRun(t, "ip", "-n", v.ns, "link", "set", "dev", lab.VMIf, "up")
	// TCP through the userspace datapath needs tx checksum offload off.
	mustRun(t, "ip", "netns", "exec", v.ns, "ethtool", "-K", lab.VMIf, "tx", "off")
	mustRun(t, "ip", "-n", v.hostNS, "link", "set", "dev", v.hostIf, "up")
	mustRun(t, "ovs-vsctl", db, "--timeout=10", "add-port", "br-int", v.hostIf, "tag="+fmt.Sprint(vlan))
	return v
}

// entryWatch follows br-tun table 20 of some hosts with `ovs-ofctl monitor`
// (OpenFlow flow monitoring: the switch reports every change as it happens)
// and records when each host first got the entry the test waits for.
type entryWatch struct {
	start time.Time
	mu    sync.Mutex
	seen  map[string]time.Duration // host -> when its entry appeared, after start
	early map[string]bool          // host -> the entry was there before start
	procs []*exec.Cmd
	wg    sync.WaitGroup
}

// monitorEntry is how `ovs-ofctl monitor` prints the table-20 entry
// unicastEntry describes (it leaves out the priority).
func monitorEntry(vlan int, mac string, vni uint32, port string) string {
	return fmt.Sprintf("dl_vlan=%d,dl_dst=%s actions=pop_vlan,set_field:%#x->tun_id,output:%s", vlan, mac, vni, port)
}

// watchEntries starts a monitor per host of want (host -> monitorEntry line
// to wait for) and returns once every monitor has reported the table's
// initial contents. Call setStart just before the event measured.
func (l *labEnv) watchEntries(t testing.TB, want map[string]string) *entryWatch {
	t.Helper()
	w := &entryWatch{seen: map[string]time.Duration{}, early: map[string]bool{}}
	t.Cleanup(w.stop)
	for host, entry := range want {
		// stdbuf: ovs-ofctl's output to a pipe is block-buffered, which
		// would hold the updates back until it exits. It prints the first
		// reply on stdout and the updates on stderr: read both, merged.
		cmd := exec.Command("stdbuf", "-oL", "-eL", "ovs-ofctl", "-O", "OpenFlow13", "monitor", "unix:"+l.inst(host).MgmtSocket("br-tun"), "watch:table=20")
		// ovs-ofctl monitor opens a control socket in OVS_RUNDIR.
		cmd.Env = append(os.Environ(), "OVS_RUNDIR="+workDir)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = pw, pw
		err = cmd.Start()
		pw.Close()
		if err != nil {
			pr.Close()
			t.Fatalf("starting ovs-ofctl monitor on %s: %v", host, err)
		}
		var output strings.Builder // for failure messages
		w.procs = append(w.procs, cmd)
		ready := make(chan struct{})
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer pr.Close()
			sc := bufio.NewScanner(pr)
			said := false
			for sc.Scan() {
				now := time.Now()
				line := sc.Text()
				w.mu.Lock()
				output.WriteString(line + "\n")
				w.mu.Unlock()
				if !said && strings.Contains(line, "FLOW_MONITOR reply") {
					said = true
					close(ready)
					continue
				}
				if !strings.Contains(line, "event=ADDED") && !strings.Contains(line, "event=MODIFIED") {
					continue
				}
				if !strings.Contains(line, " cookie=0x767a") || !strings.HasSuffix(line, " "+entry) {
					continue
				}
				w.mu.Lock()
				if _, ok := w.seen[host]; !ok && !w.early[host] {
					if w.start.IsZero() {
						w.early[host] = true
					} else {
						w.seen[host] = now.Sub(w.start)
					}
				}
				w.mu.Unlock()
			}
			if !said {
				close(ready)
			}
			cmd.Wait()
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("ovs-ofctl monitor on %s reported nothing within 10s: %s", host, output.String())
		}
	}
	// The initial contents come in one reply: give its lines time to be read.
	time.Sleep(50 * time.Millisecond)
	return w
}

// setStart marks the moment times are measured from.
func (w *entryWatch) setStart(at time.Time) {
	w.mu.Lock()
	w.start = at
	w.mu.Unlock()
}

// waitFor waits until every host of want has its entry or within passes, and
// returns when each appeared and the hosts that had it before the start.
func (w *entryWatch) waitFor(hosts []string, within time.Duration) (map[string]time.Duration, map[string]bool) {
	deadline := time.Now().Add(within)
	for {
		w.mu.Lock()
		n := 0
		for _, h := range hosts {
			if _, ok := w.seen[h]; ok || w.early[h] {
				n++
			}
		}
		w.mu.Unlock()
		if n == len(hosts) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	seen, early := map[string]time.Duration{}, map[string]bool{}
	for h, d := range w.seen {
		seen[h] = d
	}
	for h := range w.early {
		early[h] = true
	}
	return seen, early
}

// stop ends the monitors.
func (w *entryWatch) stop() {
	for _, c := range w.procs {
		c.Process.Kill()
	}
	w.wg.Wait()
	w.procs = nil
}

// pingDRE matches a reply line of `ping -D`.
var pingDRE = regexp.MustCompile(`(?m)^\[(\d+)\.(\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)`)

// firstReplyAfter returns the time of the first reply `ping -D` printed at or
// after start, and how many replies came before it.
func firstReplyAfter(out string, start time.Time) (time.Time, int, bool) {
	before := 0
	for _, m := range pingDRE.FindAllStringSubmatch(out, -1) {
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := m[2]
		for len(frac) < 9 {
			frac += "0"
		}
		nsec, _ := strconv.ParseInt(frac[:9], 10, 64)
		ts := time.Unix(sec, nsec)
		if !ts.Before(start) {
			return ts, before, true
		}
		before++
	}
	return time.Time{}, before, false
}

// bgPing is a ping running in the background in a namespace.
type bgPing struct {
	cmd    *exec.Cmd
	out    strings.Builder
	done   chan struct{}
	argv   []string
	exited time.Time
}

// startPing runs `ping ARGS` in namespace ns in the background (`ip netns
// exec` execs ping: signals reach it). It is killed in cleanup if running.
func startPing(t testing.TB, ns string, args ...string) *bgPing {
	t.Helper()
	p := &bgPing{done: make(chan struct{}), argv: append([]string{"ip", "netns", "exec", ns, "ping"}, args...)}
	p.cmd = exec.Command(p.argv[0], p.argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", p.argv, err)
	}
	go func() {
		p.cmd.Wait()
		p.exited = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the ping to end and returns its output.
func (p *bgPing) wait(t testing.TB, within time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v still running after %v; output:\n%s", p.argv, within, p.out.String())
	}
	return p.out.String()
}

// upLabNoApply brings up the lab of a topology file with lab.Up's SkipApply
// (namespaces, OVS, underlay, VMs, the controller's address; neither apply
// nor the controller run), for tests that apply and run the controller
// themselves. `lab down` runs before and in cleanup.
func upLabNoApply(t *testing.T, example, file string) *labEnv {
	t.Helper()
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	l := &labEnv{example: example, file: file, topo: topo, opts: lab.Options{Topology: topo, File: file, Self: vxctl, SkipApply: true}}
	if r := run(vxctl, "lab", "down", "-f", file); r.code != 0 {
		t.Fatalf("lab down before lab up: %v", r)
	}
	t.Cleanup(func() {
		if r := run(vxctl, "lab", "down", "-f", file); r.code != 0 {
			t.Errorf("lab down in cleanup: %v", r)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := lab.Up(ctx, l.opts)
	if err != nil {
		t.Fatalf("lab up (without apply): %v", err)
	}
	l.report = *rep
	l.opts.Dir = rep.Dir
	t.Logf("lab %s up without apply in %v", topo.Name, rep.Total.Round(time.Millisecond))
	return l
}
