package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// normalCookie marks the one flow the benchmark adds to a lab's br-tun to
// put it on NORMAL: outside every cookie range ovs-vxctl owns, so neither
// apply nor the controller ever touches it.
const normalCookie = 0x6278 << 48 // "bx"

// labTopology is a lab of hosts×vms VMs in one network, in mode, with MACs
// declared for the VMs of the first host only (the others are learned).
func labTopology(name string, mode topology.Mode, hosts, vms int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ncontroller: tcp:192.168.70.254:6653\ndefaults: {mode: %s, datapath: netdev}\nhosts:\n", name, mode)
	for h := 1; h <= hosts; h++ {
		fmt.Fprintf(&b, "  - {name: h%d, vtep: 192.168.70.%d}\n", h, h)
	}
	b.WriteString("networks:\n  - name: net\n    vni: 700\n    ports:\n")
	n := 0
	for h := 1; h <= hosts; h++ {
		for v := 0; v < vms; v++ {
			n++
			mac := ""
			if h == 1 {
				mac = fmt.Sprintf(", mac: \"52:54:00:70:00:%02x\"", n)
			}
			fmt.Fprintf(&b, "      - {host: h%d, name: v%d, ip: 10.70.0.%d/24%s}\n", h, n, n, mac)
		}
	}
	return b.String()
}

// labEnv is one lab the benchmark brought up.
type labEnv struct {
	o    lab.Options
	mode topology.Mode
	vms  []labVM
}

// labVM is one VM of a lab: its namespace and address.
type labVM struct {
	host, name, ns, ip string
}

// upLabs brings the labs up in parallel; on failure what was brought up
// is taken down again.
func upLabs(ctx context.Context, b *bench, specs ...labSpec) ([]*labEnv, error) {
	self, err := filepath.Abs(b.bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(self); err != nil {
		return nil, fmt.Errorf("the ovs-vxctl binary %s: %w (run `make build`)", self, err)
	}
	envs := make([]*labEnv, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs[i], errs[i] = upLab(ctx, self, sp)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		downLabs(envs)
		return nil, err
	}
	return envs, nil
}

// labSpec says which lab to build.
type labSpec struct {
	name       string
	mode       topology.Mode
	hosts, vms int
}

func upLab(ctx context.Context, self string, sp labSpec) (*labEnv, error) {
	dir := filepath.Join("/tmp", fmt.Sprintf("%s-%d-%s", Prefix, os.Getpid(), sp.name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	yaml := labTopology(sp.name, sp.mode, sp.hosts, sp.vms)
	file := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	t, err := topology.Parse([]byte(yaml))
	if err != nil {
		return nil, fmt.Errorf("lab topology %s: %w", sp.name, err)
	}
	e := &labEnv{mode: sp.mode, o: lab.Options{Topology: t, File: file, Self: self, Dir: filepath.Join(dir, "lab")}}
	for _, n := range t.Networks {
		for _, p := range n.Ports {
			e.vms = append(e.vms, labVM{host: p.Host.Name, name: p.Name, ns: lab.VMNS(e.o, p.Host.Name, p.Name), ip: p.IP.Addr().String()})
		}
	}
	start := time.Now()
	if _, err := lab.Up(ctx, e.o); err != nil {
		os.RemoveAll(dir) // Up removed what it built
		return nil, fmt.Errorf("lab %s up: %w", sp.name, err)
	}
	progress("lab %s (%s mode, %d hosts) up in %v", sp.name, sp.mode, sp.hosts, time.Since(start).Round(time.Millisecond))
	// Wait until every VM reaches every other: in controller mode the
	// controller programs the switches after apply.
	if err := e.waitReachable(ctx, 60*time.Second); err != nil {
		e.down()
		return nil, err
	}
	return e, nil
}

// down removes the lab and its directory.
func (e *labEnv) down() {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lab.Down(ctx, e.o); err != nil {
		progress("lab %s down: %v", e.o.Topology.Name, err)
	}
	os.RemoveAll(filepath.Dir(e.o.Dir))
}

func downLabs(envs []*labEnv) {
	var wg sync.WaitGroup
	for _, e := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.down()
		}()
	}
	wg.Wait()
}

// inNS runs argv in namespace ns and returns its standard output.
func inNS(ctx context.Context, ns string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), ns, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// ping sends one echo request from vm to ip and reports whether it was
// answered within a second.
func ping(ctx context.Context, vm labVM, ip string) bool {
	_, err := inNS(ctx, vm.ns, "ping", "-c1", "-W1", "-q", ip)
	return err == nil
}

// waitReachable waits until the first VM of each host pings every other VM.
func (e *labEnv) waitReachable(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		bad := ""
		for _, a := range e.vms {
			for _, b := range e.vms {
				if a.host != b.host && bad == "" && !ping(ctx, a, b.ip) {
					bad = fmt.Sprintf("%s/%s cannot ping %s/%s (%s)", a.host, a.name, b.host, b.name, b.ip)
				}
			}
		}
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("lab %s: %s after %v", e.o.Topology.Name, bad, limit)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// setNormal puts every host's br-tun on NORMAL (one top-priority flow in
// table 0) or back on the compiled pipeline.
func (e *labEnv) setNormal(ctx context.Context, on bool) error {
	for _, h := range e.o.Topology.ManagedHosts() {
		inst := lab.HostInstance(e.o, h.Name)
		var err error
		if on {
			_, err = inst.Ofctl(ctx, "add-flow", topology.BridgeTun, fmt.Sprintf("cookie=%#x,table=0,priority=65535,actions=NORMAL", uint64(normalCookie)))
		} else {
			_, err = inst.Ofctl(ctx, "del-flows", topology.BridgeTun, fmt.Sprintf("cookie=%#x/-1", uint64(normalCookie)))
		}
		if err != nil {
			return fmt.Errorf("lab %s host %s: %w", e.o.Topology.Name, h.Name, err)
		}
	}
	return nil
}

// normalPackets is how many packets the NORMAL flow of the first VM's
// host has matched since it was added.
func (e *labEnv) normalPackets(ctx context.Context) (int, error) {
	inst := lab.HostInstance(e.o, e.vms[0].host)
	out, err := inst.Ofctl(ctx, "dump-flows", topology.BridgeTun, fmt.Sprintf("cookie=%#x/-1", uint64(normalCookie)))
	if err != nil {
		return 0, err
	}
	i := strings.Index(out, "n_packets=")
	if i < 0 {
		return 0, fmt.Errorf("no NORMAL flow in %q", out)
	}
	var n int
	_, err = fmt.Sscanf(out[i:], "n_packets=%d", &n)
	return n, err
}

// background is a process the benchmark started inside a lab namespace.
type background struct {
	cmd  *exec.Cmd
	done chan error
}

// startIn starts argv in namespace ns; ready, when given, is a string its
// standard error prints once it is ready (waited for up to 10 s).
func startIn(ns, ready string, argv ...string) (*background, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s in %s: %w", argv[0], ns, err)
	}
	bg := &background{cmd: cmd, done: make(chan error, 1)}
	seen := make(chan struct{})
	var tail strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if tail.Len() < 2000 {
				tail.WriteString(sc.Text() + "\n")
			}
			if !once && ready != "" && strings.Contains(sc.Text(), ready) {
				once = true
				close(seen)
			}
		}
		io.Copy(io.Discard, stderr)
		bg.done <- cmd.Wait()
	}()
	if ready == "" {
		return bg, nil
	}
	select {
	case <-seen:
		return bg, nil
	case err := <-bg.done:
		return nil, fmt.Errorf("%s in %s exited: %v", argv[0], ns, err)
	case <-time.After(10 * time.Second):
		bg.stop()
		return nil, fmt.Errorf("%s in %s not ready within 10 s", argv[0], ns)
	}
}

// stop ends the process (SIGTERM, then SIGKILL) and waits for it.
func (bg *background) stop() {
	bg.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-bg.done:
	case <-time.After(5 * time.Second):
		bg.cmd.Process.Kill()
		<-bg.done
	}
}

// iperf runs an iperf3 client from vm to server for seconds and returns
// the throughput the receiver saw, in Gbit/s.
func iperf(ctx context.Context, vm labVM, server string, seconds int) (float64, error) {
	out, err := inNS(ctx, vm.ns, "iperf3", "-c", server, "-t", fmt.Sprint(seconds), "-J")
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		if err == nil {
			err = jerr
		}
		return 0, fmt.Errorf("iperf3 from %s to %s: %w", vm.name, server, err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3 from %s to %s: %s", vm.name, server, r.Error)
	}
	if err != nil {
		return 0, err
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// benchDataplane is figure 6: VM-to-VM TCP throughput between two hosts
// through the compiled pipeline, in a learn-mode and a controller-mode lab,
// each against the same lab with br-tun on NORMAL, the four alternating.
func benchDataplane(ctx context.Context, b *bench, sec *Section) error {
	envs, err := upLabs(ctx, b,
		labSpec{Prefix + "dl", topology.ModeLearn, 2, 1},
		labSpec{Prefix + "dc", topology.ModeController, 2, 1})
	if err != nil {
		return err
	}
	defer downLabs(envs)
	var servers []*background
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	type config struct {
		env    *labEnv
		normal bool
		name   string
	}
	var configs []config
	for _, e := range envs {
		srv, err := startIn(e.vms[1].ns, "", "iperf3", "-s")
		if err != nil {
			return err
		}
		servers = append(servers, srv)
		configs = append(configs, config{e, false, string(e.mode)}, config{e, true, string(e.mode) + " on NORMAL"})
	}
	time.Sleep(500 * time.Millisecond) // let the servers listen
	var sides []side
	for _, c := range configs {
		warm := true
		sides = append(sides, func() (float64, error) {
			if err := c.env.setNormal(ctx, c.normal); err != nil {
				return 0, err
			}
			secs := b.iperfSeconds
			if warm { // the warm-up only has to fill caches and tables
				secs, warm = min(secs, 3), false
			}
			g, err := iperf(ctx, c.env.vms[0], c.env.vms[1].ip, secs)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", c.name, err)
			}
			if c.normal {
				// The NORMAL flow must have carried the run, or the two
				// sides measured the same thing.
				if n, err := c.env.normalPackets(ctx); err != nil || n < 1000 {
					return 0, fmt.Errorf("%s: the NORMAL flow of br-tun matched %d packets (%v): it did not carry the run", c.name, n, err)
				}
			}
			if err := c.env.setNormal(ctx, false); err != nil {
				return 0, err
			}
			progress("dataplane: %-22s %.2f Gbit/s", c.name, g)
			return g, nil
		})
	}
	progress("dataplane: %d runs of %d s of iperf3 in each of %d configurations", b.runs, b.iperfSeconds, len(configs))
	res, err := alternate(ctx, b.runs, sides...)
	if err != nil {
		return err
	}
	detail := map[string]any{}
	for i, c := range configs {
		detail[c.name] = res[i]
	}
	sec.Details["gbit_per_s"] = detail
	for i := 0; i+1 < len(configs); i += 2 {
		mode := configs[i].env.mode
		pipe, normal := median(res[i]), median(res[i+1])
		b.r.add(sec, "dataplane_ratio_"+string(mode), pipe/normal, "x", &Target{">=", 0.95},
			fmt.Sprintf("%s-mode pipeline %.2f Gbit/s / br-tun on NORMAL %.2f Gbit/s (medians)", mode, pipe, normal))
		// The two sides of a round ran back to back: their ratio shares
		// the machine's state of the moment.
		var paired []float64
		for r := range res[i] {
			paired = append(paired, res[i][r]/res[i+1][r])
		}
		b.r.add(sec, "dataplane_ratio_"+string(mode)+"_paired", median(paired), "x", nil, "median of the per-round ratios (each round's two runs back to back)")
		b.r.add(sec, "dataplane_gbps_"+string(mode), pipe, "Gbit/s", nil, fmt.Sprintf("iperf3 -t %d, VM to VM across two hosts", b.iperfSeconds))
		b.r.add(sec, "dataplane_gbps_normal_"+string(mode)+"_lab", normal, "Gbit/s", nil, "")
	}
	return nil
}

// benchFlooding is figure 7: the VXLAN frames on the underlay during an
// all-pairs ARP+ping round (every VM's ARP cache flushed first), after a
// warm-up round, in a learn-mode and a controller-mode lab, alternating.
func benchFlooding(ctx context.Context, b *bench, sec *Section) error {
	envs, err := upLabs(ctx, b,
		labSpec{Prefix + "fl", topology.ModeLearn, 3, 2},
		labSpec{Prefix + "fc", topology.ModeController, 3, 2})
	if err != nil {
		return err
	}
	defer downLabs(envs)
	counts := make([][]underlayCount, len(envs))
	var sides []side
	for i, e := range envs {
		sides = append(sides, func() (float64, error) {
			c, err := e.floodRound(ctx)
			if err != nil {
				return 0, err
			}
			counts[i] = append(counts[i], c)
			progress("flooding: %-10s ARP requests %d, replies %d, broadcast %d, VXLAN frames %d, failed pings %d",
				e.mode, c.ARPRequests, c.ARPReplies, c.Broadcast, c.Frames, c.FailedPings)
			return float64(c.ARPRequests), nil
		})
	}
	progress("flooding: %d all-pairs rounds in each lab", b.runs)
	res, err := alternate(ctx, b.runs, sides...)
	if err != nil {
		return err
	}
	for i, e := range envs {
		cs := counts[i][1:] // the first is the warm-up
		var frames, bcast, fails []float64
		for _, c := range cs {
			frames, bcast, fails = append(frames, float64(c.Frames)), append(bcast, float64(c.Broadcast)), append(fails, float64(c.FailedPings))
		}
		var tgt *Target
		if e.mode == topology.ModeController {
			tgt = &Target{"==", 0}
		}
		pairs := len(e.vms) * (len(e.vms) - 1)
		b.r.add(sec, "flood_arp_requests_"+string(e.mode), median(res[i]), "count", tgt,
			fmt.Sprintf("ARP requests inside VXLAN on the underlay, %d pings among %d VMs on 3 hosts", pairs, len(e.vms)))
		b.r.add(sec, "flood_underlay_frames_"+string(e.mode), median(frames), "count", nil, "every VXLAN frame the hosts sent during the round")
		b.r.add(sec, "flood_broadcast_frames_"+string(e.mode), median(bcast), "count", nil, "VXLAN frames carrying a broadcast or multicast frame")
		b.r.add(sec, "flood_failed_pings_"+string(e.mode), median(fails), "count", &Target{"==", 0}, "pings unanswered within 1 s")
		sec.Details[string(e.mode)] = cs
	}
	return nil
}

// underlayCount is what the hosts sent on the underlay during one round.
type underlayCount struct {
	Frames      int `json:"vxlan_frames"`
	ARPRequests int `json:"arp_requests"`
	ARPReplies  int `json:"arp_replies"`
	Broadcast   int `json:"broadcast"`
	FailedPings int `json:"failed_pings"`
}

// floodRound flushes every VM's ARP cache, captures what each host sends on
// the underlay while every VM pings every other once, and counts it.
func (e *labEnv) floodRound(ctx context.Context) (underlayCount, error) {
	var c underlayCount
	for _, vm := range e.vms {
		if _, err := inNS(ctx, vm.ns, "ip", "neigh", "flush", "all"); err != nil {
			return c, err
		}
	}
	ul := lab.UnderlayNS(e.o)
	out, err := inNS(ctx, ul, "ip", "-o", "link", "show", "master", lab.UnderlayBridge)
	if err != nil {
		return c, err
	}
	var ifs []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			ifs = append(ifs, name)
		}
	}
	if len(ifs) == 0 {
		return c, fmt.Errorf("no port on %s in %s", lab.UnderlayBridge, ul)
	}
	dir, err := os.MkdirTemp(filepath.Dir(e.o.Dir), "pcap-")
	if err != nil {
		return c, err
	}
	defer os.RemoveAll(dir)
	// One capture per host link, of what the host sends (-Q in on the
	// underlay's end): each frame counted once, where it entered.
	var caps []*background
	var files []string
	for _, ifc := range ifs {
		f := filepath.Join(dir, ifc+".pcap")
		bg, err := startIn(ul, "listening on", "tcpdump", "-Z", "root", "--immediate-mode", "-i", ifc, "-Q", "in", "-U", "-n", "-s", "128", "-w", f, "udp")
		if err != nil {
			for _, b := range caps {
				b.stop()
			}
			return c, err
		}
		caps, files = append(caps, bg), append(files, f)
	}
	for _, a := range e.vms {
		for _, b := range e.vms {
			if a != b && !ping(ctx, a, b.ip) {
				c.FailedPings++
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // the last replies' frames
	for _, b := range caps {
		b.stop()
	}
	for _, f := range files {
		n, err := countVXLAN(f)
		if err != nil {
			return c, err
		}
		c.Frames += n.Frames
		c.ARPRequests += n.ARPRequests
		c.ARPReplies += n.ARPReplies
		c.Broadcast += n.Broadcast
	}
	return c, nil
}
