package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileSeesRenameOver: a file replaced as editors do (a new file
// renamed over it) is seen, and so is a plain write; another file of the
// directory is not the watched file's event.
func TestFileSeesRenameOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "topo.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// wait reports whether an event concerning the file comes within a
	// second, after do.
	wait := func(do func() error) bool {
		t.Helper()
		if err := do(); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(time.Second)
		for {
			select {
			case ev := <-f.Events():
				if f.Concerns(ev) {
					return true
				}
			case err := <-f.Errors():
				t.Fatal(err)
			case <-deadline:
				return false
			}
		}
	}
	other := filepath.Join(dir, "other")
	if wait(func() error { return os.WriteFile(other, []byte("x"), 0o644) }) {
		t.Error("a write of another file concerns the watched one")
	}
	tmp := filepath.Join(dir, ".topo.yaml.tmp")
	if !wait(func() error {
		if err := os.WriteFile(tmp, []byte("b"), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}) {
		t.Error("a rename over the file was not seen")
	}
	if !wait(func() error { return os.WriteFile(path, []byte("c"), 0o644) }) {
		t.Error("a write of the file was not seen")
	}
	// A nil *File watches nothing, and says so without failing.
	var none *File
	if none.Events() != nil || none.Errors() != nil || none.Close() != nil {
		t.Error("a nil *File has channels, or fails to close")
	}
}

// TestFileFollowsConfigMapSwap: a Kubernetes ConfigMap volume holds
// topo.yaml -> ..data/topo.yaml and ..data -> ..2026_1; an update writes
// ..2026_2, points ..data_tmp at it and renames ..data_tmp over ..data. No
// event names topo.yaml, yet its contents changed.
func TestFileFollowsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(ver, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, ver), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ver, "topo.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("..2026_1", "a")
	if err := os.Symlink("..2026_1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "topo.yaml")
	if err := os.Symlink(filepath.Join("..data", "topo.yaml"), path); err != nil {
		t.Fatal(err)
	}
	f, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mk("..2026_2", "b")
	if err := os.Symlink("..2026_2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev := <-f.Events():
			if f.Concerns(ev) {
				if b, _ := os.ReadFile(path); string(b) != "b" {
					t.Errorf("after the swap the file reads %q, want b", b)
				}
				return
			}
		case err := <-f.Errors():
			t.Fatal(err)
		case <-deadline:
			t.Fatal("the ConfigMap's ..data swap was not seen as a change of the file")
		}
	}
}
