package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

func newApplyCmd(g *globalOptions) *cobra.Command {
	var dryRun bool
	var ssl ovsdb.SSLFiles
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--host H] [--dry-run]",
		Short: "Make this host match the topology",
		Long: `Make this host match the topology: br-int and br-tun, the patch pair, a VXLAN
port per peer, the VM and internal ports with their local VLANs, addresses and
routes, and (learn mode) the br-tun flows; in controller mode br-tun is pointed
at the controller. Only what ovs-vxctl created is ever changed. An invalid file
changes nothing. --dry-run prints what would change and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, ctx, done, err := g.hostOptions(dryRun)
			if err != nil {
				return err
			}
			defer done()
			if ssl != (ovsdb.SSLFiles{}) {
				o.SSL = &ssl
			}
			rep, err := agent.Apply(ctx, o)
			if err != nil {
				return fmt.Errorf("applying %s to host %s: %w", g.file, o.Host.Name, err)
			}
			return printReport(cmd.OutOrStdout(), g.format, o.Host.Name, dryRun, rep)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change; change nothing")
	cmd.Flags().StringVar(&ssl.PrivateKey, "private-key", "", "switch's private key, for an ssl: controller (absolute path, as ovs-vsctl set-ssl)")
	cmd.Flags().StringVar(&ssl.Certificate, "certificate", "", "switch's certificate, for an ssl: controller")
	cmd.Flags().StringVar(&ssl.CACert, "ca-cert", "", "CA certificate that signed the controller's certificate")
	return cmd
}

// printReport prints what apply or destroy changed (or would change).
func printReport(w io.Writer, format, host string, dry bool, rep *agent.Report) error {
	if format == "json" {
		flowsOut := map[string]map[string][]string{}
		for _, bf := range rep.Flows {
			flowsOut[bf.Bridge] = map[string][]string{
				"add": texts(bf.Diff.Add), "modify": texts(bf.Diff.Modify), "delete": texts(bf.Diff.Delete)}
		}
		return writeJSON(w, map[string]any{"host": host, "dry_run": dry, "changed": rep.Changed(),
			"ovsdb": rep.OVSDB, "flows": flowsOut, "kernel": rep.Kernel, "duration_ms": rep.Duration.Milliseconds()})
	}
	verb := "changed"
	if dry {
		verb = "would change"
	}
	if !rep.Changed() {
		fmt.Fprintf(w, "host %s: nothing to change\n", host)
		return nil
	}
	for _, c := range rep.OVSDB {
		fmt.Fprintln(w, "ovsdb:  "+c)
	}
	for _, bf := range rep.Flows {
		if bf.Diff.Empty() {
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(bf.Diff.String(), "\n"), "\n") {
			fmt.Fprintf(w, "%s: %s\n", bf.Bridge, line)
		}
	}
	for _, c := range rep.Kernel {
		fmt.Fprintln(w, "kernel: "+c)
	}
	n := 0
	for _, bf := range rep.Flows {
		n += len(bf.Diff.Add) + len(bf.Diff.Modify) + len(bf.Diff.Delete)
	}
	fmt.Fprintf(w, "host %s: %s %d OVSDB rows, %d flows, %d kernel settings in %s\n",
		host, verb, len(rep.OVSDB), n, len(rep.Kernel), rep.Duration.Round(1e6))
	return nil
}
