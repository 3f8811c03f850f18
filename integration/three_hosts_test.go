package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// TestThreeHosts runs the seed's example (three hosts, one VM each, VNI 100,
// learn mode) through the lab. Subtests share the lab and run in order: the
// later ones rely on the traffic and state of the earlier ones.
func TestThreeHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	t.Parallel()
	l := upLab(t, "three-hosts")
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("VXLANOnUnderlay", func(t *testing.T) { checkVXLANOnUnderlay(t, l) })
	t.Run("LearnedEntries", func(t *testing.T) { checkLearned(t, l) })
	t.Run("FlowsMatchCompiledAndGolden", func(t *testing.T) { checkFlowsMatch(t, l) })
	t.Run("ReapplyChangesNothing", func(t *testing.T) { checkReapply(t, l) })
	t.Run("DryRunOfChangedFile", func(t *testing.T) { checkDryRunChanged(t, l) })
	t.Run("DiffFlowsAndRepair", func(t *testing.T) { checkDiffFlowsRepair(t, l) })
	t.Run("InvalidFileChangesNothing", func(t *testing.T) { checkInvalidFile(t, l) })
	t.Run("DestroyRemovesOnlyOwn", func(t *testing.T) { checkDestroy(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// tunnelOfport is the ofport of host's VXLAN port to remote VTEP ip.
func (l *labEnv) tunnelOfport(t testing.TB, host, ip string) string {
	t.Helper()
	out := l.vsctl(t, host, "--bare", "--columns=ofport", "find", "Interface", "type=vxlan", fmt.Sprintf(`options:remote_ip="%s"`, ip))
	if f := strings.Fields(out); len(f) != 1 || f[0] == "-1" || f[0] == "[]" {
		t.Fatalf("%s: no single VXLAN interface with a valid ofport to %s: %q", host, ip, out)
	}
	return out
}

// checkLearned checks, after the pings, that host1's table 20 holds a learned
// entry for every remote VM of its network, exactly as the seed's learn()
// writes it, and that `ovs-vxctl fdb` lists those MACs with their VTEP.
func checkLearned(t *testing.T, l *labEnv) {
	host := l.topo.Hosts[0]
	local := l.vms()[0]
	if local.host != host.Name {
		t.Fatalf("the first VM of %s is not on %s", l.topo.Name, host.Name)
	}
	tag := l.vsctl(t, host.Name, "get", "Port", local.port, "tag")
	var vlan int
	if _, err := fmt.Sscan(tag, &vlan); err != nil || vlan < 1 || vlan > 4094 {
		t.Fatalf("port %s on %s has no local VLAN tag: %q", local.port, host.Name, tag)
	}
	var vni uint32
	for _, n := range l.topo.Networks {
		if n.Name == local.network {
			vni = n.VNI
		}
	}
	table20 := map[string]bool{}
	for _, f := range l.dumpFlows(t, host.Name, "br-tun") {
		if strings.Contains(f, "table=20,") {
			table20[f] = true
		}
	}
	fdb := l.hostVx(host.Name, l.file, "fdb")
	if fdb.code != 0 {
		t.Errorf("fdb: %v", fdb)
	}
	checked := 0
	for _, remote := range l.vms() {
		if remote.host == host.Name || remote.network != local.network {
			continue
		}
		vtep := l.topo.Host(remote.host).VTEP.String()
		want := fmt.Sprintf("cookie=%#x, table=20, hard_timeout=%d, priority=1,dl_vlan=%d,dl_dst=%s "+
			"actions=load:0->NXM_OF_VLAN_TCI[],load:%#x->NXM_NX_TUN_ID[],output:%s",
			flows.CookieLearned|uint64(vni), host.LearnTimeout, vlan, remote.mac, vni, l.tunnelOfport(t, host.Name, vtep))
		if !table20[want] {
			var have []string
			for f := range table20 {
				have = append(have, f)
			}
			t.Errorf("%s br-tun table 20 lacks the learned entry for %s:\n want %s\n have:\n%s", host.Name, remote.name(), want, strings.Join(sorted(have), "\n"))
		} else {
			t.Logf("learned on %s: %s", host.Name, want)
		}
		found := false
		for _, line := range lines(fdb.stdout) {
			if strings.Contains(strings.ToLower(line), remote.mac) && regexp.MustCompile(`\b`+regexp.QuoteMeta(vtep)+`\b`).MatchString(line) &&
				strings.Contains(line, fmt.Sprint(vni)) {
				found = true
				t.Logf("fdb on %s: %s", host.Name, line)
			}
		}
		if !found {
			t.Errorf("`ovs-vxctl fdb` on %s has no line with MAC %s, VNI %d and VTEP %s:\n%s", host.Name, remote.mac, vni, vtep, fdb.stdout)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no remote VM in network %s", local.network)
	}
}

// checkDryRunChanged dry-runs a copy of the topology with one more network
// (ports on host1 and host2): it must print the would-be changes and change
// nothing.
func checkDryRunChanged(t *testing.T, l *labEnv) {
	changed := copyExample(t, l.example, t.TempDir(), "changed.yaml", func(s string) string {
		return s + `  - name: tenant-c
    vni: 300
    ports:
      - {host: host1, name: vm4, mac: "52:54:00:00:03:02", ip: 10.3.3.2/24}
      - {host: host2, name: vm5, mac: "52:54:00:00:03:03", ip: 10.3.3.3/24}
`
	})
	host := "host1"
	before := l.snapshot(t, host)
	r := l.hostVx(host, changed, "apply", "--dry-run")
	t.Logf("apply --dry-run of the changed file:\n%s", r.stdout)
	if r.code != 0 {
		t.Errorf("apply --dry-run of a changed file: %v", r)
	}
	if strings.Contains(r.stdout, "nothing to change") || !strings.Contains(r.stdout, "would change") {
		t.Errorf("apply --dry-run of a file with a new network should say what would change: %v", r)
	}
	if !strings.Contains(r.stdout, "vm4") {
		t.Errorf("apply --dry-run does not name the new port vm4: %v", r)
	}
	newFlood := regexp.MustCompile(`(?m)^br-tun: \+cookie=0x7678[0-9a-f]+, table=21, priority=1,dl_vlan=\d+ actions=pop_vlan,set_field:0x12c->tun_id,output:\d+$`)
	if !newFlood.MatchString(r.stdout) {
		t.Errorf("apply --dry-run does not show the new flood flow of VNI 300 (0x12c) as a br-tun addition: %v", r)
	}
	sameState(t, "apply --dry-run of a changed file", before, l.snapshot(t, host))
	if r := l.hostVx(host, l.file, "diff-flows"); r.code != 0 {
		t.Errorf("diff-flows after the dry run: %v", r)
	}
}

// checkDiffFlowsRepair changes host2's br-tun by hand (deletes one owned
// flow, modifies another), expects diff-flows to exit 2 with the matching
// -/+ lines and to change nothing, then apply to repair it.
func checkDiffFlowsRepair(t *testing.T, l *labEnv) {
	host := "host2"
	gold := l.golden(t, host, "br-tun")
	find := func(flowsList []string, re string) string {
		t.Helper()
		rx := regexp.MustCompile(re)
		for _, f := range flowsList {
			if rx.MatchString(f) {
				return f
			}
		}
		t.Fatalf("no flow matching %s in\n%s", re, strings.Join(flowsList, "\n"))
		return ""
	}
	deleted := find(gold, `, table=1, priority=0 actions=drop$`)
	modifiedGold := find(gold, `, table=20, priority=0 actions=goto_table:21$`)
	l.ofctl(t, host, "del-flows", "br-tun", "--strict", "table=1,priority=0")
	l.ofctl(t, host, "mod-flows", "br-tun", "--strict", "table=20,priority=0,actions=drop")
	handMade := l.dumpFlows(t, host, "br-tun")
	modified := find(handMade, `, table=20, priority=0 actions=drop$`)
	for _, f := range handMade {
		if f == deleted {
			t.Fatalf("ovs-ofctl --strict del-flows did not delete %s", deleted)
		}
	}
	r := l.hostVx(host, l.file, "diff-flows")
	t.Logf("diff-flows after the hand changes:\n%s", r.stdout)
	if r.code != 2 {
		t.Errorf("diff-flows on a hand-changed br-tun: want exit 2: %v", r)
	}
	out := lines(r.stdout)
	has := func(line string) bool {
		for _, o := range out {
			if o == line {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"+" + deleted, "-" + modified, "+" + modifiedGold} {
		if !has(want) {
			t.Errorf("diff-flows output lacks the line %q", want)
		}
	}
	if after := l.dumpFlows(t, host, "br-tun"); !equalLines(sorted(after), sorted(handMade)) {
		t.Errorf("diff-flows changed br-tun:\n%s", diffLines(sorted(handMade), sorted(after)))
	}
	r = l.hostVx(host, l.file, "apply")
	t.Logf("apply repairing the hand changes (%v wall):\n%s", r.took.Round(time.Millisecond), r.stdout)
	if r.code != 0 || strings.Contains(r.stdout, "nothing to change") {
		t.Errorf("apply on a hand-changed br-tun should repair it: %v", r)
	}
	if r := l.hostVx(host, l.file, "diff-flows"); r.code != 0 {
		t.Errorf("diff-flows after the repairing apply: %v", r)
	}
	if installed := sorted(withCookiePrefix(l.dumpFlows(t, host, "br-tun"), "0x7678")); !equalLines(installed, sorted(gold)) {
		t.Errorf("br-tun after repair (-) differs from golden (+):\n%s", diffLines(installed, sorted(gold)))
	}
}

// checkInvalidFile runs apply, validate, flows and diff-flows with a file
// that has a duplicate VNI and an unknown field: each exits 1 naming both
// problems by YAML path, and the host is unchanged.
func checkInvalidFile(t *testing.T, l *labEnv) {
	bad := copyExample(t, l.example, t.TempDir(), "invalid.yaml", func(s string) string {
		s = strings.Replace(s, "    vtep: 192.168.50.1\n", "    vtep: 192.168.50.1\n    colour: blue\n", 1)
		return s + `  - name: tenant-b
    vni: 100
    ports:
      - {host: host2, name: vm5, ip: 10.2.2.3/24}
`
	})
	wantPaths := []string{"hosts[0].colour", "networks[1].vni"}
	host := "host1"
	before := l.snapshot(t, host)
	for _, verb := range [][]string{{"apply"}, {"apply", "--dry-run"}, {"flows"}, {"diff-flows"}, {"destroy"}} {
		r := l.hostVx(host, bad, verb...)
		if r.code != 1 {
			t.Errorf("%s with an invalid file: want exit 1: %v", verb, r)
		}
		for _, p := range wantPaths {
			if !strings.Contains(r.stderr, p) {
				t.Errorf("%s with an invalid file: stderr does not name %s: %v", verb, p, r)
			}
		}
	}
	r := l.vx("validate", "-f", bad)
	t.Logf("validate of the invalid file, stderr:\n%s", r.stderr)
	if r.code != 1 {
		t.Errorf("validate of an invalid file: want exit 1: %v", r)
	}
	for _, p := range wantPaths {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("validate: stderr does not name %s: %v", p, r)
		}
	}
	if r := l.vx("validate", "-f", l.file); r.code != 0 {
		t.Errorf("validate of the example: %v", r)
	}
	sameState(t, "commands with an invalid file", before, l.snapshot(t, host))
}

// checkDestroy adds a foreign bridge, port and flow to host1, destroys, and
// checks that only what apply created went; then applies again and pings.
func checkDestroy(t *testing.T, l *labEnv) {
	host := "host1"
	const foreignFlow = "cookie=0x1, priority=100,ip,nw_dst=10.99.99.99 actions=drop"
	l.vsctl(t, host, "add-br", "br-foreign", "--", "set", "Bridge", "br-foreign", "datapath_type=netdev",
		"--", "add-port", "br-foreign", "fp0", "--", "set", "Interface", "fp0", "type=internal")
	t.Cleanup(func() {
		run("ovs-vsctl", "--db="+l.inst(host).DBEndpoint(), "--timeout=10", "--if-exists", "del-br", "br-foreign")
	})
	l.ofctl(t, host, "add-flow", "br-foreign", foreignFlow)
	routesBefore := lines(l.mustExec(t, host, "ip", "-o", "route", "show", "table", "all").stdout)
	phyPortsBefore := l.vsctl(t, host, "list-ports", "br-phy")

	r := l.hostVx(host, l.file, "destroy")
	t.Logf("destroy (%v wall):\n%s", r.took.Round(time.Millisecond), r.stdout)
	if r.code != 0 {
		t.Fatalf("destroy: %v", r)
	}
	if brs := sorted(strings.Fields(l.vsctl(t, host, "list-br"))); !equalLines(brs, []string{"br-foreign", "br-phy"}) {
		t.Errorf("bridges after destroy: %v, want [br-foreign br-phy]", brs)
	}
	if ports := l.vsctl(t, host, "list-ports", "br-foreign"); ports != "fp0" {
		t.Errorf("ports of br-foreign after destroy: %q, want fp0", ports)
	}
	if ports := l.vsctl(t, host, "list-ports", "br-phy"); ports != phyPortsBefore {
		t.Errorf("ports of br-phy after destroy: %q, before %q", ports, phyPortsBefore)
	}
	if fl := lines(l.ofctl(t, host, "dump-flows", "br-foreign", "--no-stats")); len(fl) == 0 || !strings.Contains(strings.Join(fl, "\n"), foreignFlow) {
		t.Errorf("br-foreign lost its flow %q: %v", foreignFlow, fl)
	}
	dump := mustRun(t, "ovsdb-client", "-f", "json", "dump", l.inst(host).DBEndpoint(), "Open_vSwitch")
	for _, row := range parseDump(t, dump.stdout) {
		if strings.Contains(strings.ReplaceAll(row, `"ovs-vxctl-lab"`, ""), `"ovs-vxctl-`) {
			t.Errorf("an OVSDB row marked by ovs-vxctl survived destroy: %s", row)
		}
	}
	links := l.mustExec(t, host, "ip", "-o", "link", "show").stdout
	for _, dev := range []string{"br-int", "br-tun"} {
		if regexp.MustCompile(`(?m)^\d+: ` + dev + `[:@]`).MatchString(links) {
			t.Errorf("%s still exists in %s's namespace after destroy", dev, host)
		}
	}
	routesAfter := lines(l.mustExec(t, host, "ip", "-o", "route", "show", "table", "all").stdout)
	was := map[string]bool{}
	for _, rt := range routesBefore {
		was[rt] = true
	}
	for _, rt := range routesAfter {
		if !was[rt] {
			t.Errorf("route added by destroy: %s", rt)
		}
	}
	for _, rt := range routesBefore {
		if strings.Contains(rt, " dev br-phy") && !strings.Contains(strings.Join(routesAfter, "\n"), rt) {
			t.Errorf("underlay route removed by destroy: %s", rt)
		}
	}

	r = l.hostVx(host, l.file, "apply")
	t.Logf("apply after destroy (%v wall):\n%s", r.took.Round(time.Millisecond), r.stdout)
	if r.code != 0 {
		t.Fatalf("apply after destroy: %v", r)
	}
	if r := l.hostVx(host, l.file, "diff-flows"); r.code != 0 {
		t.Errorf("diff-flows after the re-apply: %v", r)
	}
	if installed, gold := sorted(withCookiePrefix(l.dumpFlows(t, host, "br-tun"), "0x7678")), sorted(l.golden(t, host, "br-tun")); !equalLines(installed, gold) {
		t.Errorf("br-tun after destroy+apply (-) differs from golden (+):\n%s", diffLines(installed, gold))
	}
	local := l.vms()[0]
	for _, remote := range l.vms()[1:] {
		l.warmUp(t, local, remote.ip, 15*time.Second)
		l.ping(t, local, remote.ip, "(after destroy + apply)")
		l.warmUp(t, remote, local.ip, 15*time.Second)
		l.ping(t, remote, local.ip, "(after destroy + apply)")
	}
	if fl := l.ofctl(t, host, "dump-flows", "br-foreign", "--no-stats"); !strings.Contains(fl, foreignFlow) {
		t.Errorf("br-foreign lost its flow after the re-apply: %s", fl)
	}
}
