package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The directory of a lab: one ovsdb-server per `directory:` endpoint of the
// topology, members of one Raft cluster of the directory's schema, running
// in the underlay namespace on the endpoint's address (put on the underlay
// bridge as the controllers' are, so the controllers there and every host
// namespace reach it).

// DirectoryDir is the subdirectory of the lab's state directory holding one
// directory per member (named by MemberName). The '.' keeps Down from
// taking it for a host's OVS: host names cannot contain one.
const DirectoryDir = "directory.d"

// directorySchemaFile is the schema the cluster is created from, as
// `ovs-vxctl directory schema` prints it, in DirectoryDir.
const directorySchemaFile = "directory.ovsschema"

// directoryLeaderWait bounds how long Up waits for every member to join and
// the cluster to elect a leader.
const directoryLeaderWait = 30 * time.Second

// MemberName is the name of the directory member of the topology's i-th
// directory endpoint (0-based): its subdirectory in DirectoryDir.
func MemberName(i int) string { return fmt.Sprintf("d%d", i+1) }

// dirMember is one member of the lab's directory cluster.
type dirMember struct {
	name   string // MemberName
	remote string // the topology's endpoint: where clients connect
	addr   netip.AddrPort
	raft   netip.AddrPort // where the members talk Raft: same address, a port no endpoint uses
}

// directoryMembers returns the members of the topology's directory, none
// when it has none. The lab serves tcp: only (an ssl: cluster needs
// certificates the lab does not make).
func directoryMembers(t *topology.Topology) ([]dirMember, error) {
	used := map[netip.AddrPort]bool{}
	var out []dirMember
	for i, ep := range t.Directory {
		proto, hostport, _ := strings.Cut(ep, ":")
		if proto != "tcp" {
			return nil, fmt.Errorf("directory[%d] %q: the lab runs its directory members on tcp: endpoints only", i, ep)
		}
		ap, err := netip.ParseAddrPort(hostport)
		if err != nil {
			return nil, fmt.Errorf("directory[%d] %q: %w", i, ep, err)
		}
		out = append(out, dirMember{name: MemberName(i), remote: ep, addr: ap})
		used[ap] = true
	}
	for _, c := range t.ControllerTargets() {
		if _, hostport, ok := strings.Cut(c, ":"); ok {
			if ap, err := netip.ParseAddrPort(hostport); err == nil {
				used[ap] = true
			}
		}
	}
	for i := range out {
		raft, err := raftAddr(out[i].addr, used)
		if err != nil {
			return nil, fmt.Errorf("directory[%d] %q: %w", i, out[i].remote, err)
		}
		used[raft] = true
		out[i].raft = raft
	}
	return out, nil
}

// raftAddr is the first address after client on the same IP, counting
// ports up (then down), that nothing in used takes.
func raftAddr(client netip.AddrPort, used map[netip.AddrPort]bool) (netip.AddrPort, error) {
	for p := int(client.Port()) + 1; p <= 65535; p++ {
		if ap := netip.AddrPortFrom(client.Addr(), uint16(p)); !used[ap] {
			return ap, nil
		}
	}
	for p := int(client.Port()) - 1; p > 0; p-- {
		if ap := netip.AddrPortFrom(client.Addr(), uint16(p)); !used[ap] {
			return ap, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("no free port on %s for Raft", client.Addr())
}

// directoryIPs are the distinct addresses of the topology's directory
// members.
func directoryIPs(t *topology.Topology) []netip.Addr {
	ms, _ := directoryMembers(t)
	var out []netip.Addr
	for _, m := range ms {
		if a := m.addr.Addr().Unmap(); !containsAddr(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// member is the ovsrun view of m in the lab of state directory dir.
func (m dirMember) member(dir, ns string) *ovsrun.ClusterMember {
	return &ovsrun.ClusterMember{Dir: filepath.Join(dir, DirectoryDir, m.name), NetNS: ns,
		Remote: m.remote, Raft: "tcp:" + m.raft.String()}
}

// startDirectory creates the directory cluster with ovsdb-tool (the first
// member creates it from the directory's schema, the others join through
// it), starts every member in the underlay namespace and waits until all
// have joined and one leads. The members' addresses must already be on the
// underlay bridge (controllerRoutes).
func (p *plan) startDirectory(ctx context.Context) error {
	ms, err := directoryMembers(p.o.Topology)
	if err != nil || len(ms) == 0 {
		return err
	}
	base := filepath.Join(p.dir, DirectoryDir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("creating the directory's state: %w", err)
	}
	schema := filepath.Join(base, directorySchemaFile)
	if err := os.WriteFile(schema, directory.Schema(), 0o644); err != nil {
		return fmt.Errorf("writing the directory's schema: %w", err)
	}
	first := ms[0].member(p.dir, p.ul)
	for i, m := range ms {
		cm := m.member(p.dir, p.ul)
		if i == 0 {
			err = cm.Create(ctx, schema)
		} else {
			err = cm.Join(ctx, directory.DatabaseName, first.Raft)
		}
		if err != nil {
			return fmt.Errorf("directory member %s: %w", m.name, err)
		}
	}
	for _, m := range ms {
		if err := m.member(p.dir, p.ul).Start(ctx); err != nil {
			return fmt.Errorf("directory member %s: %w", m.name, err)
		}
	}
	return waitDirectoryLeader(ctx, p.dir, ms, directoryLeaderWait)
}

// waitDirectoryLeader waits until every member has joined the cluster and
// one of them is its leader.
func waitDirectoryLeader(ctx context.Context, dir string, ms []dirMember, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		joined, leaders := 0, 0
		var last []string
		for _, m := range ms {
			s, err := m.member(dir, "").Status(ctx, directory.DatabaseName)
			switch {
			case err != nil:
				last = append(last, fmt.Sprintf("%s: %v", m.name, err))
			default:
				last = append(last, fmt.Sprintf("%s: %s, %s", m.name, s.Status, s.Role))
				if s.Member() {
					joined++
				}
				if s.Role == "leader" {
					leaders++
				}
			}
		}
		if joined == len(ms) && leaders == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the directory cluster has no leader with every member joined after %v (%s)", within, strings.Join(last, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopDirectory stops every directory member of the lab whose state is in
// dir, those of a topology that changed since too; a member stopped with
// SIGSTOP is continued first.
func stopDirectory(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, DirectoryDir))
	if err != nil {
		return nil // no directory
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cm := &ovsrun.ClusterMember{Dir: filepath.Join(dir, DirectoryDir, e.Name())}
		if pid, ok := cm.Pid(); ok && !isDaemonOf(pid, dir) {
			// A stale pid file naming another program's pid.
			os.Remove(cm.PidPath())
			continue
		}
		if err := cm.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DirectoryMemberStatus is one member of the lab's directory cluster.
type DirectoryMemberStatus struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"` // where clients connect
	Raft     string `json:"raft"`
	Running  bool   `json:"running"`
	PID      int    `json:"pid,omitempty"`
	Status   string `json:"status,omitempty"` // "cluster member", ...
	Role     string `json:"role,omitempty"`   // "leader", "follower", "candidate"
	Term     string `json:"term,omitempty"`
	Err      string `json:"error,omitempty"` // why the member could not be asked
}

// String says whether the member runs and its part in the cluster.
func (d DirectoryMemberStatus) String() string {
	what := fmt.Sprintf("directory %s %s (raft %s)", d.Name, d.Endpoint, d.Raft)
	switch {
	case !d.Running:
		return what + ": not running"
	case d.Err != "":
		return fmt.Sprintf("%s: running, pid %d, not answering: %s", what, d.PID, d.Err)
	}
	return fmt.Sprintf("%s: running, pid %d, %s, %s, term %s", what, d.PID, d.Status, d.Role, d.Term)
}

// directoryStatus asks every member of the topology's directory of its
// part in the cluster (through its unixctl socket, reachable from any
// namespace).
func directoryStatus(ctx context.Context, t *topology.Topology, dir string) []DirectoryMemberStatus {
	ms, err := directoryMembers(t)
	if err != nil {
		return []DirectoryMemberStatus{{Name: "?", Err: err.Error()}}
	}
	var out []DirectoryMemberStatus
	for _, m := range ms {
		cm := m.member(dir, "")
		ds := DirectoryMemberStatus{Name: m.name, Endpoint: m.remote, Raft: cm.Raft}
		if pid, ok := cm.Pid(); ok {
			ds.Running, ds.PID = true, pid
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			s, err := cm.Status(sctx, directory.DatabaseName)
			cancel()
			if err != nil {
				ds.Err = err.Error()
			} else {
				ds.Status, ds.Role, ds.Term = s.Status, s.Role, s.Term
			}
		}
		out = append(out, ds)
	}
	return out
}
