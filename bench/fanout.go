package main

import (
	"context"
	"fmt"
	"io"
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

// fanoutTopology is S controller-mode hosts sharing one network, one VM
// port each with no declared MAC: every MAC is learned, and a MAC learned
// on one host must reach every other.
func fanoutTopology(s int, ctrl string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %sfan\ncontroller: tcp:%s\ndefaults: {mode: controller, datapath: netdev}\nhosts:\n", Prefix, ctrl)
	for i := 0; i < s; i++ {
		fmt.Fprintf(&b, "  - {name: %s, vtep: %s}\n", hostName(i), vtep(i))
	}
	b.WriteString("networks:\n  - name: net0\n    vni: 5000\n    ports:\n")
	for i := 0; i < s; i++ {
		fmt.Fprintf(&b, "      - {host: %s, name: vm0}\n", hostName(i))
	}
	return b.String()
}

// fanoutResult is what one switch count measured.
type fanoutResult struct {
	Switches      int       `json:"switches"`
	Runs          int       `json:"runs"`
	LatenciesMs   []float64 `json:"latencies_ms"` // every other switch, every run
	AllMs         []float64 `json:"all_acked_ms"` // per run: until the last switch acknowledged
	CPUSecPerMAC  []float64 `json:"controller_cpu_s_per_mac"`
	FlowModsPerMA []float64 `json:"flowmods_per_mac"`
	SyncS         float64   `json:"-"` // NaN when not every switch was programmed
	RSSStartMB    float64   `json:"controller_rss_start_mb"`
	RSSSyncedMB   float64   `json:"controller_rss_synced_mb"`
	FlowsPerSw    int       `json:"flows_per_switch"`
	Reconnects    uint64    `json:"reconnects"` // connections the controller dropped
	// While connecting (until every switch was programmed or the limit):
	// the controller's CPU and the emulator's (this process), in seconds.
	ConnectCtrlCPU float64 `json:"connect_controller_cpu_s"`
	ConnectEmuCPU  float64 `json:"connect_emulator_cpu_s"`
	// HeapSyncedMB is the controller's live heap once synced (its
	// go_memstats_heap_alloc_bytes; NaN when unknown).
	HeapSyncedMB float64 `json:"controller_heap_synced_mb"`
	// ConnectDropped counts the connections the controller ended before
	// every switch was programmed (the emulator redialled them).
	ConnectDropped uint64 `json:"connect_dropped"`
	// Programmed is how many switches had flows within the sync limit;
	// when it is short of Switches nothing else was measured.
	Programmed int `json:"programmed"`
}

// benchFanout is figure 5: the controller (`ovs-vxctl controller`, its own
// process) serving S emulated switches over loopback TCP; a new MAC's
// packet-in on one switch, then the time until every other switch
// acknowledged the MAC's table-20 entry (the bundle commit or barrier after
// it).
func benchFanout(ctx context.Context, b *bench, sec *Section) error {
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("the ovs-vxctl binary %s: %w (run `make build`)", b.bin, err)
	}
	var results []fanoutResult
	for _, s := range b.fanoutSizes {
		if s < 2 {
			return fmt.Errorf("fanout needs at least 2 switches, got %d", s)
		}
		runs := b.fanoutRuns(s)
		progress("fanout: %d emulated switches, %d runs after a warm-up", s, runs)
		r, err := fanoutOnce(ctx, b, s, runs)
		if err != nil {
			return fmt.Errorf("%d switches: %w", s, err)
		}
		results = append(results, r)
		var tgt *Target
		if s == 1000 {
			tgt = &Target{"<", 50}
		}
		if r.Programmed < s {
			why := fmt.Sprintf("not measured: only %d of %d switches were programmed %v after connecting", r.Programmed, s, b.fanoutSyncLimit)
			b.r.add(sec, fmt.Sprintf("fanout_p50_ms_%d", s), math.NaN(), "ms", nil, why)
			b.r.add(sec, fmt.Sprintf("fanout_p99_ms_%d", s), math.NaN(), "ms", tgt, why)
		} else {
			note := fmt.Sprintf("%d switches × %d runs", s-1, runs)
			if runs < b.runs {
				note += fmt.Sprintf(" (fewer than -runs %d: a run costs the controller %.2f s of CPU here)", b.runs, median(r.CPUSecPerMAC))
			}
			b.r.add(sec, fmt.Sprintf("fanout_p50_ms_%d", s), percentile(r.LatenciesMs, 50), "ms", nil, note)
			b.r.add(sec, fmt.Sprintf("fanout_p99_ms_%d", s), percentile(r.LatenciesMs, 99), "ms", tgt, note)
			b.r.add(sec, fmt.Sprintf("fanout_all_ms_%d", s), median(r.AllMs), "ms", nil, "until the last switch acknowledged, median over runs")
			b.r.add(sec, fmt.Sprintf("fanout_cpu_ms_per_mac_%d", s), median(r.CPUSecPerMAC)*1000, "ms", nil, "controller CPU time for one new MAC, until the last switch acknowledged it")
			b.r.add(sec, fmt.Sprintf("fanout_flowmods_per_mac_%d", s), median(r.FlowModsPerMA), "count", nil, "flow-mods the switches received for one new MAC")
		}
		b.r.add(sec, fmt.Sprintf("fanout_mem_kb_per_switch_%d", s), (r.RSSSyncedMB-r.RSSStartMB)*1000/float64(s), "KB", nil,
			fmt.Sprintf("controller RSS %.1f MB with no switch, %.1f MB with %d connected, %d programmed", r.RSSStartMB, r.RSSSyncedMB, s, r.Programmed))
		syncNote := "from the first connection until every switch was programmed and quiet"
		if r.Programmed < s {
			syncNote = fmt.Sprintf("not reached: %d of %d programmed after %v", r.Programmed, s, b.fanoutSyncLimit)
		}
		b.r.add(sec, fmt.Sprintf("fanout_initial_sync_s_%d", s), r.SyncS, "s", target1000(s, "<=", 60), syncNote)
		b.r.add(sec, fmt.Sprintf("fanout_dropped_connections_%d", s), float64(r.Reconnects), "count", target1000(s, "==", 0), "connections the controller ended (the emulator redials like OVS)")
		addConnectFigures(b, sec, r)
	}
	sec.Details["sizes"] = results
	// How the tail grows with the number of switches, between the two
	// largest sizes that could be measured.
	var measured []fanoutResult
	for _, r := range results {
		if r.Programmed == r.Switches {
			measured = append(measured, r)
		}
	}
	if n := len(measured); n >= 2 {
		a, c := measured[n-2], measured[n-1]
		b.r.add(sec, "fanout_p99_growth_exponent", growthExponent(float64(a.Switches), percentile(a.LatenciesMs, 99), float64(c.Switches), percentile(c.LatenciesMs, 99)), "exp", nil,
			fmt.Sprintf("p99 ∝ S^x from %d to %d switches (1 = linear)", a.Switches, c.Switches))
	}
	return nil
}

// target1000 is the target for the 1,000-switch figures (nil for
// other sizes).
func target1000(s int, op string, v float64) *Target {
	if s != 1000 {
		return nil
	}
	return &Target{op, v}
}

// addConnectFigures reports what all switches connecting at once cost: the
// controller's memory (RSS and live heap) once they are programmed, and the
// CPU of the controller and of the emulator (this process) until then.
func addConnectFigures(b *bench, sec *Section, r fanoutResult) {
	s := r.Switches
	b.r.add(sec, fmt.Sprintf("fanout_rss_mb_%d", s), r.RSSSyncedMB, "MB", target1000(s, "<=", 512), "controller RSS with every switch connected and programmed")
	b.r.add(sec, fmt.Sprintf("fanout_heap_mb_%d", s), r.HeapSyncedMB, "MB", nil, "controller live heap (go_memstats_heap_alloc_bytes) at the same moment")
	b.r.add(sec, fmt.Sprintf("fanout_connect_dropped_%d", s), float64(r.ConnectDropped), "count", target1000(s, "==", 0), "connections the controller ended while the switches were connecting at once")
	b.r.add(sec, fmt.Sprintf("fanout_connect_controller_cpu_s_%d", s), r.ConnectCtrlCPU, "s", nil, "controller CPU from the first connection until all were programmed")
	b.r.add(sec, fmt.Sprintf("fanout_connect_emulator_cpu_s_%d", s), r.ConnectEmuCPU, "s", nil, "emulator (bench process) CPU over the same time")
}

// fanoutRuns keeps the biggest fan-outs inside the time budget. A run is
// an incremental update of every switch (no dump, no compile per switch):
// about a second at 1,000 switches, most of it waiting for quiet, so every
// size gets -runs.
func (b *bench) fanoutRuns(s int) int {
	return b.runs
}

func fanoutOnce(ctx context.Context, b *bench, s, runs int) (fanoutResult, error) {
	res := fanoutResult{Switches: s, Runs: runs}
	dir := filepath.Join("/tmp", fmt.Sprintf("%s-%d-fan%d", Prefix, os.Getpid(), s))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	addr, err := freePort()
	if err != nil {
		return res, err
	}
	metricsAddr, err := freePort()
	if err != nil {
		return res, err
	}
	yaml := fanoutTopology(s, addr)
	t, err := topology.Parse([]byte(yaml))
	if err != nil {
		return res, fmt.Errorf("fan-out topology: %w", err)
	}
	file := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return res, err
	}
	emus := make([]*openflowtest.Switch, s)
	vlans := make([]uint16, s)
	for i, h := range t.Hosts {
		alloc, err := t.Allocate(h, topology.Allocation{})
		if err != nil {
			return res, err
		}
		emus[i], err = openflowtest.New(openflowtest.TunnelBridge(t, h, alloc))
		if err != nil {
			return res, err
		}
		vlans[i] = alloc.LocalVLAN[t.Networks[0].VNI]
	}
	defer func() {
		for _, e := range emus {
			e.Close()
		}
	}()

	logf, err := os.Create(filepath.Join(dir, "controller.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	args := []string{"controller", "-f", file, "--listen", "tcp:" + addr, "--metrics-listen", "tcp:" + metricsAddr}
	// Diagnosis: a CPU profile of the controller's whole run.
	if p := os.Getenv("FANOUT_CONTROLLER_CPUPROFILE"); p != "" {
		args = append(args, "--cpuprofile", p)
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting the controller: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	failed := func(err error) error {
		logf.Sync()
		tail, _ := os.ReadFile(logf.Name())
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("%w; controller log ends: %s", err, strings.TrimSpace(string(tail)))
	}
	if err := waitListening(ctx, addr, exited); err != nil {
		return res, failed(err)
	}
	time.Sleep(300 * time.Millisecond)
	pid := cmd.Process.Pid
	res.RSSStartMB = rssMB(pid)

	// Connect every switch and wait until each is programmed and all are
	// quiet.
	start := time.Now()
	ctrlCPU0, emuCPU0 := cpuSeconds(pid), selfCPUSeconds()
	for i, e := range emus {
		if err := e.Connect(addr); err != nil {
			return res, fmt.Errorf("switch %d connecting: %w", i, err)
		}
	}
	waiting, err := waitSynced(ctx, emus, b.fanoutSyncLimit, exited)
	if err != nil {
		return res, failed(err)
	}
	res.ConnectCtrlCPU, res.ConnectEmuCPU = cpuSeconds(pid)-ctrlCPU0, selfCPUSeconds()-emuCPU0
	for _, e := range emus {
		res.ConnectDropped += e.Counters().Reconnects
	}
	res.Programmed = s - waiting
	res.SyncS = time.Since(start).Seconds() - quietFor.Seconds()
	res.FlowsPerSw = emus[1].FlowCount()
	time.Sleep(200 * time.Millisecond)
	res.RSSSyncedMB = rssMB(pid)
	res.HeapSyncedMB = heapMB(metricsAddr)
	progress("fanout: %d switches connecting at once: programmed %d, dropped %d, %.1f s (controller CPU %.1f s, emulator %.1f s), RSS %.0f MB, heap %.0f MB",
		s, s-waiting, res.ConnectDropped, res.SyncS, res.ConnectCtrlCPU, res.ConnectEmuCPU, res.RSSSyncedMB, res.HeapSyncedMB)
	if waiting > 0 {
		res.SyncS = math.NaN()
		for _, e := range emus {
			res.Reconnects += e.Counters().Reconnects
		}
		progress("fanout: %d switches: only %d programmed after %v: not measuring the fan-out", s, res.Programmed, b.fanoutSyncLimit)
		return res, nil
	}

	// The runs: each a new MAC on another switch.
	for round := -1; round < runs; round++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		i := round + 1
		src := (i * 7919) % s
		mac := net.HardwareAddr{0x52, 0x54, 0x03, byte(s >> 8), byte(i >> 8), byte(i)}
		ip := netip.AddrFrom4([4]byte{10, 250, byte(i >> 8), byte(i)})
		var mu sync.Mutex
		var acks []time.Time
		left := atomic.Int64{}
		left.Store(int64(s - 1))
		done := make(chan struct{})
		var t0 time.Time
		var mods0 uint64
		for j, e := range emus {
			mods0 += e.Counters().FlowMods
			if j == src {
				e.Watch(flows.TableUnicast, nil, nil)
				continue
			}
			e.Watch(flows.TableUnicast, mac, func(at time.Time) {
				mu.Lock()
				acks = append(acks, at)
				mu.Unlock()
				if left.Add(-1) == 0 {
					close(done)
				}
			})
		}
		cpu0 := cpuSeconds(pid)
		t0 = time.Now()
		emus[src].SendPacketIn(openflowtest.UnknownSource(openflowtest.ARPRequest(mac, ip, netip.AddrFrom4([4]byte{10, 250, 255, 254}), vlans[src])))
		// The CPU until the last acknowledgement, not through the quiet
		// wait after it: the controller's background work (activity reads,
		// keepalives; tens of ms per second at 1,000 switches) is not the
		// MAC's.
		var cpu float64
		select {
		case <-done:
			cpu = cpuSeconds(pid) - cpu0
		case <-time.After(2 * time.Minute):
			return res, failed(fmt.Errorf("run %d: %d of %d switches never acknowledged the new MAC's entry", round+1, left.Load(), s-1))
		case err := <-exited:
			return res, failed(fmt.Errorf("the controller exited: %v", err))
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if err := waitQuiet(ctx, emus); err != nil {
			return res, err
		}
		var mods1 uint64
		for _, e := range emus {
			e.Watch(flows.TableUnicast, nil, nil)
			mods1 += e.Counters().FlowMods
		}
		if round < 0 {
			continue
		}
		mu.Lock()
		var last time.Time
		for _, at := range acks {
			res.LatenciesMs = append(res.LatenciesMs, ms(at.Sub(t0)))
			if at.After(last) {
				last = at
			}
		}
		mu.Unlock()
		res.AllMs = append(res.AllMs, ms(last.Sub(t0)))
		res.CPUSecPerMAC = append(res.CPUSecPerMAC, cpu)
		res.FlowModsPerMA = append(res.FlowModsPerMA, float64(mods1-mods0))
		progress("fanout: %d switches, run %d: all acknowledged after %.0f ms (controller CPU %.2f s, %d flow-mods)",
			s, round+1, ms(last.Sub(t0)), cpu, mods1-mods0)
	}
	for _, e := range emus {
		res.Reconnects += e.Counters().Reconnects
	}
	return res, nil
}

// quietFor is how long no switch may receive a flow-mod for the fan-out to
// count as settled.
const quietFor = time.Second

// waitSynced waits until every switch has had a bundle committed and no
// switch received a flow-mod for quietFor, or limit passed: it returns how
// many switches were still waiting for their flows.
func waitSynced(ctx context.Context, emus []*openflowtest.Switch, limit time.Duration, exited <-chan error) (int, error) {
	deadline := time.Now().Add(limit)
	for {
		waiting := 0
		for _, e := range emus {
			if e.Counters().Bundles == 0 {
				waiting++
			}
		}
		if waiting == 0 {
			return 0, waitQuiet(ctx, emus)
		}
		if time.Now().After(deadline) {
			return waiting, nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case err := <-exited:
			return waiting, fmt.Errorf("the controller exited: %v", err)
		case <-ctx.Done():
			return waiting, ctx.Err()
		}
	}
}

// waitQuiet waits until no switch received a flow-mod for quietFor.
func waitQuiet(ctx context.Context, emus []*openflowtest.Switch) error {
	for {
		var last time.Time
		for _, e := range emus {
			if t := e.LastFlowMod(); t.After(last) {
				last = t
			}
		}
		idle := time.Since(last)
		if idle >= quietFor {
			return nil
		}
		select {
		case <-time.After(quietFor - idle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, addr string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the controller exited at once: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the controller did not listen on %s within 15 s", addr)
}

// rssMB is a process's resident memory in MB (0 when unknown).
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1000
		}
	}
	return 0
}

// selfCPUSeconds is the user+system CPU time this process (the emulator)
// has used.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// heapMB is the live heap the controller's metrics at addr report, in MB
// (NaN when unknown).
func heapMB(addr string) float64 {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return math.NaN()
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_alloc_bytes "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f / 1e6
			}
		}
	}
	return math.NaN()
}

// cpuSeconds is the user+system CPU time a process has used (0 when
// unknown).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
