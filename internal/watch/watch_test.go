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
