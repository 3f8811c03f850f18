package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// What Up records is found again by directory and by topology file, and a
// broken record is refused by name.
func TestRecord(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(file, []byte("name: reca\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "reca")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(dir, Options{Topology: &topology.Topology{Name: "reca"}, File: file}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, TopologyCopy)); err != nil || string(b) != "name: reca\n" {
		t.Errorf("topology copy %q, %v", b, err)
	}
	os.Remove(file) // the file goes: the record stays
	r, err := ReadRecord(dir)
	if err != nil || r.Topology != "reca" || r.File != file || r.Dir != dir {
		t.Fatalf("ReadRecord = %+v, %v", r, err)
	}
	if r, err := FindRecord(root, file); err != nil || r.Topology != "reca" || r.Dir != dir {
		t.Errorf("FindRecord = %+v, %v", r, err)
	}
	if _, err := FindRecord(root, "/elsewhere.yaml"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("FindRecord of another file: %v, want ErrNoRecord", err)
	}
	if _, err := ReadRecord(t.TempDir()); err == nil {
		t.Errorf("ReadRecord of a directory without a record succeeded")
	}
	if err := os.WriteFile(filepath.Join(dir, RecordFile), []byte(`{"topology":"../../etc"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(dir); err == nil || !strings.Contains(err.Error(), "no valid topology") {
		t.Errorf("ReadRecord of a hostile record: %v", err)
	}
	if err := DownRecorded(context.Background(), "Bad_Name", dir, nil); err == nil || !strings.Contains(err.Error(), "Bad_Name") {
		t.Errorf("DownRecorded with a bad name: %v", err)
	}
}

// A lab whose topology file was deleted after up is torn down from its
// record alone.
func TestLabDownFromRecord(t *testing.T) {
	needRoot(t)
	before := rootLinks(t)
	file := filepath.Join(t.TempDir(), "rec.yaml")
	if err := os.WriteFile(file, []byte("name: labrec\n# the lab does not read it back under SkipApply\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	top := newTopo("labrec").
		host("h1", "10.250.1.1", true, 0).
		host("k1", "10.252.0.4", false, 0).
		network("net-a", 100).
		port(t, "h1", "vm1", topology.PortVM, "52:54:00:00:01:01", "10.1.1.11/24", "").
		port(t, "k1", "kvm1", topology.PortVM, "52:54:00:00:01:04", "10.1.1.14/24", "").
		t
	o := Options{Topology: top, File: file, Self: "/nonexistent", Dir: labDir(t), Log: zaptest.NewLogger(t), SkipApply: true}
	upForTest(t, o)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	r, err := FindRecord(filepath.Dir(o.Dir), file)
	if err != nil {
		t.Fatalf("finding the lab by its deleted file: %v", err)
	}
	if err := DownRecorded(context.Background(), r.Topology, r.Dir, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("down from the record: %v", err)
	}
	assertGone(t, o, before)
}
