package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// newLabStatusCmd is `lab status`: what of the lab exists and runs.
func newLabStatusCmd(l *labCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "status -f FILE",
		Short: "Show the lab's namespaces, daemons, bridges and VMs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := l.options()
			if err != nil {
				return err
			}
			ctx, cancel := l.context(cmd)
			defer cancel()
			st, err := lab.Status(ctx, o)
			if err != nil {
				return fmt.Errorf("lab status: %w", err)
			}
			if l.g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printLabStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
}

// printLabStatus renders st as tables: hosts (with their agents), VMs,
// the controllers, the directory's members, and the stray namespaces (of an earlier lab) last.
func printLabStatus(w io.Writer, st *lab.StatusReport) {
	fmt.Fprintf(w, "lab %s (%s), underlay: %s\n", st.Topology, st.Dir, yesNo(st.Underlay))
	tw := newTable(w)
	fmt.Fprintln(tw, "HOST\tNETNS\tMANAGED\tNETNS\tOVSDB\tVSWITCHD\tAGENT\tBRIDGES")
	for _, h := range st.Hosts {
		agent := "-"
		if h.Managed {
			agent = h.Agent.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.NS, yesNo(h.Managed), yesNo(h.NSExists),
			yesNo(h.OVSDBServer), yesNo(h.Vswitchd), agent, strings.Join(h.Bridges, ","))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "HOST\tVM\tNETNS\tMAC\tMTU\tADDRESSES")
	for _, v := range st.VMs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", v.Host, v.Port, v.NS, v.MAC, v.MTU, strings.Join(v.Addrs, ","))
	}
	tw.Flush()
	for _, c := range st.Controllers {
		fmt.Fprintln(w, c)
	}
	for _, d := range st.Directory {
		fmt.Fprintln(w, d)
	}
	for _, s := range st.Stray {
		fmt.Fprintf(w, "stray namespace: %s\n", s)
	}
}
