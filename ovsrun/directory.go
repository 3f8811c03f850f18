package ovsrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ClusterMember is one ovsdb-server of a clustered (Raft) database, with its
// database file, pid file, log and unixctl socket in Dir, optionally inside a
// network namespace. The lab runs one per `directory:` endpoint of a
// topology; the cluster itself is made with ovsdb-tool only (create-cluster
// for the first member, join-cluster for the others), as a person would.
type ClusterMember struct {
	Dir    string // its files
	NetNS  string // namespace the server runs in; "" for the current one
	Remote string // where clients connect: "tcp:IP:PORT"
	Raft   string // where the members talk Raft: "tcp:IP:PORT"
}

// DBPath is the member's clustered database file.
func (m *ClusterMember) DBPath() string { return filepath.Join(m.Dir, "cluster.db") }

// CtlPath is the member's unixctl socket (ovs-appctl -t).
func (m *ClusterMember) CtlPath() string { return filepath.Join(m.Dir, "ovsdb-server.ctl") }

// PidPath is the member's pid file.
func (m *ClusterMember) PidPath() string { return filepath.Join(m.Dir, "ovsdb-server.pid") }

// LogPath is the member's log file.
func (m *ClusterMember) LogPath() string { return filepath.Join(m.Dir, "ovsdb-server.log") }

func (m *ClusterMember) inst() *Instance { return &Instance{Dir: m.Dir, NetNS: m.NetNS} }

// Create makes the member's database the first of a new cluster of the
// schema in schemaFile (ovsdb-tool create-cluster).
func (m *ClusterMember) Create(ctx context.Context, schemaFile string) error {
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the cluster member's directory: %w", err)
	}
	if _, err := m.inst().Run(ctx, "ovsdb-tool", "create-cluster", m.DBPath(), schemaFile, m.Raft); err != nil {
		return fmt.Errorf("creating the cluster at %s: %w", m.Raft, err)
	}
	return nil
}

// Join makes the member's database a joining member of the cluster of
// database db that the members at remotes (Raft addresses) belong to
// (ovsdb-tool join-cluster). It joins for real once its server runs and
// reaches one of them.
func (m *ClusterMember) Join(ctx context.Context, db string, remotes ...string) error {
	if len(remotes) == 0 {
		return errors.New("joining a cluster: no member to join through")
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the cluster member's directory: %w", err)
	}
	args := append([]string{"join-cluster", m.DBPath(), db, m.Raft}, remotes...)
	if _, err := m.inst().Run(ctx, "ovsdb-tool", args...); err != nil {
		return fmt.Errorf("joining the cluster through %s: %w", strings.Join(remotes, ","), err)
	}
	return nil
}

// Start runs the member's ovsdb-server in the background (--detach): it
// serves clients on Remote and Raft on the address in its database.
func (m *ClusterMember) Start(ctx context.Context) error {
	proto, hostport, ok := strings.Cut(m.Remote, ":")
	if !ok || proto != "tcp" {
		return fmt.Errorf("cluster member remote %q: want tcp:IP:PORT", m.Remote)
	}
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return fmt.Errorf("cluster member remote %q: want tcp:IP:PORT", m.Remote)
	}
	// ovsdb-server's passive form puts the port first (an IPv6 address
	// keeps its brackets).
	listen := "ptcp:" + hostport[i+1:] + ":" + hostport[:i]
	if _, err := m.inst().Run(ctx, "ovsdb-server", m.DBPath(), "--no-chdir",
		"--remote="+listen,
		"--pidfile="+m.PidPath(),
		"--unixctl="+m.CtlPath(),
		"--log-file="+m.LogPath(), "--detach"); err != nil {
		return fmt.Errorf("starting the cluster member at %s: %w", m.Remote, err)
	}
	return nil
}

// Pid is the member's server's process ID, if it runs.
func (m *ClusterMember) Pid() (int, bool) {
	pid, err := readPid(m.PidPath())
	if err != nil || !alive(pid) {
		return 0, false
	}
	return pid, true
}

// Running reports whether the member's server lives.
func (m *ClusterMember) Running() bool {
	_, ok := m.Pid()
	return ok
}

// ClusterStatus is what `ovs-appctl cluster/status DB` says of a member.
type ClusterStatus struct {
	Status string // "cluster member", "joining cluster", ...
	Role   string // "leader", "follower", "candidate"
	Term   string
	Leader string // the leader's server ID, "self" or "unknown"
}

// Member reports whether the member has joined the cluster.
func (s ClusterStatus) Member() bool { return s.Status == "cluster member" }

// Status asks the member's server about its part in the cluster of db.
func (m *ClusterMember) Status(ctx context.Context, db string) (ClusterStatus, error) {
	out, err := m.inst().Run(ctx, "ovs-appctl", "-T", "2", "-t", m.CtlPath(), "cluster/status", db)
	if err != nil {
		return ClusterStatus{}, fmt.Errorf("asking the cluster member at %s: %w", m.Remote, err)
	}
	return ParseClusterStatus(out), nil
}

// ParseClusterStatus reads the fields ClusterStatus holds from the output
// of `ovs-appctl cluster/status`.
func ParseClusterStatus(out string) ClusterStatus {
	var s ClusterStatus
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Status":
			s.Status = v
		case "Role":
			s.Role = v
		case "Term":
			s.Term = v
		case "Leader":
			s.Leader = v
		}
	}
	return s
}

// Stop ends the member's server and waits for it to exit. A server stopped
// with SIGSTOP (as tests do to a hung leader) is continued first, so that
// it can act on SIGTERM.
func (m *ClusterMember) Stop() error {
	if pid, ok := m.Pid(); ok {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	if err := stopPid(m.PidPath()); err != nil {
		return fmt.Errorf("stopping the cluster member at %s: %w", m.Remote, err)
	}
	return nil
}
