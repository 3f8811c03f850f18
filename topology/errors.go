package topology

import (
	"fmt"
	"strings"
)

// Error is one problem found in a topology file, located by its YAML path
// (e.g. "networks[1].vni") and, where known, its line.
type Error struct {
	Path string
	Line int // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	// Problems of the document as a whole (bad YAML, not a mapping) have no path.
	if e.Path == "" {
		if e.Line > 0 {
			return fmt.Sprintf("%s (line %d)", e.Msg, e.Line)
		}
		return e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Errors is every problem found in one topology file; validation reports all
// of them at once rather than stopping at the first.
type Errors struct {
	List []*Error
}

func (e *Errors) Error() string {
	msgs := make([]string, len(e.List))
	for i, x := range e.List {
		msgs[i] = x.Error()
	}
	return strings.Join(msgs, "\n")
}
