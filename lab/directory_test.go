package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
)

func TestDirectoryMembersRaftPortsAvoidEveryEndpoint(t *testing.T) {
	top := controllerTopo(t, "tcp:192.168.50.254:6653", "tcp:192.168.50.241:6642")
	// Consecutive client ports on one address: Raft must skip them all,
	// and a controller's port too.
	top.Directory = []string{"tcp:192.168.50.241:6641", "tcp:192.168.50.241:6643", "tcp:192.168.50.242:6641"}
	ms, err := directoryMembers(top)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.168.50.241:6644", "192.168.50.241:6645", "192.168.50.242:6642"}
	for i, m := range ms {
		if m.name != MemberName(i) || m.remote != top.Directory[i] || m.raft.String() != want[i] {
			t.Errorf("member %d = %+v, want raft %s", i, m, want[i])
		}
	}
	if ips := directoryIPs(top); len(ips) != 2 {
		t.Errorf("directory IPs = %v", ips)
	}
	// Every host routes to the directory's addresses, as to controllers'.
	p, err := newPlan(Options{Topology: top, SkipApply: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Join(p.vtepLines(p.hosts[0], "eth0"), "\n")
	for _, ip := range []string{"192.168.50.241", "192.168.50.242", "192.168.50.254"} {
		if !strings.Contains(lines, "route add "+ip+"/32 dev eth0") {
			t.Errorf("no route to %s in:\n%s", ip, lines)
		}
	}
	// With a directory even a single controller is a named replica.
	for i, c := range p.ctrls {
		if c.name != ReplicaName(i) || c.log != ReplicaLog(c.name) {
			t.Errorf("controller %d = %+v", i, c)
		}
	}
}

func TestDirectoryMembersRefuseSSL(t *testing.T) {
	top := controllerTopo(t, "tcp:192.168.50.254:6653")
	top.Directory = []string{"tcp:192.168.50.241:6641", "ssl:192.168.50.242:6641"}
	_, err := directoryMembers(top)
	if err == nil || !strings.Contains(err.Error(), "directory[1]") || !strings.Contains(err.Error(), "tcp:") {
		t.Fatalf("err = %v, want directory[1] refused", err)
	}
	// Up refuses before building anything.
	_, err = Up(context.Background(), Options{Topology: top, SkipApply: true, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "directory[1]") {
		t.Fatalf("Up: %v", err)
	}
}

func TestRaftAddrRunsOut(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:65535")
	used := map[netip.AddrPort]bool{a: true, netip.MustParseAddrPort("10.0.0.1:65534"): true}
	got, err := raftAddr(a, used)
	if err != nil || got.Port() != 65533 {
		t.Fatalf("raftAddr = %v, %v; want port 65533", got, err)
	}
}

func TestDirectoryMemberStatusString(t *testing.T) {
	d := DirectoryMemberStatus{Name: "d1", Endpoint: "tcp:1.2.3.4:6641", Raft: "tcp:1.2.3.4:6642"}
	if s := d.String(); !strings.Contains(s, "not running") {
		t.Errorf("%q", s)
	}
	d.Running, d.PID, d.Status, d.Role, d.Term = true, 7, "cluster member", "leader", "3"
	if s := d.String(); !strings.Contains(s, "pid 7, cluster member, leader, term 3") {
		t.Errorf("%q", s)
	}
	st := &StatusReport{Underlay: true, Directory: []DirectoryMemberStatus{d, {Name: "d2"}}}
	if st.Complete() {
		t.Error("complete with a member down")
	}
	if st.Empty() {
		t.Error("empty with a member up")
	}
}

// TestDirectoryClusterElectsAndSurvivesMemberKill runs the lab's directory
// (three real ovsdb-server members made with ovsdb-tool only, as Up does,
// here on loopback addresses instead of the underlay): it elects a leader,
// a write through the leader is seen by all, and after the leader is
// killed the other two elect a new one and still take writes; stopDirectory
// then leaves no server, even a SIGSTOPped one.
func TestDirectoryClusterElectsAndSurvivesMemberKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ovsdb-server processes")
	}
	for _, tool := range []string{"ovsdb-tool", "ovsdb-server", "ovs-appctl", "ovsdb-client"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "vxdir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopDirectory(dir); os.RemoveAll(dir) })
	top := controllerTopo(t, "tcp:127.0.0.1:1")
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 31+i)
		top.Directory = append(top.Directory, fmt.Sprintf("tcp:%s:%d", ip, freeTCPPort(t, ip)))
	}
	ms, err := directoryMembers(top)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{o: Options{Topology: top}, dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := p.startDirectory(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("3-member cluster up with a leader in %v", time.Since(start).Round(time.Millisecond))
	leader := func() (int, bool) {
		for i, ds := range directoryStatus(ctx, top, dir) {
			if ds.Running && ds.Role == "leader" && ds.Status == "cluster member" {
				return i, true
			}
		}
		return 0, false
	}
	l0, ok := leader()
	if !ok {
		t.Fatalf("no leader: %v", directoryStatus(ctx, top, dir))
	}
	transact(t, top.Directory, 0)

	cm := ms[l0].member(dir, "")
	pid, _ := cm.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var l1 int
	for {
		if i, ok := leader(); ok && i != l0 {
			l1 = i
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("no new leader 10s after killing %s: %v", ms[l0].name, directoryStatus(ctx, top, dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("leader %s killed: %s leads %v later", ms[l0].name, ms[l1].name, time.Since(killed).Round(time.Millisecond))
	transact(t, top.Directory, 1)

	// A SIGSTOPped member must not keep stopDirectory from ending it.
	other := 3 - l0 - l1
	opid, _ := ms[other].member(dir, "").Pid()
	syscall.Kill(opid, syscall.SIGSTOP)
	if err := stopDirectory(dir); err != nil {
		t.Fatal(err)
	}
	if left := labDaemons(dir); len(left) > 0 {
		t.Fatalf("servers left after stopDirectory: %v", left)
	}
}

// transact inserts a Replica row named by n through any member (ovsdb-client
// finds the leader) and reads it back from every live member's endpoint.
func transact(t *testing.T, endpoints []string, n int) {
	t.Helper()
	name := fmt.Sprintf("test%d", n)
	tx := fmt.Sprintf(`["%s",{"op":"insert","table":"Replica","row":{"name":"%s"}}]`, directory.DatabaseName, name)
	var last string
	for _, ep := range endpoints {
		out, err := exec.Command("ovsdb-client", "--timeout=5", "transact", ep, tx).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "error") {
			last = ""
			break
		}
		last = fmt.Sprintf("%s: %v: %s", ep, err, out)
	}
	if last != "" {
		t.Fatalf("no member took the write: %s", last)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, ep := range endpoints {
		for {
			out, err := exec.Command("ovsdb-client", "--timeout=2", "--no-leader-only", "dump", ep, directory.DatabaseName, "Replica").CombinedOutput()
			if err == nil && strings.Contains(string(out), name) {
				break
			}
			if err != nil && (strings.Contains(string(out), "refused") || strings.Contains(string(out), "timed out")) {
				break // the killed member
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not show replica %s: %v: %s", ep, name, err, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func freeTCPPort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
