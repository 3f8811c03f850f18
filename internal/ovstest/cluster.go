package ovstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Member is one ovsdb-server of a test Raft cluster (StartCluster).
type Member struct {
	Remote string // the client endpoint, tcp:IP:PORT
	Ctl    string // its unixctl socket
	Cmd    *exec.Cmd
}

// StartCluster creates a Raft cluster of n members of database db with
// schema (the schema file's text) with ovsdb-tool, each member an
// ovsdb-server on its own loopback address 127.0.0.(firstIP+i), waits
// until all of them joined, and kills them when t ends. It needs no root:
// it skips t only under -short or without ovsdb-server.
func StartCluster(t testing.TB, n int, db string, schema []byte, firstIP int) []*Member {
	t.Helper()
	if testing.Short() {
		t.Skip("starts ovsdb-server processes (skipped with -short)")
	}
	if _, err := exec.LookPath("ovsdb-server"); err != nil {
		t.Skip("ovsdb-server not installed")
	}
	dir := t.TempDir()
	schemaFile := filepath.Join(dir, "schema.ovsschema")
	if err := os.WriteFile(schemaFile, schema, 0o644); err != nil {
		t.Fatal(err)
	}
	var raft0 string
	var ms []*Member
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", firstIP+i)
		raft := fmt.Sprintf("tcp:%s:%d", ip, freePort(t, ip))
		file := filepath.Join(dir, fmt.Sprintf("m%d.db", i))
		if i == 0 {
			raft0 = raft
			runTool(t, "ovsdb-tool", "create-cluster", file, schemaFile, raft)
		} else {
			runTool(t, "ovsdb-tool", "join-cluster", file, db, raft, raft0)
		}
		port := freePort(t, ip)
		m := &Member{Remote: fmt.Sprintf("tcp:%s:%d", ip, port), Ctl: filepath.Join(dir, fmt.Sprintf("m%d.ctl", i))}
		m.Cmd = exec.Command("ovsdb-server", "--no-chdir", "--unixctl="+m.Ctl,
			"--log-file="+filepath.Join(dir, fmt.Sprintf("m%d.log", i)), "--pidfile="+filepath.Join(dir, fmt.Sprintf("m%d.pid", i)),
			fmt.Sprintf("--remote=ptcp:%d:%s", port, ip), file)
		if err := m.Cmd.Start(); err != nil {
			t.Fatalf("starting ovsdb-server: %v", err)
		}
		t.Cleanup(func() {
			_ = m.Cmd.Process.Signal(syscall.SIGCONT)
			_ = m.Cmd.Process.Kill()
			_ = m.Cmd.Wait()
		})
		ms = append(ms, m)
	}
	// A member serves the database only once it has joined, through the
	// first member: wait for all, so that any may be killed.
	for _, m := range ms {
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, err := exec.Command("ovs-appctl", "-t", m.Ctl, "cluster/status", db).CombinedOutput()
			if err == nil && strings.Contains(string(out), "Status: cluster member") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster member %s did not join within 20 s: %s", m.Remote, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return ms
}

// Endpoints are the members' client endpoints.
func Endpoints(ms []*Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Remote
	}
	return out
}

// freePort returns a TCP port nothing listens on at ip right now.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
