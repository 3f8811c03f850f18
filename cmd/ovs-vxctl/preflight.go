package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// preflight refuses, before anything is touched, what is known to fail
// later with an error that does not say why: a lab verb run by a user
// other than root (it would fail on the first namespace, or, for lab
// status, report everything as missing), and apply of a kernel-datapath
// host on a machine whose kernel has no Open vSwitch datapath (ovs-vswitchd
// logs "failed to create bridge" and apply stops on a missing ofport).
func (g *globalOptions) preflight(cmd *cobra.Command) error {
	if err := needsRoot(cmd, os.Geteuid()); err != nil {
		return err
	}
	if cmd.Name() == "apply" && cmd.HasParent() && !cmd.Parent().HasParent() {
		if dry, _ := cmd.Flags().GetBool("dry-run"); !dry {
			return g.checkKernelDatapath(kernelHasDatapath)
		}
	}
	return nil
}

// needsRoot is the error for a lab subcommand run with effective user ID
// euid other than 0: the lab creates network namespaces, veth links and
// OVS daemons, and reads their pid files and namespaces, which only root can.
func needsRoot(cmd *cobra.Command, euid int) error {
	if euid == 0 || !cmd.HasParent() || cmd.Parent().Name() != "lab" || cmd.Parent().Parent() != cmd.Root() {
		return nil
	}
	return fmt.Errorf("%s needs root (it manages network namespaces and Open vSwitch daemons): run it as root, e.g. with sudo",
		strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "))
}

// checkKernelDatapath fails when this host's bridges use the kernel
// datapath (datapath: system, the default) and the kernel has none, as
// hasDatapath says. It only applies to a local OVS (a unix: --db): a tcp:
// or ssl: database may belong to another machine. A file or host it cannot
// resolve is left to the verb, which reports it.
func (g *globalOptions) checkKernelDatapath(hasDatapath func() (bool, error)) error {
	if !strings.HasPrefix(g.dbEndpoint(), "unix:") || g.file == "" {
		return nil
	}
	t, err := topology.Load(g.file)
	if err != nil {
		return nil
	}
	h, err := g.resolveHost(t)
	if err != nil || !h.Managed || h.Datapath != topology.DatapathSystem {
		return nil
	}
	ok, err := hasDatapath()
	if err != nil || ok {
		// Not knowing is no reason to refuse: ovs-vswitchd will say.
		return nil
	}
	return fmt.Errorf("host %s uses the kernel datapath (datapath: system, the default) but this machine's kernel has no "+
		"Open vSwitch datapath (the openvswitch module is neither loaded nor loadable), so ovs-vswitchd cannot create "+
		"br-int and br-tun: set `datapath: netdev` (OVS's userspace datapath) under defaults or on host %s in %s, "+
		"or load the module (modprobe openvswitch)", h.Name, h.Name, g.file)
}
