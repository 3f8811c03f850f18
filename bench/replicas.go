package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Figure 9: the fan-out of figure 5 with two controller replicas sharing a
// three-member directory (clustered ovsdb-server on loopback addresses).
// Every emulated switch connects to both replicas; one is its master. A new
// MAC's packet-in reaches the source switch's master, which writes it to
// the directory; each replica hears it and installs it on the switches it
// masters. Measured: from the packet-in until each other switch
// acknowledged the MAC's table-20 entry.

// replicaCount is how many controller replicas the figure runs.
const replicaCount = 2

// replicasTopology is fanoutTopology with two controller targets and the
// directory's endpoints.
func replicasTopology(s int, ctrls, dir []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %srep\ncontroller: [%s]\ndirectory: [%s]\ndefaults: {mode: controller, datapath: netdev}\nhosts:\n",
		Prefix, "tcp:"+strings.Join(ctrls, ", tcp:"), strings.Join(dir, ", "))
	for i := 0; i < s; i++ {
		fmt.Fprintf(&b, "  - {name: %s, vtep: %s}\n", hostName(i), vtep(i))
	}
	b.WriteString("networks:\n  - name: net0\n    vni: 5000\n    ports:\n")
	for i := 0; i < s; i++ {
		fmt.Fprintf(&b, "      - {host: %s, name: vm0}\n", hostName(i))
	}
	return b.String()
}

// replicasResult is what one switch count measured.
type replicasResult struct {
	Switches    int       `json:"switches"`
	Runs        int       `json:"runs"`
	LatenciesMs []float64 `json:"latencies_ms"`
	// The same latencies split: switches whose master is the replica that
	// learned the MAC (no directory on the way), and the others (the MAC
	// reaches their master through the directory).
	SameMs  []float64 `json:"same_replica_ms"`
	OtherMs []float64 `json:"other_replica_ms"`
	AllMs   []float64 `json:"all_acked_ms"`
	// CPUSecPerMAC is both replicas' CPU for one new MAC.
	CPUSecPerMAC []float64      `json:"controllers_cpu_s_per_mac"`
	SyncS        float64        `json:"sync_s"` // NaN when not every switch was programmed
	Programmed   int            `json:"programmed"`
	Mastered     int            `json:"mastered"`    // switches with exactly one master connection
	MasteredBy   map[string]int `json:"mastered_by"` // Switch rows per master, as the directory says
	Dropped      uint64         `json:"connect_dropped"`
	ConnectCPU   []float64      `json:"connect_cpu_s"` // per replica, until all programmed
	EmuCPU       float64        `json:"emulator_cpu_s"`
	RSSMB        []float64      `json:"rss_mb"`  // per replica, synced
	HeapMB       []float64      `json:"heap_mb"` // per replica, synced
}

// benchReplicas runs figure 9 for every size of -replicas-sizes.
func benchReplicas(ctx context.Context, b *bench, sec *Section) error {
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("the ovs-vxctl binary %s: %w (run `make build`)", b.bin, err)
	}
	for _, tool := range []string{"ovsdb-tool", "ovsdb-server", "ovs-appctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return skipError{"needs " + tool}
		}
	}
	var results []replicasResult
	for _, s := range b.replicaSizes {
		if s < 2 {
			return fmt.Errorf("replicas needs at least 2 switches, got %d", s)
		}
		runs := b.fanoutRuns(s)
		progress("replicas: %d emulated switches, %d replicas, 3 directory members, %d runs after a warm-up", s, replicaCount, runs)
		start := time.Now()
		r, err := replicasOnce(ctx, b, s, runs)
		if err != nil {
			return fmt.Errorf("%d switches: %w", s, err)
		}
		results = append(results, r)
		addReplicaFigures(b, sec, r, time.Since(start))
	}
	sec.Details["sizes"] = results
	return nil
}

// addReplicaFigures reports one size.
func addReplicaFigures(b *bench, sec *Section, r replicasResult, took time.Duration) {
	s := r.Switches
	var tgt *Target
	if s == 1000 {
		tgt = &Target{"<=", 100}
	}
	note := fmt.Sprintf("%d switches × %d runs, 2 replicas + 3-member directory; the size took %.0f s in all", s-1, r.Runs, took.Seconds())
	if r.Programmed < s || r.Mastered < s {
		why := fmt.Sprintf("not measured: %d of %d switches programmed, %d with one master, %v after connecting", r.Programmed, s, r.Mastered, b.fanoutSyncLimit)
		b.r.add(sec, fmt.Sprintf("replicas_fanout_p99_ms_%d", s), math.NaN(), "ms", tgt, why)
	} else {
		b.r.add(sec, fmt.Sprintf("replicas_fanout_p50_ms_%d", s), percentile(r.LatenciesMs, 50), "ms", nil, note)
		b.r.add(sec, fmt.Sprintf("replicas_fanout_p99_ms_%d", s), percentile(r.LatenciesMs, 99), "ms", tgt, note)
		b.r.add(sec, fmt.Sprintf("replicas_fanout_all_ms_%d", s), median(r.AllMs), "ms", nil, "until the last switch acknowledged, median over runs")
		if len(r.SameMs) > 0 && len(r.OtherMs) > 0 {
			b.r.add(sec, fmt.Sprintf("replicas_fanout_p99_ms_same_replica_%d", s), percentile(r.SameMs, 99), "ms", nil,
				fmt.Sprintf("%d acks of switches mastered by the replica that learned the MAC", len(r.SameMs)))
			b.r.add(sec, fmt.Sprintf("replicas_fanout_p99_ms_via_directory_%d", s), percentile(r.OtherMs, 99), "ms", nil,
				fmt.Sprintf("%d acks of switches mastered by the other replica: learned, written to the directory, heard, installed", len(r.OtherMs)))
		}
		b.r.add(sec, fmt.Sprintf("replicas_cpu_ms_per_mac_%d", s), median(r.CPUSecPerMAC)*1000, "ms", nil, "both replicas' CPU for one new MAC")
	}
	b.r.add(sec, fmt.Sprintf("replicas_initial_sync_s_%d", s), r.SyncS, "s", nil,
		fmt.Sprintf("all connecting at once to both replicas until every switch was programmed; masters per replica %v", r.MasteredBy))
	b.r.add(sec, fmt.Sprintf("replicas_connect_dropped_%d", s), float64(r.Dropped), "count", nil, "connections a replica ended while the switches connected")
	for i := range r.RSSMB {
		name := fmt.Sprintf("ctl%d", i+1)
		b.r.add(sec, fmt.Sprintf("replicas_%s_rss_mb_%d", name, s), r.RSSMB[i], "MB", nil, "replica RSS, every switch connected and programmed")
		b.r.add(sec, fmt.Sprintf("replicas_%s_heap_mb_%d", name, s), r.HeapMB[i], "MB", nil, "replica live heap (go_memstats_heap_alloc_bytes)")
		b.r.add(sec, fmt.Sprintf("replicas_%s_connect_cpu_s_%d", name, s), r.ConnectCPU[i], "s", nil, "replica CPU until every switch was programmed")
	}
	b.r.add(sec, fmt.Sprintf("replicas_emulator_cpu_s_%d", s), r.EmuCPU, "s", nil, "emulator (bench process) CPU over the same time")
}

// benchCluster is a directory cluster the bench runs on loopback.
type benchCluster struct {
	members   []*ovsrun.ClusterMember
	endpoints []string
}

// startBenchCluster creates and starts a three-member cluster of the
// directory's schema in dir with ovsdb-tool, on 127.0.0.21-23, and waits
// for its leader.
func startBenchCluster(ctx context.Context, dir string) (*benchCluster, error) {
	schema := filepath.Join(dir, "directory.ovsschema")
	if err := os.WriteFile(schema, directory.Schema(), 0o644); err != nil {
		return nil, err
	}
	c := &benchCluster{}
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 21+i)
		client, err := freePortOn(ip)
		if err != nil {
			return c, err
		}
		raft, err := freePortOn(ip)
		if err != nil {
			return c, err
		}
		m := &ovsrun.ClusterMember{Dir: filepath.Join(dir, fmt.Sprintf("d%d", i+1)), Remote: "tcp:" + client, Raft: "tcp:" + raft}
		if i == 0 {
			err = m.Create(ctx, schema)
		} else {
			err = m.Join(ctx, directory.DatabaseName, c.members[0].Raft)
		}
		if err == nil {
			err = m.Start(ctx)
		}
		c.members = append(c.members, m)
		if err != nil {
			return c, err
		}
		c.endpoints = append(c.endpoints, m.Remote)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		joined, leaders := 0, 0
		for _, m := range c.members {
			if s, err := m.Status(ctx, directory.DatabaseName); err == nil {
				joined += map[bool]int{true: 1}[s.Member()]
				leaders += map[bool]int{true: 1}[s.Role == "leader"]
			}
		}
		if joined == len(c.members) && leaders == 1 {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("the directory cluster has no leader after 30 s")
		}
	}
}

func (c *benchCluster) stop() {
	for _, m := range c.members {
		m.Stop()
	}
}

// freePortOn returns ip:port with a port nothing listens on at ip now.
func freePortOn(ip string) (string, error) {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", fmt.Errorf("finding a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// benchReplica is one `ovs-vxctl controller --name` process.
type benchReplica struct {
	cmd     *exec.Cmd
	addr    string
	metrics string
	log     *os.File
	exited  chan error
}

func (r *benchReplica) pid() int { return r.cmd.Process.Pid }

// startReplica starts replica name of the topology in file, listening on
// addr, and waits until it listens.
func startReplica(ctx context.Context, b *bench, dir, file, name, addr string) (*benchReplica, error) {
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "controller-"+name+".log"))
	if err != nil {
		return nil, err
	}
	r := &benchReplica{addr: addr, metrics: metrics, log: logf, exited: make(chan error, 1)}
	r.cmd = exec.Command(b.bin, "controller", "-f", file, "--listen", "tcp:"+addr, "--name", name, "--metrics-listen", "tcp:"+metrics)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting replica %s: %w", name, err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	if err := waitListening(ctx, addr, r.exited); err != nil {
		r.stop()
		return nil, fmt.Errorf("replica %s: %w; log ends: %s", name, err, r.tail())
	}
	return r, nil
}

func (r *benchReplica) tail() string {
	r.log.Sync()
	b, _ := os.ReadFile(r.log.Name())
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

func (r *benchReplica) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
	r.log.Close()
}

// replicasOnce runs one size: cluster, replicas, switches, then the runs.
func replicasOnce(ctx context.Context, b *bench, s, runs int) (replicasResult, error) {
	res := replicasResult{Switches: s, Runs: runs}
	dir := filepath.Join("/tmp", fmt.Sprintf("%s-%d-rep%d", Prefix, os.Getpid(), s))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cl, err := startBenchCluster(ctx, dir)
	defer cl.stop()
	if err != nil {
		return res, err
	}
	var addrs []string
	for range replicaCount {
		a, err := freePort()
		if err != nil {
			return res, err
		}
		addrs = append(addrs, a)
	}
	yaml := replicasTopology(s, addrs, cl.endpoints)
	t, err := topology.Parse([]byte(yaml))
	if err != nil {
		return res, fmt.Errorf("replicas topology: %w", err)
	}
	file := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return res, err
	}
	var reps []*benchReplica
	defer func() {
		for _, r := range reps {
			r.stop()
		}
	}()
	for i, a := range addrs {
		r, err := startReplica(ctx, b, dir, file, fmt.Sprintf("ctl%d", i+1), a)
		if err != nil {
			return res, err
		}
		reps = append(reps, r)
	}
	emus, vlans, err := replicaSwitches(t)
	defer func() {
		for _, e := range emus {
			e.Close()
		}
	}()
	if err != nil {
		return res, err
	}
	if err := connectReplicas(ctx, b, &res, emus, reps, cl); err != nil || res.Programmed < s || res.Mastered < s {
		return res, err
	}
	dm := cl.masters(ctx)
	masterOf := make([]string, len(emus))
	for i, e := range emus {
		masterOf[i] = dm[fmt.Sprintf("%016x", e.DatapathID())]
	}
	return res, replicaRuns(ctx, &res, emus, vlans, reps, masterOf)
}

// replicaSwitches makes one emulated br-tun per host.
func replicaSwitches(t *topology.Topology) ([]*openflowtest.Switch, []uint16, error) {
	var emus []*openflowtest.Switch
	var vlans []uint16
	for _, h := range t.Hosts {
		alloc, err := t.Allocate(h, topology.Allocation{})
		if err != nil {
			return emus, nil, err
		}
		e, err := openflowtest.New(openflowtest.TunnelBridge(t, h, alloc))
		if err != nil {
			return emus, nil, err
		}
		emus = append(emus, e)
		vlans = append(vlans, alloc.LocalVLAN[t.Networks[0].VNI])
	}
	return emus, vlans, nil
}

// connectReplicas connects every switch to every replica at once and waits
// until each is programmed and has one master, measuring what it cost.
func connectReplicas(ctx context.Context, b *bench, res *replicasResult, emus []*openflowtest.Switch, reps []*benchReplica, cl *benchCluster) error {
	s := len(emus)
	for _, r := range reps {
		res.RSSMB = append(res.RSSMB, rssMB(r.pid()))
	}
	cpu0 := make([]float64, len(reps))
	for i, r := range reps {
		cpu0[i] = cpuSeconds(r.pid())
	}
	emu0 := selfCPUSeconds()
	start := time.Now()
	for i, e := range emus {
		for _, r := range reps {
			if err := e.Connect("tcp:" + r.addr); err != nil {
				return fmt.Errorf("switch %d connecting to %s: %w", i, r.addr, err)
			}
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waiting, err := waitSynced(ctx, emus, b.fanoutSyncLimit, exits(wctx, reps))
	if err != nil {
		return err
	}
	res.Programmed = s - waiting
	for deadline := time.Now().Add(b.fanoutSyncLimit); ; time.Sleep(100 * time.Millisecond) {
		res.Mastered = mastered(emus)
		if res.Mastered == s || time.Now().After(deadline) {
			break
		}
	}
	res.SyncS = time.Since(start).Seconds() - quietFor.Seconds()
	if waiting > 0 || res.Mastered < s {
		res.SyncS = math.NaN()
	}
	res.EmuCPU = selfCPUSeconds() - emu0
	res.MasteredBy = cl.mastersByReplica(ctx)
	res.RSSMB = res.RSSMB[:0]
	for i, r := range reps {
		res.ConnectCPU = append(res.ConnectCPU, cpuSeconds(r.pid())-cpu0[i])
		res.RSSMB = append(res.RSSMB, rssMB(r.pid()))
		res.HeapMB = append(res.HeapMB, heapMB(r.metrics))
	}
	for _, e := range emus {
		res.Dropped += e.Counters().Reconnects
	}
	progress("replicas: %d switches: programmed %d, one master %d (per replica %v), dropped %d, %.1f s; CPU %v s, emulator %.1f s; RSS %v MB, heap %v MB",
		s, res.Programmed, res.Mastered, res.MasteredBy, res.Dropped, res.SyncS, rounded(res.ConnectCPU), res.EmuCPU, rounded(res.RSSMB), rounded(res.HeapMB))
	return nil
}

// exits reports the first replica to exit, until ctx ends.
func exits(ctx context.Context, reps []*benchReplica) <-chan error {
	exited := make(chan error, len(reps))
	for _, r := range reps {
		go func() {
			select {
			case err := <-r.exited:
				r.exited <- err // for stop
				exited <- fmt.Errorf("replica on %s exited: %v; log ends: %s", r.addr, err, r.tail())
			case <-ctx.Done():
			}
		}()
	}
	return exited
}

// mastered counts the switches with exactly one master connection.
func mastered(emus []*openflowtest.Switch) int {
	n := 0
	for _, e := range emus {
		masters := 0
		for _, c := range e.Conns() {
			if c.Role() == ofcodec.RoleMaster {
				masters++
			}
		}
		if masters == 1 {
			n++
		}
	}
	return n
}

// mastersByReplica counts the directory's Switch rows per master replica.
func (c *benchCluster) mastersByReplica(ctx context.Context) map[string]int {
	by := map[string]int{}
	for _, m := range c.masters(ctx) {
		by[m]++
	}
	return by
}

// masters maps datapath IDs (16 hex digits) to their master replica in the
// directory's Switch table, read from the first member that answers.
func (c *benchCluster) masters(ctx context.Context) map[string]string {
	for _, ep := range c.endpoints {
		out, err := exec.CommandContext(ctx, "ovsdb-client", "--timeout=5", "--no-leader-only", "--format=csv", "--data=bare",
			"--no-headings", "dump", ep, directory.DatabaseName, "Switch", "datapath_id", "master").Output()
		if err != nil {
			continue
		}
		m := map[string]string{}
		// One line per row, "DPID,MASTER" (dump folds rows that print
		// alike: the datapath ID keeps them apart).
		for _, line := range strings.Split(string(out), "\n") {
			if dpid, master, ok := strings.Cut(strings.TrimSpace(line), ","); ok {
				m[strings.Trim(dpid, `"`)] = strings.Trim(master, `"`)
			}
		}
		return m
	}
	return nil
}

func rounded(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Round(x*10) / 10
	}
	return out
}

// replicaAck is one switch's acknowledgement of a run's new MAC.
type replicaAck struct {
	sw int
	at time.Time
}

// replicaRuns sends, per run, a new MAC's packet-in on one switch (to its
// master: a slave gets none) and waits for every other switch's ack.
// masterOf[i] is switch i's master replica, as the directory says.
func replicaRuns(ctx context.Context, res *replicasResult, emus []*openflowtest.Switch, vlans []uint16, reps []*benchReplica, masterOf []string) error {
	s := len(emus)
	for round := -1; round < res.Runs; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := ((round + 1) * 7919) % s
		cpu0 := 0.0
		for _, r := range reps {
			cpu0 += cpuSeconds(r.pid())
		}
		t0, acks, err := replicaRun(ctx, emus, vlans, src, round+1)
		if err != nil {
			return fmt.Errorf("run %d: %w; ctl1 log ends: %s", round+1, err, reps[0].tail())
		}
		cpu := -cpu0
		for _, r := range reps {
			cpu += cpuSeconds(r.pid())
		}
		if round < 0 {
			continue
		}
		var last time.Time
		for _, a := range acks {
			d := ms(a.at.Sub(t0))
			res.LatenciesMs = append(res.LatenciesMs, d)
			if masterOf[a.sw] == masterOf[src] {
				res.SameMs = append(res.SameMs, d)
			} else {
				res.OtherMs = append(res.OtherMs, d)
			}
			if a.at.After(last) {
				last = a.at
			}
		}
		res.AllMs = append(res.AllMs, ms(last.Sub(t0)))
		res.CPUSecPerMAC = append(res.CPUSecPerMAC, cpu)
		progress("replicas: %d switches, run %d: all acknowledged after %.0f ms (replicas' CPU %.2f s)", s, round+1, ms(last.Sub(t0)), cpu)
	}
	return nil
}

// replicaRun is one run: MAC number i appears on switch src; it returns
// when the packet-in was sent and every other switch's ack, once all
// switches are quiet.
func replicaRun(ctx context.Context, emus []*openflowtest.Switch, vlans []uint16, src, i int) (time.Time, []replicaAck, error) {
	s := len(emus)
	mac := net.HardwareAddr{0x52, 0x54, 0x04, byte(s >> 8), byte(i >> 8), byte(i)}
	ip := netip.AddrFrom4([4]byte{10, 251, byte(i >> 8), byte(i)})
	var mu sync.Mutex
	var acks []replicaAck
	var left atomic.Int64
	left.Store(int64(s - 1))
	done := make(chan struct{})
	for j, e := range emus {
		if j == src {
			e.Watch(flows.TableUnicast, nil, nil)
			continue
		}
		e.Watch(flows.TableUnicast, mac, func(at time.Time) {
			mu.Lock()
			acks = append(acks, replicaAck{j, at})
			mu.Unlock()
			if left.Add(-1) == 0 {
				close(done)
			}
		})
	}
	defer func() {
		for _, e := range emus {
			e.Watch(flows.TableUnicast, nil, nil)
		}
	}()
	t0 := time.Now()
	emus[src].SendPacketIn(openflowtest.UnknownSource(openflowtest.ARPRequest(mac, ip, netip.AddrFrom4([4]byte{10, 251, 255, 254}), vlans[src])))
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return t0, nil, fmt.Errorf("%d of %d switches never acknowledged the new MAC's entry", left.Load(), s-1)
	case <-ctx.Done():
		return t0, nil, ctx.Err()
	}
	if err := waitQuiet(ctx, emus); err != nil {
		return t0, nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return t0, slices.Clone(acks), nil
}
