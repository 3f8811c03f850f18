package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
)

// `directory schema` prints the embedded schema, and ovsdb-tool creates a
// clustered database from what it prints.
func TestDirectorySchema(t *testing.T) {
	code, out, errOut := runCLI(t, "directory", "schema")
	if code != 0 || !bytes.Equal([]byte(out), directory.Schema()) {
		t.Fatalf("exit %d, stderr %q; printed %d bytes, want the %d of the schema", code, errOut, len(out), len(directory.Schema()))
	}
	if testing.Short() {
		return
	}
	if _, err := exec.LookPath("ovsdb-tool"); err != nil {
		t.Skip("ovsdb-tool not installed")
	}
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema")
	if err := os.WriteFile(schema, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "directory.db")
	if b, err := exec.Command("ovsdb-tool", "create-cluster", db, schema, "tcp:127.0.0.1:6641").CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create-cluster: %v: %s", err, b)
	}
	b, err := exec.Command("ovsdb-tool", "db-name", db).CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != directory.DatabaseName {
		t.Fatalf("db-name: %v: %s", err, b)
	}
}
