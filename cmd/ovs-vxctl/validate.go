package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a topology file and print every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.loadTopology()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (topology %s: %d hosts, %d networks)\n",
				g.file, t.Name, len(t.Hosts), len(t.Networks))
			return nil
		},
	}
}
