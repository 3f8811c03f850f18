package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lab down names what it misses when it cannot tell which lab to remove,
// and changes nothing.
func TestLabDownNeedsALab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lab verbs refuse to run without root before any of this")
	}
	empty := t.TempDir()
	broken := writeFile(t, "broken.yaml", "name: [not a topology\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lab", "down"}, "give -f FILE, --name NAME or --lab-dir DIR"},
		{[]string{"lab", "down", "--lab-dir", empty}, "add --name NAME"},
		{[]string{"lab", "down", "-f", broken}, "name it with --name NAME"},
		{[]string{"lab", "down", "-f", filepath.Join(empty, "gone.yaml")}, "name it with --name NAME"},
		{[]string{"lab", "down", "--name", "Bad_Name"}, `lab name "Bad_Name"`},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", c.args, code, stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("lab down wrote into %s: %v", empty, entries)
	}
}

// A lab named by --name and --lab-dir goes without a topology file (here
// a lab that does not exist: down works on none at all).
func TestLabDownByName(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("runs lab down for real: root, not under -short")
	}
	dir := filepath.Join(t.TempDir(), "s")
	code, stdout, stderr := runCLI(t, "lab", "down", "--name", "attfix-none", "--lab-dir", dir)
	if code != 0 || !strings.Contains(stdout, "lab attfix-none: down") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A broken -f falls back to the lab's record, saying so.
	rec := filepath.Join(t.TempDir(), "s")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rec, "lab.json"), []byte(`{"topology": "attfix-none2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := writeFile(t, "broken.yaml", "name: [not a topology\n")
	code, stdout, stderr = runCLI(t, "lab", "down", "-f", broken, "--lab-dir", rec)
	if code != 0 || !strings.Contains(stdout, "lab attfix-none2: down") || !strings.Contains(stderr, "as recorded in "+rec) {
		t.Errorf("broken -f: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(rec); err == nil {
		t.Errorf("the lab's state directory %s is still there", rec)
	}
}
