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
type File struct {
	w    *fsnotify.Watcher
	path string
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
	return &File{w: w, path: abs}, nil
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
// event on its name other than a change of permissions. (A rename over it
// is a Create of its name.)
func (f *File) Concerns(ev fsnotify.Event) bool {
	return f != nil && filepath.Clean(ev.Name) == f.path && !ev.Has(fsnotify.Chmod)
}

// Close stops watching; closing a nil *File does nothing.
func (f *File) Close() error {
	if f == nil {
		return nil
	}
	return f.w.Close()
}
