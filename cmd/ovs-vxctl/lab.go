package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// newLabCmd is the lab verb; each subcommand is in its own lab_*.go file.
func newLabCmd(g *globalOptions) *cobra.Command {
	l := &labCmd{g: g}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the whole topology on this machine (namespaces + userspace OVS)",
		Long: `The lab builds a topology on one machine: one network namespace and one
private userspace OVS per managed host, a shared underlay, a namespace per VM
port with its MAC, IP and gateway, a Linux-kernel VTEP per unmanaged host, and
then runs 'ovs-vxctl apply' inside every host. Needs root and Open vSwitch.`,
	}
	cmd.PersistentFlags().StringVar(&l.dir, "lab-dir", "", "state directory (default /run/ovs-vxctl/lab/<topology>)")
	cmd.AddCommand(newLabUpCmd(l), newLabDownCmd(l), newLabStatusCmd(l), newLabExecCmd(l))
	return cmd
}

// labCmd is what the lab subcommands share: the global options and the
// lab's own --lab-dir.
type labCmd struct {
	g   *globalOptions
	dir string
}

// options loads the topology and finds this binary, which the lab runs
// inside every host (apply) by absolute paths, as it changes namespaces.
func (l *labCmd) options() (lab.Options, error) {
	t, err := l.g.loadTopology()
	if err != nil {
		return lab.Options{}, err
	}
	file, err := filepath.Abs(l.g.file)
	if err != nil {
		return lab.Options{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return lab.Options{}, fmt.Errorf("finding the ovs-vxctl binary: %w", err)
	}
	return lab.Options{Topology: t, File: file, Self: self, Dir: l.dir, Log: l.g.logger()}, nil
}

// context ends on SIGINT, SIGTERM or the timeout. Lab verbs build many
// things; give them longer than OVS verbs by default.
func (l *labCmd) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	timeout := l.g.timeout
	if !cmd.Flags().Changed("timeout") {
		timeout = 5 * time.Minute
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel2 := context.WithTimeout(ctx, timeout)
	return ctx, func() { cancel2(); cancel() }
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
