package directory

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// F5: an ovsdb-server that serves another database (Open_vSwitch, say) is
// not the directory: Ready's error and the warning name the real cause,
// the warning once, and the debug lines do not repeat at every attempt.
func TestWrongDatabaseNamesTheCause(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an ovsdb-server")
	}
	if _, err := exec.LookPath("ovsdb-server"); err != nil {
		t.Skip("ovsdb-server not installed")
	}
	dir := t.TempDir()
	schema := filepath.Join(dir, "other.ovsschema")
	if err := os.WriteFile(schema, []byte(`{"name": "Other", "version": "1.0.0", "tables": {"T": {"columns": {"x": {"type": "integer"}}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "other.db")
	run(t, "ovsdb-tool", "create", db, schema)
	port := freePort(t, "127.0.0.1")
	cmd := exec.Command("ovsdb-server", "--no-chdir", "--unixctl="+filepath.Join(dir, "o.Ctl"),
		"--log-file="+filepath.Join(dir, "o.log"), fmt.Sprintf("--remote=ptcp:%d:127.0.0.1", port), db)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	waitFor(t, 10*time.Second, "ovsdb-server listening", func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	core, logs := observer.New(zapcore.DebugLevel)
	c, err := Open(Options{Endpoints: []string{fmt.Sprintf("tcp:127.0.0.1:%d", port)}, Name: "ctl-a", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = c.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "OVS_VXCTL_Directory") {
		t.Fatalf("Ready: %v; want an error naming the missing database", err)
	}
	warns := logs.FilterMessage("directory not reachable: every member refused").All()
	if len(warns) != 1 {
		for _, w := range logs.All() {
			t.Log(w.Message, w.ContextMap())
		}
		t.Fatalf("%d warnings in 3 s, want 1", len(warns))
	}
	if causes := fmt.Sprint(warns[0].ContextMap()["causes"]); !strings.Contains(causes, "OVS_VXCTL_Directory") {
		t.Errorf("the warning's causes %s do not name the missing database", causes)
	}
	if n := logs.FilterMessage("directory member refused").Len(); n != 1 {
		t.Errorf("%d debug lines for one unchanged cause, want 1", n)
	}
	t.Logf("Ready: %v", err)
}
