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
changes nothing. --dry-run prints what would change and changes nothing.

Before changing anything, apply refuses interfaces that are not what the file
says: a vm port whose interface carries IP addresses, holds or routes the VTEP
address, or belongs to another bridge or bond; an internal port whose name an
interface that is not OVS's own holds. A vm interface that does not exist yet is
a warning: OVS attaches it when it appears. It also checks that the bridges'
management sockets ($OVS_RUNDIR/<bridge>.mgmt) answer, so that it never commits
OVSDB changes whose flows it then cannot install. After the transaction, an
interface OVS could not attach (Interface.error) fails apply, naming the port.

br-int and br-tun are ovs-vxctl's: apply removes every flow there that neither
it, its controller nor learn() installed, and lists it with a '!'. Internal
ports get their network's MTU (mtu in the file, or the MTU of the interface
holding the VTEP address minus 50 bytes, 70 for an IPv6 underlay); a vm
interface with a larger MTU is a warning. A tunnel port that OVS numbered
otherwise than asked keeps its number, and the flows name it.

For a hardware VTEP (a host with hardware_vtep), apply instead writes the
switch's hardware_vtep database (hardware_vtep.ovsdb, reachable from wherever
apply runs) in one transaction: a logical switch per network (tunnel_key =
VNI, source_node replication), the port/VLAN bindings and the unknown-dst
flood list; for an ssl: database, --private-key, --certificate and --ca-cert
are this client's key and certificate and the CA that signed the switch's.
destroy and show work the same way for such a host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if handled, err := g.hardwareVTEP(cmd, hwApply, dryRun, &ssl); handled {
				return err
			}
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
				"add": texts(bf.Diff.Add), "modify": texts(bf.Diff.Modify), "delete": texts(bf.Diff.Delete), "foreign": texts(bf.Foreign)}
		}
		return writeJSON(w, map[string]any{"host": host, "dry_run": dry, "changed": rep.Changed(),
			"ovsdb": rep.OVSDB, "flows": flowsOut, "kernel": rep.Kernel, "warnings": nonNil(rep.Warnings), "duration_ms": rep.Duration.Milliseconds()})
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
		for _, line := range flowLines(bf) {
			fmt.Fprintf(w, "%s: %s\n", bf.Bridge, line)
		}
	}
	for _, c := range rep.Kernel {
		fmt.Fprintln(w, "kernel: "+c)
	}
	n := 0
	for _, bf := range rep.Flows {
		n += len(bf.Diff.Add) + len(bf.Diff.Modify) + len(bf.Diff.Delete) + len(bf.Foreign)
	}
	fmt.Fprintf(w, "host %s: %s %d OVSDB rows, %d flows, %d kernel settings in %s\n",
		host, verb, len(rep.OVSDB), n, len(rep.Kernel), rep.Duration.Round(1e6))
	return nil
}

// foreignMark starts the line of a flow on a bridge of ovs-vxctl's that
// neither it, its controller nor learn() installed: apply removes it.
const foreignMark = "!"

// flowLines are one bridge's changes as diff-flows and apply print them:
// "-" an installed flow that goes, "+" a compiled flow that comes (as
// ovs-ofctl diff-flows), then foreignMark and each foreign flow.
func flowLines(bf agent.BridgeFlows) []string {
	var out []string
	if !bf.Diff.Empty() {
		out = strings.Split(strings.TrimRight(bf.Diff.String(), "\n"), "\n")
	}
	for _, f := range bf.Foreign {
		out = append(out, foreignMark+strings.TrimPrefix(f.String(), " "))
	}
	return out
}

// nonNil makes an absent list print as [] in JSON, not null.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
