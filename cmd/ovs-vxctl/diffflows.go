package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

func newDiffFlowsCmd(g *globalOptions) *cobra.Command {
	var hwTLS *ovsdb.SSLFiles // set below, once cmd exists
	cmd := &cobra.Command{
		Use:   "diff-flows -f FILE [--host H]",
		Short: "Compare compiled with installed flows (exit 2 when they differ)",
		Long: `Compare the flows ovs-vxctl compiles for this host with the flows it owns on
br-int and br-tun. Lines only installed start with '-', lines only compiled with
'+' (as ovs-ofctl diff-flows), and lines starting with '!' are foreign flows:
on these bridges, flows neither ovs-vxctl nor its controller installed, nor
learn() made; apply removes them. Exit status: 0 same, 2 different or foreign
flows, 1 error. For a hardware VTEP host (hardware_vtep in the file), it compares
the hardware_vtep rows apply writes with the switch's database instead: '-'
only on the switch, '+' only desired, a value changed in place as a -/+ pair;
an ssl: hardware_vtep.ovsdb needs --private-key, --certificate and --ca-cert,
as apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ho, ok, err := g.hardwareOptions(hwTLS); ok {
				if err != nil {
					return fmt.Errorf("diff-flows: %w", err)
				}
				return g.runHardwareDiff(cmd, ho)
			}
			o, ctx, done, err := g.hostOptions(false)
			if err != nil {
				return err
			}
			defer done()
			res, err := agent.DiffFlows(ctx, o)
			if err != nil {
				return fmt.Errorf("comparing flows on host %s: %w", o.Host.Name, err)
			}
			differ := false
			w := cmd.OutOrStdout()
			jsonOut := map[string]map[string][]string{}
			for _, bf := range res {
				if bf.Empty() {
					continue
				}
				differ = true
				jsonOut[bf.Bridge] = map[string][]string{"add": texts(bf.Diff.Add), "modify": texts(bf.Diff.Modify),
					"delete": texts(bf.Diff.Delete), "foreign": texts(bf.Foreign)}
				if g.format == "table" {
					fmt.Fprintf(w, "%s:\n", bf.Bridge)
					for _, line := range flowLines(bf) {
						fmt.Fprintln(w, line)
					}
				}
			}
			if g.format == "json" {
				if err := writeJSON(w, map[string]any{"host": o.Host.Name, "differ": differ, "bridges": jsonOut}); err != nil {
					return err
				}
			}
			if differ {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	hwTLS = hardwareTLSFlags(cmd)
	return cmd
}
