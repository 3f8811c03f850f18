package main

import (
	"io"
	"text/tabwriter"
)

// newTable returns a writer that aligns tab-separated cells into columns two
// spaces apart, each as wide as its widest cell: values of any width (IPv6
// VTEPs, long names) never push a row out of line. A line without a tab
// ends a block of aligned rows. The caller must Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}
