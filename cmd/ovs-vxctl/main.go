// Command ovs-vxctl builds VXLAN overlays on Open vSwitch from one declarative
// topology file: OVSDB bridges and ports, the br-tun flow pipeline, an
// OpenFlow controller, and a lab that runs the whole topology on one machine.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit status:
// 0 done, 1 error, 2 "differs" (diff-flows), like ovs-ofctl.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{}
	root := newRootCmd(g, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	code, msg := 1, err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		code, msg = ee.code, ee.msg
	}
	if msg != "" {
		g.reportError(stderr, cmd, code, msg, err)
	}
	return code
}

// exitError carries an exit status other than 1 (or a 1 whose message was
// already printed).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }

// newRootCmd builds the whole command tree, writing to stdout and stderr.
func newRootCmd(g *globalOptions, stdout, stderr io.Writer) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "ovs-vxctl",
		Short: "Build VXLAN overlays on Open vSwitch from a topology file",
		Long: `ovs-vxctl builds VXLAN overlays on Open vSwitch from one declarative topology
file: on every host br-int and br-tun joined by a patch pair, one VXLAN port per
peer, the VM and internal ports as access ports of their network's local VLAN,
and the br-tun flow pipeline, installed by diff in one OpenFlow bundle. It only
ever changes what it created.

The OVSDB socket and the bridges' management sockets are found in $OVS_RUNDIR
(default /var/run/openvswitch). Exit status: 0 done, 1 error, 2 differs
(diff-flows).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.validate(); err != nil {
				return err
			}
			return g.preflight(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				return printVersion(cmd.OutOrStdout(), g.format)
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print the version of ovs-vxctl, Go and OVS (same as the version verb)")
	g.register(root)
	root.AddCommand(
		newApplyCmd(g),
		newDestroyCmd(g),
		newValidateCmd(g),
		newFlowsCmd(g),
		newDiffFlowsCmd(g),
		newShowCmd(g),
		newFdbCmd(g),
		newTraceCmd(g),
		newLabCmd(g),
		newControllerCmd(g),
		newAgentCmd(g),
		newDirectoryCmd(),
		newVersionCmd(g),
		newGenManCmd(),
	)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Cobra adds its completion verb lazily, at Execute; add it now (after
	// SetOut, which it captures) so that the checks and completions below,
	// and the man pages, see the whole tree.
	root.InitDefaultCompletionCmd()
	requireSubcommands(root)
	registerCompletions(root, g)
	return root
}
