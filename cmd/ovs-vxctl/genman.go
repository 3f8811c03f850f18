package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenManCmd is the hidden verb `make install` runs to write the man
// pages: one per command of the real command tree, in section 8 like
// ovs-vsctl's, so they never drift from --help.
func newGenManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages (section 8) of every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("creating the man page directory: %w", err)
			}
			root := cmd.Root()
			// The footer names the version documented; cobra's "auto generated"
			// history section says nothing a reader needs. (SOURCE_DATE_EPOCH,
			// if set, fixes the date for reproducible builds.)
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{
				Title:   "OVS-VXCTL",
				Section: "8",
				Source:  "ovs-vxctl " + buildVersion(version),
				Manual:  "ovs-vxctl Manual",
			}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("writing man pages to %s: %w", args[0], err)
			}
			return nil
		},
	}
}
