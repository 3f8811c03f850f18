package integration

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// TestControllerAndVswitchdRestartTogether: the controller and one host's
// ovs-vswitchd go down together, so the host's br-tun comes back with no
// flow at all, apply's advertisement of its local VLANs included, to a
// controller that has just started. With --state-file the controller
// rebuilds the advertisement and programs the host within seconds, no
// apply needed; without, it warns once, counts the switch as not ready and
// waits for apply.
//
// host2's VLANs are not what a fresh allocation gives (tenant-b, VNI 50,
// joins after tenant-a, VNI 100, so VNI 100 keeps VLAN 1 and VNI 50 gets 2,
// where Allocate from nothing would give VNI 50 VLAN 1): a controller that
// guessed would swap the tenants.
func TestControllerAndVswitchdRestartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	const host = "host2"
	dir := filepath.Join(workDir, ctlExample+"-restart")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rename := func(s string) string {
		return strings.Replace(s, "\nname: "+namePrefix+"three-hosts-ctl\n", "\nname: "+namePrefix+"ctl-restart\n", 1)
	}
	file := copyExample(t, ctlExample, dir, "topology.yaml", rename)
	l := startLab(t, ctlExample, file)
	ul := lab.UnderlayNS(l.opts)

	// tenant-b joins host2 later: host2 keeps VLAN 1 for VNI 100.
	copyExample(t, ctlExample, dir, "topology.yaml", func(s string) string {
		return rename(s) + "  - name: tenant-b\n    vni: 50\n    ports:\n      - {host: host2, name: gw50, type: internal}\n"
	})
	if r := l.hostVx(host, file, "apply"); r.code != 0 {
		t.Fatalf("%s: apply with tenant-b: %v", host, r)
	}
	wantVLANs := map[uint32]uint16{100: uint16(l.portTag(t, host, "vm2")), 50: uint16(l.portTag(t, host, "gw50"))}
	if wantVLANs[100] != 1 || wantVLANs[50] != 2 {
		t.Fatalf("%s's local VLANs %v: want VNI 100 on 1 and VNI 50 on 2 (the test's premise)", host, wantVLANs)
	}

	// Our controller replaces the lab's: the same, with a state file.
	state := filepath.Join(dir, "controller-state.json")
	os.Remove(state)
	killControllers(t, ul)
	ctl := startControllerIn(t, t, ul, file, l.topo.Controller, l.controllerLog(), "--metrics-listen", metricsAddr, "--state-file", state)
	waitReconciled(t, l, ul, 30*time.Second)
	eventually(t, 10*time.Second, "host2's VLANs in the state file", func() bool { return maps.Equal(stateVLANs(t, state, host), wantVLANs) })
	// What must come back: the compiled pipeline and the advertisement.
	// (The controller's entries come back too, but a MAC that only host2
	// reported, like gw50's, only once it speaks again.)
	before := pipeline(l.tunFlows(t, host))
	for _, adv := range []string{"tun_id=0x64,dl_vlan=1 ", "tun_id=0x32,dl_vlan=2 "} {
		if !slices.ContainsFunc(before, func(f string) bool { return strings.Contains(f, adv) }) {
			t.Fatalf("%s advertises no %q: %q", host, adv, withCookiePrefix(before, "0x767b"))
		}
	}
	vm2 := l.vmByPort(t, "vm2")
	others := func() []vm {
		var out []vm
		for _, v := range l.vms() {
			if v.host != host {
				out = append(out, v)
			}
		}
		return out
	}()
	for _, o := range others {
		l.warmUp(t, vm2, o.ip, 15*time.Second)
	}

	t.Run("with state file: healed without apply", func(st *testing.T) {
		restartTogether(st, l, host, ctl)
		started := time.Now()
		ctl = startControllerIn(st, t, ul, file, l.topo.Controller, l.controllerLog(), "--metrics-listen", metricsAddr, "--state-file", state)
		listening := time.Now()
		var after []string
		eventually(st, 30*time.Second, host+"'s br-tun pipeline back", func() bool {
			after = l.tunFlows(st, host)
			return equalLines(pipeline(after), before)
		})
		healed := time.Now()
		for _, o := range others {
			l.warmUp(st, vm2, o.ip, 15*time.Second)
		}
		pinged := time.Now()
		for _, o := range others {
			l.ping(st, vm2, o.ip, "(after the restart together)")
			l.ping(st, o, vm2.ip, "(after the restart together)")
		}
		st.Logf("restart together, time to heal: controller listening %v after its start; %s's br-tun back (%d flows) %v after that, pings through %v after it",
			listening.Sub(started).Round(time.Millisecond), host, len(after), healed.Sub(listening).Round(time.Millisecond),
			pinged.Sub(listening).Round(time.Millisecond))
		m, err := fetchMetrics(ul, metricsAddr)
		if err != nil {
			st.Fatal(err)
		}
		if rebuilt := logLines(st, l.controllerLog(), "rebuilt the allocation advertisement", host); len(rebuilt) > 0 {
			st.Logf("controller: %s", rebuilt[len(rebuilt)-1])
		}
		if v := m[`ovs_vxctl_controller_allocations_rebuilt_total{source="state-file"}`]; v != 1 {
			st.Errorf("allocations_rebuilt_total{source=state-file} = %v, want 1", v)
		}
		if v := m[`ovs_vxctl_controller_switches_not_ready`]; v != 0 {
			st.Errorf("switches_not_ready = %v, want 0", v)
		}
	})

	t.Run("without state file: one warning, a metric, healed by apply", func(st *testing.T) {
		restartTogether(st, l, host, ctl)
		warnedBefore := len(logLines(st, l.controllerLog(), "switch not ready", host))
		ctl = startControllerIn(st, t, ul, file, l.topo.Controller, l.controllerLog(), "--metrics-listen", metricsAddr)
		eventually(st, 20*time.Second, host+" counted as not ready", func() bool {
			m, err := fetchMetrics(ul, metricsAddr)
			return err == nil && m[`ovs_vxctl_controller_switches_not_ready`] == 1
		})
		time.Sleep(3 * time.Second) // a few retries
		if got := l.tunFlows(st, host); len(got) != 0 {
			st.Errorf("%s's br-tun got flows from a controller with no record of its VLANs: %q", host, got)
		}
		warned := logLines(st, l.controllerLog(), "switch not ready", host)[warnedBefore:]
		if len(warned) != 1 || !strings.Contains(warned[0], "no record") {
			st.Errorf("want one warning that %s is not ready, saying why; got %q", host, warned)
		} else {
			st.Logf("controller: %s", warned[0])
		}
		applied := time.Now()
		if r := l.hostVx(host, file, "apply"); r.code != 0 {
			st.Fatalf("%s: apply: %v", host, r)
		}
		eventually(st, 30*time.Second, host+"'s br-tun pipeline back after apply", func() bool {
			return equalLines(pipeline(l.tunFlows(st, host)), before)
		})
		st.Logf("without a state file, %s was programmed %v after apply started", host, time.Since(applied).Round(time.Millisecond))
		m, err := fetchMetrics(ul, metricsAddr)
		if err != nil {
			st.Fatal(err)
		}
		if v := m[`ovs_vxctl_controller_switches_not_ready`]; v != 0 {
			st.Errorf("switches_not_ready = %v after apply, want 0", v)
		}
		l.warmUp(st, vm2, others[0].ip, 15*time.Second)
	})
}

// restartTogether kills the controller ctl (as a crash) and host's
// ovs-vswitchd together, starts ovs-vswitchd again and checks that its
// br-tun came back empty.
func restartTogether(t *testing.T, l *labEnv, host string, ctl *ctlProc) {
	t.Helper()
	ctl.cmd.Process.Signal(syscall.SIGKILL)
	inst := l.inst(host)
	if err := inst.StopVswitchd(); err != nil {
		t.Fatalf("stopping ovs-vswitchd on %s: %v", host, err)
	}
	<-ctl.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := inst.StartVswitchd(ctx); err != nil {
		t.Fatalf("starting ovs-vswitchd on %s: %v", host, err)
	}
	if got := l.tunFlows(t, host); len(got) != 0 {
		t.Fatalf("%s's br-tun holds flows right after ovs-vswitchd restarted: %q", host, got)
	}
}

// pipeline keeps the compiled flows and the advertisement of a br-tun dump.
func pipeline(fl []string) []string {
	return sorted(append(withCookiePrefix(fl, "0x7678"), withCookiePrefix(fl, "0x767b")...))
}

// killControllers SIGKILLs every controller in namespace ns and waits for
// them to be gone.
func killControllers(t *testing.T, ns string) {
	t.Helper()
	for _, pid := range controllerPids(t, ns) {
		syscall.Kill(pid, syscall.SIGKILL)
		waitGone(t, pid, 5*time.Second)
	}
}

// waitReconciled waits until every switch is connected and the controller
// serving metrics in ns reconciled every br-tun and br-int.
func waitReconciled(t *testing.T, l *labEnv, ns string, within time.Duration) {
	t.Helper()
	n := float64(len(l.managedHosts()))
	eventually(t, within, "every switch reconciled", func() bool {
		m, err := fetchMetrics(ns, metricsAddr)
		return err == nil && l.allConnected(t) &&
			m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-tun"}`] >= n &&
			m[`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-int"}`] >= n
	})
}

// tunFlows are host's br-tun flows but learned ones, sorted; nil when the
// bridge cannot be read (ovs-vswitchd down).
func (l *labEnv) tunFlows(t testing.TB, host string) []string {
	t.Helper()
	r := run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "unix:"+l.inst(host).MgmtSocket("br-tun"), "--no-stats")
	if r.code != 0 {
		return nil
	}
	return sorted(withoutCookiePrefix(lines(r.stdout), "0x7679"))
}

// stateVLANs reads host's local VLANs from the controller's state file
// (nil when it has none yet).
func stateVLANs(t testing.TB, path, host string) map[uint32]uint16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var st struct {
		Hosts map[string]struct {
			LocalVLANs map[uint32]uint16 `json:"local_vlans"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("controller state %s: %v", path, err)
	}
	return st.Hosts[host].LocalVLANs
}

// eventually polls cond every 20 ms until it holds (returning how long
// that took) or within passes (failing the test).
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
