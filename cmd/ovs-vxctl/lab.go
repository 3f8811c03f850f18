package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

func newLabCmd(g *globalOptions) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the whole topology on this machine (namespaces + userspace OVS)",
		Long: `The lab builds a topology on one machine: one network namespace and one
private userspace OVS per managed host, a shared underlay, a namespace per VM
port with its MAC, IP and gateway, a Linux-kernel VTEP per unmanaged host, and
then runs 'ovs-vxctl apply' inside every host. Needs root and Open vSwitch.`,
	}
	cmd.PersistentFlags().StringVar(&dir, "lab-dir", "", "state directory (default /run/ovs-vxctl/lab/<topology>)")
	opts := func() (lab.Options, error) {
		t, err := g.loadTopology()
		if err != nil {
			return lab.Options{}, err
		}
		file, err := filepath.Abs(g.file)
		if err != nil {
			return lab.Options{}, err
		}
		self, err := os.Executable()
		if err != nil {
			return lab.Options{}, fmt.Errorf("finding the ovs-vxctl binary: %w", err)
		}
		return lab.Options{Topology: t, File: file, Self: self, Dir: dir, Log: g.logger()}, nil
	}
	// Lab verbs build many things; give them longer than OVS verbs by default.
	labContext := func(cmd *cobra.Command) (context.Context, context.CancelFunc) {
		timeout := g.timeout
		if !cmd.Flags().Changed("timeout") {
			timeout = 5 * time.Minute
		}
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		ctx, cancel2 := context.WithTimeout(ctx, timeout)
		return ctx, func() { cancel2(); cancel() }
	}

	up := &cobra.Command{
		Use:   "up -f FILE",
		Short: "Build the topology on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := opts()
			if err != nil {
				return err
			}
			ctx, cancel := labContext(cmd)
			defer cancel()
			rep, err := lab.Up(ctx, o)
			if err != nil {
				return fmt.Errorf("lab up: %w", err)
			}
			if g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			return nil
		},
	}
	down := &cobra.Command{
		Use:   "down -f FILE",
		Short: "Remove the lab: namespaces, OVS instances, links, state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := opts()
			if err != nil {
				return err
			}
			ctx, cancel := labContext(cmd)
			defer cancel()
			start := time.Now()
			if err := lab.Down(ctx, o); err != nil {
				return fmt.Errorf("lab down: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s: down in %s\n", o.Topology.Name, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status -f FILE",
		Short: "Show the lab's namespaces, daemons, bridges and VMs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := opts()
			if err != nil {
				return err
			}
			ctx, cancel := labContext(cmd)
			defer cancel()
			st, err := lab.Status(ctx, o)
			if err != nil {
				return fmt.Errorf("lab status: %w", err)
			}
			if g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "lab %s (%s), underlay: %s\n", st.Topology, st.Dir, yesNo(st.Underlay))
			fmt.Fprintf(w, "%-12s %-28s %-7s %-6s %-6s %-9s %s\n", "HOST", "NETNS", "MANAGED", "NETNS", "OVSDB", "VSWITCHD", "BRIDGES")
			for _, h := range st.Hosts {
				fmt.Fprintf(w, "%-12s %-28s %-7s %-6s %-6s %-9s %s\n", h.Name, h.NS, yesNo(h.Managed), yesNo(h.NSExists),
					yesNo(h.OVSDBServer), yesNo(h.Vswitchd), strings.Join(h.Bridges, ","))
			}
			fmt.Fprintf(w, "%-12s %-12s %-32s %-18s %-5s %s\n", "HOST", "VM", "NETNS", "MAC", "MTU", "ADDRESSES")
			for _, v := range st.VMs {
				fmt.Fprintf(w, "%-12s %-12s %-32s %-18s %-5d %s\n", v.Host, v.Port, v.NS, v.MAC, v.MTU, strings.Join(v.Addrs, ","))
			}
			for _, s := range st.Stray {
				fmt.Fprintf(w, "stray namespace: %s\n", s)
			}
			return nil
		},
	}
	execCmd := &cobra.Command{
		Use:   "exec -f FILE NAME -- CMD...",
		Short: "Run CMD inside the namespace of host or VM port NAME (host/port when ambiguous)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := opts()
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
	cmd.AddCommand(up, down, status, execCmd)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
