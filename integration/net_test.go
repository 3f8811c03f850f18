package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vm is one VM port of a lab: where it runs and what it is.
type vm struct {
	host, port, network string
	ip                  string // address without prefix
	mac                 string // lower case
}

func (v vm) name() string { return v.host + "/" + v.port }

// vms lists the VM ports of the lab's topology, in file order.
func (l *labEnv) vms() []vm {
	var out []vm
	for _, n := range l.topo.Networks {
		for _, p := range n.Ports {
			if p.Type != "" && p.Type != "vm" {
				continue
			}
			v := vm{host: p.Host.Name, port: p.Name, network: n.Name, mac: strings.ToLower(p.MAC.String())}
			if p.IP.IsValid() {
				v.ip = p.IP.Addr().String()
			}
			out = append(out, v)
		}
	}
	return out
}

// vmByPort finds the VM of the given port name.
func (l *labEnv) vmByPort(t testing.TB, port string) vm {
	t.Helper()
	for _, v := range l.vms() {
		if v.port == port {
			return v
		}
	}
	t.Fatalf("topology %s has no VM port %s", l.topo.Name, port)
	return vm{}
}

var (
	pingStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingRTTRE   = regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms`)
)

// pingStats is what one ping run measured.
type pingStats struct {
	sent, received int
	rtt            string // "min/avg/max/mdev ms", "" when nothing came back
}

func parsePing(out string) pingStats {
	var s pingStats
	if m := pingStatsRE.FindStringSubmatch(out); m != nil {
		fmt.Sscan(m[1], &s.sent)
		fmt.Sscan(m[2], &s.received)
	}
	if m := pingRTTRE.FindStringSubmatch(out); m != nil {
		s.rtt = fmt.Sprintf("%s/%s/%s/%s ms", m[1], m[2], m[3], m[4])
	}
	return s
}

// warmUp pings from src to ip once a second until a reply comes back or the
// deadline passes (the first packets may be lost while ARP and learning
// settle); it fails the test on the deadline.
func (l *labEnv) warmUp(t testing.TB, src vm, ip string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last result
	for time.Now().Before(deadline) {
		last = l.exec(src.name(), "ping", "-n", "-c", "1", "-W", "1", ip)
		if last.code == 0 {
			return
		}
	}
	t.Fatalf("%s cannot reach %s within %v: %v", src.name(), ip, within, last)
}

// ping sends 3 pings from src to dst's address and requires every one to be
// answered; it logs the RTTs. A run that loses packets is repeated once (and
// the loss logged): on a loaded 2-core machine the userspace datapath can
// miss a 2 s deadline, while a broken path loses every packet twice.
func (l *labEnv) ping(t testing.TB, src vm, dstIP, what string) pingStats {
	t.Helper()
	var r result
	var s pingStats
	for attempt := 1; attempt <= 2; attempt++ {
		r = l.exec(src.name(), "ping", "-n", "-c", "3", "-W", "2", "-i", "0.2", dstIP)
		s = parsePing(r.stdout)
		if r.code == 0 && s.sent == 3 && s.received == 3 {
			t.Logf("ping %-9s -> %-9s %s: 3/3, rtt min/avg/max/mdev %s", src.name(), dstIP, what, s.rtt)
			return s
		}
		if attempt == 1 {
			t.Logf("ping %s -> %s %s: %d/%d answered, trying once more", src.name(), dstIP, what, s.received, s.sent)
		}
	}
	t.Errorf("ping %s -> %s %s: %d/%d answered (twice lossy): %v", src.name(), dstIP, what, s.received, s.sent, r)
	return s
}

// capture is a bounded tcpdump running in a namespace, writing a pcap file.
type capture struct {
	file   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan error
	stderr strings.Builder
}

// startCapture starts tcpdump on dev inside namespace ns with filter,
// stopping by itself after maxPackets packets or timeout, and returns once
// tcpdump is listening. The capture is stopped in cleanup in any case.
func startCapture(t testing.TB, ns, dev, filter string, maxPackets int, timeout time.Duration) *capture {
	t.Helper()
	c := &capture{file: filepath.Join(t.TempDir(), "capture.pcap"), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	c.cancel = cancel
	argv := []string{"netns", "exec", ns, "tcpdump", "-i", dev, "-nn", "--immediate-mode", "-U", "-c", fmt.Sprint(maxPackets), "-w", c.file}
	argv = append(argv, strings.Fields(filter)...)
	// --immediate-mode and -U write each packet as it comes: otherwise
	// libpcap hands packets over in blocks and those pending when tcpdump
	// is stopped are lost. `ip netns exec` execs tcpdump in its place: the
	// pid is tcpdump's.
	c.cmd = exec.CommandContext(ctx, "ip", argv...)
	c.cmd.Cancel = func() error { return c.cmd.Process.Signal(syscall.SIGINT) }
	c.cmd.WaitDelay = 5 * time.Second
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting tcpdump in %s: %v", ns, err)
	}
	// tcpdump says "listening on DEV" on stderr once the capture is live.
	listening := make(chan bool, 1)
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !said && strings.Contains(sc.Text(), "listening on") {
				said = true
				listening <- true
			}
		}
		if !said {
			listening <- false
		}
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() { c.stop() })
	select {
	case ok := <-listening:
		if !ok {
			c.stop()
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("tcpdump on %s in %s exited without capturing: %s", dev, ns, c.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump on %s in %s did not start listening within 10s", dev, ns)
	}
	return c
}

// stop ends the capture (SIGINT, so tcpdump flushes the file) and waits
// for it; it is safe to call twice.
func (c *capture) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
	}
}

// decode stops the capture and returns tshark's fields of every packet, one
// []string per packet (fields in the order asked; multiple occurrences of a
// field joined by ",").
func (c *capture) decode(t testing.TB, fields ...string) [][]string {
	t.Helper()
	c.stop()
	if _, err := os.Stat(c.file); err != nil {
		t.Fatalf("capture file: %v (tcpdump: %s)", err, c.stderr.String())
	}
	argv := []string{"tshark", "-n", "-r", c.file, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, p := range vxlanPorts {
		argv = append(argv, "-d", "udp.port=="+p+",vxlan")
	}
	for _, f := range fields {
		argv = append(argv, "-e", f)
	}
	r := mustRun(t, argv...)
	var out [][]string
	for _, line := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		for len(f) < len(fields) {
			f = append(f, "")
		}
		out = append(out, f)
	}
	return out
}

// vxlanPorts are the UDP ports tshark must decode as VXLAN: it knows 4789
// only, and the seeds' Linux VTEPs use 8472.
var vxlanPorts = []string{"4789", "8472"}
