package main

import (
	"context"
	"errors"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// newLabExecCmd is `lab exec`: run a command inside a host's or a VM's
// namespace, exiting with its status.
func newLabExecCmd(l *labCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "exec -f FILE NAME -- CMD...",
		Short: "Run CMD inside the namespace of host or VM port NAME (host/port when ambiguous)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := l.options()
			if err != nil {
				return err
			}
			c, err := lab.Command(context.Background(), o, args[0], args[1:])
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return &exitError{code: ee.ExitCode()}
				}
				return err
			}
			return nil
		},
	}
}
