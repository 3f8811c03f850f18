// Command ovs-vxctl builds VXLAN overlays on Open vSwitch from one declarative
// topology file: OVSDB bridges and ports, the br-tun flow pipeline, an
// OpenFlow controller, and a lab that runs the whole topology on one machine.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit status:
// 0 done, 1 error, 2 "differs" (diff-flows), like ovs-ofctl.
func run(args []string) int {
	g := &globalOptions{}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "ovs-vxctl: "+ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "ovs-vxctl: "+err.Error())
		return 1
	}
}

// exitError carries an exit status other than 1 (or a 1 whose message was
// already printed).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "ovs-vxctl",
		Short:         "Build VXLAN overlays on Open vSwitch from a topology file",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.validate()
		},
	}
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
		newVersionCmd(g),
	)
	return root
}
