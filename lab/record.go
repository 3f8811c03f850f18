package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// What Up records in the lab's state directory, so that Down works once the
// topology file is broken, edited or deleted: Down needs only the lab's
// name and directory (it finds namespaces by name, OVS instances by
// directory).
const (
	RecordFile   = "lab.json"      // the Record
	TopologyCopy = "topology.yaml" // the topology file as Up read it, for the operator
)

// Record says which lab a state directory holds.
type Record struct {
	Topology string `json:"topology"` // the topology's name
	File     string `json:"file"`     // the topology file Up read (absolute), if any
	Dir      string `json:"dir"`      // the state directory
}

// writeRecord records lab o in dir, and copies its topology file there
// when Up had one.
func writeRecord(dir string, o Options) error {
	r := Record{Topology: o.Topology.Name, File: o.File, Dir: dir}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, RecordFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording the lab in %s: %w", dir, err)
	}
	if o.File == "" {
		return nil
	}
	if text, err := os.ReadFile(o.File); err == nil {
		if err := os.WriteFile(filepath.Join(dir, TopologyCopy), text, 0o644); err != nil {
			return fmt.Errorf("copying the topology into %s: %w", dir, err)
		}
	}
	return nil
}

// ReadRecord reads the record of the lab whose state directory is dir.
func ReadRecord(dir string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return nil, fmt.Errorf("reading the lab's record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading the lab's record %s: %w", filepath.Join(dir, RecordFile), err)
	}
	if !nameRE.MatchString(r.Topology) {
		return nil, fmt.Errorf("the lab's record %s names no valid topology (%q)", filepath.Join(dir, RecordFile), r.Topology)
	}
	r.Dir = dir // where it is, wherever it was written
	return &r, nil
}

// ErrNoRecord is returned by FindRecord when no lab under the root was
// brought up from the file.
var ErrNoRecord = errors.New("no lab recorded for that file")

// FindRecord returns the record of the lab brought up from topology file
// (an absolute path) among the labs under root (DefaultRoot if "").
func FindRecord(root, file string) (*Record, error) {
	if root == "" {
		root = DefaultRoot
	}
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing labs in %s: %w", root, err)
	}
	for _, e := range entries {
		if r, err := ReadRecord(filepath.Join(root, e.Name())); err == nil && r.File == file {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%s: %w under %s", file, ErrNoRecord, root)
}

// DownRecorded removes the lab named name whose state directory is dir
// ("" for the default), as Down, without its topology.
func DownRecorded(ctx context.Context, name, dir string, log *zap.Logger) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab name %q: want lower-case letters, digits and dashes", name)
	}
	if dir == filepath.Join(DefaultRoot, name) {
		dir = "" // the default: Down also removes the empty roots
	}
	return Down(ctx, Options{Topology: &topology.Topology{Name: name}, Dir: dir, Log: log})
}
