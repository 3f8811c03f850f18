// Package watch tells a long-running process when its configuration file
// changed: the agent's and the controller's topology file.
package watch

import (
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// File watches one file through its directory, not the file itself:
// editors and configuration tools save by writing a new file and renaming
// it over the old one, which a watch on the old file's inode would miss. A
// nil *File watches nothing: its channels are nil and never ready, so a
// select on them simply never fires.
//
// A file that is a symbolic link is also followed where it points: a
// Kubernetes ConfigMap volume updates topology.yaml -> ..data/topology.yaml
// by swapping the ..data link, an event on another name of the directory
// that changes where the file resolves to.
type File struct {
	w    *fsnotify.Watcher
	path string
	real string // where path resolved to at the last event; "" if it did not
}

// New starts watching path's directory.
func New(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watching the file %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching the file %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching the directory of the file %s: %w", path, err)
	}
	return &File{w: w, path: abs, real: resolve(abs)}, nil
}

// Events are the directory's events; Concerns picks the file's.
func (f *File) Events() <-chan fsnotify.Event {
	if f == nil {
		return nil
	}
	return f.w.Events
}

// Errors are the watcher's errors (an overflowed event queue, say).
func (f *File) Errors() <-chan error {
	if f == nil {
		return nil
	}
	return f.w.Errors
}

// Concerns reports whether ev may have changed the file's contents: an
// event on its name other than a change of permissions (a rename over it is
// a Create of its name), or any event of the directory after which the file
// resolves to another path (a swapped link). Call it from one goroutine.
func (f *File) Concerns(ev fsnotify.Event) bool {
	if f == nil || ev.Has(fsnotify.Chmod) {
		return false
	}
	real := resolve(f.path)
	moved := real != f.real
	f.real = real
	return filepath.Clean(ev.Name) == f.path || moved
}

// resolve is where path's links lead, or "" when it does not resolve.
func resolve(path string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	return real
}

// Close stops watching; closing a nil *File does nothing.
func (f *File) Close() error {
	if f == nil {
		return nil
	}
	return f.w.Close()
}
