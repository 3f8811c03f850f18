package main

import (
	"fmt"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/spf13/cobra"
)

// newDirectoryCmd groups the verbs about the directory, the clustered
// OVSDB that controller replicas share.
func newDirectoryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "directory",
		Short: "The directory: the clustered OVSDB that controller replicas share",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the directory's OVSDB schema",
		Long: "Print the directory's OVSDB schema (JSON), to create its clustered database:\n\n" +
			"  ovsdb-tool create-cluster directory.db <(ovs-vxctl directory schema) tcp:IP:PORT",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := cmd.OutOrStdout().Write(directory.Schema()); err != nil {
				return fmt.Errorf("writing the directory schema: %w", err)
			}
			return nil
		},
	})
	return cmd
}
