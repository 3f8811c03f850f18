package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The attacks section (figure 8): the real `ovs-vxctl controller` on
// loopback, serving a few emulated switches, under each of issue 9's floods
// in turn — a fresh controller for each, so that each peak RSS is its own.

// Shape of the attacked topology: real hosts have emulated switches (br-tun
// and br-int) connected all along; absent hosts are in the topology but
// nothing serves them, so their datapath IDs are free for an attacker to
// claim.
const (
	attackRealHosts   = 3
	attackAbsentHosts = 8
	attackVNI         = 5000
)

// Bounds of the section.
const (
	attackRSSLimitMB = 256                 // the goal, each attack's target
	attackNoFile     = stalledConns + 4096 // RLIMIT_NOFILE for the stalled connections
	rssPoll          = 50 * time.Millisecond
	metricsPoll      = 250 * time.Millisecond
	probeLimit       = 5 * time.Second // a new MAC must reach the other switches within it
)

// attack is one flood: it runs for dur against a controller started with
// args, and report turns what it counted into figures.
type attack struct {
	name   string
	dur    time.Duration
	args   []string
	flood  func(ctx context.Context, e *attackEnv, r *attackResult)
	report func(b *bench, sec *Section, r *attackResult)
}

// attackList is the section's floods, in order.
func attackList() []attack {
	return []attack{
		{name: "echo", dur: 20 * time.Second, flood: floodEcho, report: reportEcho},
		{name: "hijack", dur: 10 * time.Second, flood: floodHijack, report: reportHijack},
		{name: "multipart", dur: 15 * time.Second, flood: floodMultipart, report: reportMultipart},
		{name: "stalled", dur: 15 * time.Second, flood: floodStalled, report: reportStalled},
		{name: "flap", dur: 10 * time.Second, args: []string{"--mac-flap-moves", strconv.Itoa(flapMoves), "--mac-flap-window", "10s", "--mac-flap-hold", "60s"},
			flood: floodFlap, report: reportFlap},
	}
}

// attackResult is what one attack measured.
type attackResult struct {
	Name           string             `json:"name"`
	Seconds        float64            `json:"seconds"`
	StartRSSMB     float64            `json:"controller_rss_start_mb"`
	PeakRSSMB      float64            `json:"controller_rss_peak_mb"` // VmRSS sampled every 50 ms
	HWMMB          float64            `json:"controller_vmhwm_mb"`    // the kernel's peak, at the end
	PeakGoroutines float64            `json:"peak_goroutines"`
	PeakFDs        float64            `json:"peak_open_fds"`
	MaxOpenFiles   string             `json:"controller_max_open_files"`
	RealReconnects uint64             `json:"real_switch_reconnects"`
	ProbeDuringMs  float64            `json:"-"` // NaN: the new MAC did not reach every switch within probeLimit
	ProbeAfterMs   float64            `json:"-"`
	Counts         map[string]float64 `json:"counts"`         // the flood's own
	Metrics        map[string]float64 `json:"metric_changes"` // the controller's, after minus before

	m0, m1 map[string]float64
}

// delta is how much the controller's metric series changed over the attack.
func (r *attackResult) delta(series string) float64 { return r.m1[series] - r.m0[series] }

// benchAttacks is figure 8: each attack against its own controller.
func benchAttacks(ctx context.Context, b *bench, sec *Section) error {
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("the ovs-vxctl binary %s: %w (run `make build`)", b.bin, err)
	}
	// 10,000 stalled connections take as many descriptors here; the
	// controller, started from here, inherits the limit.
	nofile, err := raiseNoFile(attackNoFile)
	if err != nil {
		return err
	}
	sec.Details["rlimit_nofile"] = nofile
	var results []*attackResult
	for _, a := range attackList() {
		progress("attacks: %s for %v", a.name, a.dur)
		r, err := runAttack(ctx, b, a)
		if err != nil {
			return fmt.Errorf("attack %s: %w", a.name, err)
		}
		results = append(results, r)
		b.reportAttack(sec, a, r)
	}
	sec.Details["attacks"] = results
	return nil
}

// raiseNoFile raises this process's RLIMIT_NOFILE to at least n: the
// hard limit too where that is allowed (root outside a container), else
// the soft limit up to the hard one. It returns the soft limit, and fails
// when that stays below n. Setting it explicitly also makes children
// inherit it (Go otherwise gives them the limit it started with).
func raiseNoFile(n uint64) (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	want := syscall.Rlimit{Cur: max(r.Cur, n), Max: max(r.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return want.Cur, nil
	}
	r.Cur = max(r.Cur, min(n, r.Max))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", r.Cur, err)
	}
	if r.Cur < n {
		return r.Cur, fmt.Errorf("RLIMIT_NOFILE: the hard limit %d is below the %d descriptors the stalled connections need, and may not be raised here", r.Max, n)
	}
	return r.Cur, nil
}

// runAttack starts a controller with its switches, floods it for a.dur
// while watching its memory, and checks the real switches during and after.
func runAttack(ctx context.Context, b *bench, a attack) (*attackResult, error) {
	e, err := startAttackEnv(ctx, b, a)
	if err != nil {
		return nil, err
	}
	defer e.stop()
	r := &attackResult{Name: a.name, Seconds: a.dur.Seconds(), Counts: map[string]float64{}, Metrics: map[string]float64{}}
	if ms := e.probe(ctx); math.IsNaN(ms) {
		return nil, e.failed(fmt.Errorf("before the attack, a new MAC did not reach every switch within %v", probeLimit))
	}
	r.MaxOpenFiles = maxOpenFiles(e.pid())
	r.StartRSSMB = rssMB(e.pid())
	if r.m0, err = e.metrics(); err != nil {
		return nil, e.failed(err)
	}
	reconnects0 := e.reconnects()
	mon := startMonitor(e.pid(), e.metricsURL())

	fctx, cancel := context.WithTimeout(ctx, a.dur)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.flood(fctx, e, r)
	}()
	select {
	case <-time.After(a.dur / 2):
		r.ProbeDuringMs = e.probe(ctx)
	case <-done:
		r.ProbeDuringMs = math.NaN()
	}
	<-done
	cancel()
	// Connections the flood left end now: their handlers count and exit.
	time.Sleep(time.Second)
	mon.finish(r)
	r.HWMMB = procStatusMB(e.pid(), "VmHWM:")
	r.ProbeAfterMs = e.probe(ctx)
	r.RealReconnects = e.reconnects() - reconnects0
	if r.m1, err = e.metrics(); err != nil {
		return nil, e.failed(err)
	}
	if err := e.alive(); err != nil {
		return nil, e.failed(err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r, nil
}

// reportAttack adds an attack's figures: the common ones, then its own.
func (b *bench) reportAttack(sec *Section, a attack, r *attackResult) {
	p := "attack_" + a.name + "_"
	for _, s := range []string{refusedSeries("claimed"), refusedSeries("unknown"), refusedSeries("handshake"), refusedSeries("pending-limit"),
		displacedSeries, ctlMetric("echo_requests_dropped_total"), ctlMetric("mac_flap_dampings_total")} {
		if d := r.delta(s); d != 0 {
			r.Metrics[s] = d
		}
	}
	b.r.add(sec, p+"rss_mb", r.PeakRSSMB, "MB", &Target{"<", attackRSSLimitMB},
		fmt.Sprintf("controller peak RSS (VmRSS every 50 ms; VmHWM %s MB; %s MB before)", num(r.HWMMB), num(r.StartRSSMB)))
	b.r.add(sec, p+"goroutines", r.PeakGoroutines, "count", nil, "controller's peak go_goroutines (metrics, every 250 ms)")
	b.r.add(sec, p+"real_reconnects", float64(r.RealReconnects), "count", &Target{"==", 0},
		fmt.Sprintf("connections of the %d real switches that ended", 2*attackRealHosts))
	b.r.add(sec, p+"probe_during_ms", r.ProbeDuringMs, "ms", &Target{"<", ms(probeLimit)},
		"a new MAC reported half-way through the flood: until the other real switches acknowledged its entry (NaN: not within 5 s)")
	b.r.add(sec, p+"probe_after_ms", r.ProbeAfterMs, "ms", &Target{"<", ms(probeLimit)}, "the same, after the flood")
	a.report(b, sec, r)
}

// attackEnv is a controller and its real switches, for one attack.
type attackEnv struct {
	dir, file         string
	addr, metricsAddr string // the OpenFlow and metrics listen addresses
	t                 *topology.Topology
	tun, brint        []*openflowtest.Switch // the real hosts' switches
	vlans             []uint16               // the real hosts' local VLAN of the network
	absentTun         []uint64               // br-tun datapath IDs of the absent hosts
	absentInt         []uint64               // br-int ones
	cmd               *exec.Cmd
	exited            chan error
	logf              *os.File
	probes            int
	http              *http.Client
}

// attackTopology is the attacked topology: every host in one network, one
// VM port each, no declared MAC (every MAC is learned, so one can flap).
func attackTopology(ctrl string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %satk\ncontroller: tcp:%s\ndefaults: {mode: controller, datapath: netdev}\nhosts:\n", Prefix, ctrl)
	for i := 0; i < attackRealHosts+attackAbsentHosts; i++ {
		fmt.Fprintf(&b, "  - {name: %s, vtep: %s}\n", hostName(i), vtep(i))
	}
	fmt.Fprintf(&b, "networks:\n  - name: net0\n    vni: %d\n    ports:\n", attackVNI)
	for i := 0; i < attackRealHosts+attackAbsentHosts; i++ {
		fmt.Fprintf(&b, "      - {host: %s, name: vm0}\n", hostName(i))
	}
	return b.String()
}

// startAttackEnv writes the topology, makes the switches, starts the
// controller and waits until every real switch is programmed.
func startAttackEnv(ctx context.Context, b *bench, a attack) (*attackEnv, error) {
	e := &attackEnv{dir: filepath.Join("/tmp", fmt.Sprintf("%s-%d-atk-%s", Prefix, os.Getpid(), a.name)), http: &http.Client{Timeout: 2 * time.Second}}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if e.addr, err = freePort(); err != nil {
		return nil, err
	}
	if e.metricsAddr, err = freePort(); err != nil {
		return nil, err
	}
	yaml := attackTopology(e.addr)
	if e.t, err = topology.Parse([]byte(yaml)); err != nil {
		return nil, fmt.Errorf("attack topology: %w", err)
	}
	e.file = filepath.Join(e.dir, "topology.yaml")
	if err := os.WriteFile(e.file, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	if err := e.makeSwitches(); err != nil {
		e.stop()
		return nil, err
	}
	if err := e.startController(ctx, b.bin, a.args); err != nil {
		e.stop()
		return nil, err
	}
	if err := e.connect(ctx); err != nil {
		e.stop()
		return nil, e.failed(err)
	}
	return e, nil
}

// makeSwitches makes the real hosts' switches and lists the absent hosts'
// datapath IDs.
func (e *attackEnv) makeSwitches() error {
	for i, h := range e.t.Hosts {
		if i >= attackRealHosts {
			e.absentTun = append(e.absentTun, topology.BridgeDatapathID(e.t.Name, h.Name, topology.BridgeTun))
			e.absentInt = append(e.absentInt, topology.BridgeDatapathID(e.t.Name, h.Name, topology.BridgeInt))
			continue
		}
		alloc, err := e.t.Allocate(h, topology.Allocation{})
		if err != nil {
			return err
		}
		tun, err := openflowtest.New(openflowtest.TunnelBridge(e.t, h, alloc))
		if err != nil {
			return err
		}
		brint, err := openflowtest.New(openflowtest.IntegrationBridge(e.t, h))
		if err != nil {
			return err
		}
		e.tun, e.brint = append(e.tun, tun), append(e.brint, brint)
		e.vlans = append(e.vlans, alloc.LocalVLAN[attackVNI])
	}
	return nil
}

// startController runs `ovs-vxctl controller` with metrics, a short grace
// (the absent hosts never come) and extra flags, and waits until it listens.
func (e *attackEnv) startController(ctx context.Context, bin string, extra []string) error {
	var err error
	if e.logf, err = os.Create(filepath.Join(e.dir, "controller.log")); err != nil {
		return err
	}
	args := append([]string{"controller", "-f", e.file, "--listen", "tcp:" + e.addr, "--metrics-listen", e.metricsAddr, "--grace", "1s"}, extra...)
	e.cmd = exec.Command(bin, args...)
	e.cmd.Stdout, e.cmd.Stderr = e.logf, e.logf
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("starting the controller: %w", err)
	}
	e.exited = make(chan error, 1)
	go func() { e.exited <- e.cmd.Wait() }()
	if err := waitListening(ctx, e.addr, e.exited); err != nil {
		return e.failed(err)
	}
	return nil
}

// connect connects the real switches and waits until each is programmed
// (br-tun: a bundle committed; br-int: a flow) and all are quiet.
func (e *attackEnv) connect(ctx context.Context) error {
	all := append(append([]*openflowtest.Switch(nil), e.tun...), e.brint...)
	for _, s := range all {
		if err := s.Connect(e.addr); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting := 0
		for i := range e.tun {
			if e.tun[i].Counters().Bundles == 0 || e.brint[i].FlowCount() == 0 {
				waiting++
			}
		}
		if waiting == 0 {
			return waitQuiet(ctx, all)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d real hosts' switches not programmed within 30 s", waiting, len(e.tun))
		}
		if err := e.alive(); err != nil {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (e *attackEnv) pid() int           { return e.cmd.Process.Pid }
func (e *attackEnv) metricsURL() string { return "http://" + e.metricsAddr + "/metrics" }

// alive reports the controller's exit, if it exited.
func (e *attackEnv) alive() error {
	select {
	case err := <-e.exited:
		e.exited <- err
		return fmt.Errorf("the controller exited: %v", err)
	default:
		return nil
	}
}

// failed adds the end of the controller's log to err.
func (e *attackEnv) failed(err error) error {
	if e.logf == nil {
		return err
	}
	e.logf.Sync()
	tail, _ := os.ReadFile(e.logf.Name())
	if len(tail) > 2000 {
		tail = tail[len(tail)-2000:]
	}
	return fmt.Errorf("%w; controller log ends: %s", err, strings.TrimSpace(string(tail)))
}

// stop ends the switches and the controller and removes the directory.
func (e *attackEnv) stop() {
	for _, s := range append(append([]*openflowtest.Switch(nil), e.tun...), e.brint...) {
		s.Close()
	}
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			e.cmd.Process.Kill()
			<-e.exited
		}
	}
	if e.logf != nil {
		e.logf.Close()
	}
	os.RemoveAll(e.dir)
}

// reconnects counts the real switches' connections that ended.
func (e *attackEnv) reconnects() uint64 {
	var n uint64
	for _, s := range append(append([]*openflowtest.Switch(nil), e.tun...), e.brint...) {
		n += s.Counters().Reconnects
	}
	return n
}

// probe reports a new MAC from the last real host's br-tun and returns the
// time until every other real br-tun acknowledged its table-20 entry, in
// ms; NaN when that took more than probeLimit.
func (e *attackEnv) probe(ctx context.Context) float64 {
	e.probes++
	i := e.probes
	mac := net.HardwareAddr{0x52, 0x54, 0x0b, 0, byte(i >> 8), byte(i)}
	ip := netip.AddrFrom4([4]byte{10, 251, byte(i >> 8), byte(i)})
	src := len(e.tun) - 1
	var left atomic.Int32
	left.Store(int32(src))
	acked := make(chan struct{})
	for j := 0; j < src; j++ {
		e.tun[j].Watch(flows.TableUnicast, mac, func(time.Time) {
			if left.Add(-1) == 0 {
				close(acked)
			}
		})
	}
	defer func() {
		for j := 0; j < src; j++ {
			e.tun[j].Watch(flows.TableUnicast, nil, nil)
		}
	}()
	start := time.Now()
	e.tun[src].SendPacketIn(openflowtest.UnknownSource(openflowtest.ARPRequest(mac, ip, netip.AddrFrom4([4]byte{10, 251, 255, 254}), e.vlans[src])))
	select {
	case <-acked:
		return ms(time.Since(start))
	case <-time.After(probeLimit):
	case <-ctx.Done():
	}
	return math.NaN()
}

// metrics reads the controller's metrics: every sample by series.
func (e *attackEnv) metrics() (map[string]float64, error) {
	resp, err := e.http.Get(e.metricsURL())
	if err != nil {
		return nil, fmt.Errorf("reading the controller's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the controller's metrics: %s", resp.Status)
	}
	return parseMetrics(bufio.NewScanner(resp.Body))
}

// parseMetrics parses Prometheus' text format into value by series
// ("name{labels}" as written).
func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	out := map[string]float64{}
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
	return out, sc.Err()
}

// ctlMetric is the series of one of the controller's metrics without labels.
func ctlMetric(name string) string { return "ovs_vxctl_controller_" + name }

// refusedSeries is the series of switches_refused_total for reason.
func refusedSeries(reason string) string {
	return fmt.Sprintf(`ovs_vxctl_controller_switches_refused_total{reason=%q}`, reason)
}

// displacedSeries is the series of connected switches displaced by a claim.
const displacedSeries = `ovs_vxctl_controller_switches_displaced_total{reason="unresponsive"}`

// packetInSeries sums packet_ins_total of result over the real hosts.
func packetInSeries(m map[string]float64, result string) float64 {
	var n float64
	for s, v := range m {
		if strings.HasPrefix(s, ctlMetric("packet_ins_total{")) && strings.Contains(s, fmt.Sprintf("result=%q", result)) {
			n += v
		}
	}
	return n
}

// monitor samples the controller's RSS every rssPoll and its goroutines
// and open descriptors (metrics) every metricsPoll, keeping the peaks.
type monitor struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	rss  float64
	gor  float64
	fds  float64
}

func startMonitor(pid int, url string) *monitor {
	m := &monitor{stop: make(chan struct{})}
	m.wg.Add(2)
	go m.every(rssPoll, func() {
		v := procStatusMB(pid, "VmRSS:")
		m.mu.Lock()
		m.rss = max(m.rss, v)
		m.mu.Unlock()
	})
	client := &http.Client{Timeout: time.Second}
	go m.every(metricsPoll, func() {
		resp, err := client.Get(url)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		s, err := parseMetrics(bufio.NewScanner(resp.Body))
		if err != nil {
			return
		}
		m.mu.Lock()
		m.gor, m.fds = max(m.gor, s["go_goroutines"]), max(m.fds, s["process_open_fds"])
		m.mu.Unlock()
	})
	return m
}

func (m *monitor) every(d time.Duration, f func()) {
	defer m.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f()
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// finish stops the sampling and records the peaks.
func (m *monitor) finish(r *attackResult) {
	close(m.stop)
	m.wg.Wait()
	r.PeakRSSMB, r.PeakGoroutines, r.PeakFDs = m.rss, m.gor, m.fds
}

// procStatusMB is a field of /proc/PID/status in MB (VmRSS:, VmHWM:); 0
// when unknown.
func procStatusMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1000
		}
	}
	return 0
}

// maxOpenFiles is the soft limit of open files of a process, as
// /proc/PID/limits shows it.
func maxOpenFiles(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Max open files"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return "unknown"
}
