package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// registerCompletions adds shell completion of option values and names on
// top of cobra's verbs and flags: -f offers YAML files; --host, --vni and
// lab exec's NAME are read from the topology file given with -f (cobra
// parses the command line before asking, so g.file is set); --format,
// --log-format and --bridge offer their fixed values.
func registerCompletions(root *cobra.Command, g *globalOptions) {
	fixed := func(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		}
	}
	fromFile := func(names func(*topology.Topology) []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			t, err := g.loadTopology()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return names(t), cobra.ShellCompDirectiveNoFileComp
		}
	}
	must(root.RegisterFlagCompletionFunc("file", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}))
	must(root.RegisterFlagCompletionFunc("host", fromFile(hostNames)))
	must(root.RegisterFlagCompletionFunc("format", fixed("table", "json")))
	must(root.RegisterFlagCompletionFunc("log-format", fixed("console", "json")))
	walk(root, func(c *cobra.Command) {
		if c.LocalNonPersistentFlags().Lookup("bridge") != nil {
			must(c.RegisterFlagCompletionFunc("bridge", fixed(topology.BridgeTun, topology.BridgeInt)))
		}
		if c.LocalNonPersistentFlags().Lookup("vni") != nil {
			must(c.RegisterFlagCompletionFunc("vni", fromFile(vnis)))
		}
		if c.CommandPath() == root.Name()+" lab exec" {
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					// After NAME comes the command to run there.
					return nil, cobra.ShellCompDirectiveDefault
				}
				return fromFile(labNames)(nil, nil, "")
			}
		}
	})
}

// walk calls f on every command under c, c included.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// must panics on an error that only a programming mistake causes (a flag
// name that does not exist, a completion registered twice), so that every
// test that builds the command tree finds it.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// hostNames are the names of the topology's hosts, each described by its
// VTEP.
func hostNames(t *topology.Topology) []string {
	var out []string
	for _, h := range t.Hosts {
		out = append(out, fmt.Sprintf("%s\tvtep %s", h.Name, h.VTEP))
	}
	return out
}

// vnis are the topology's VNIs, each described by its network's name.
func vnis(t *topology.Topology) []string {
	var out []string
	for _, n := range t.Networks {
		out = append(out, fmt.Sprintf("%d\t%s", n.VNI, n.Name))
	}
	return out
}

// labNames are the names lab exec takes: every host, and every port that
// gets its own namespace in the lab, as host/port when the port's name is
// used on more than one host.
func labNames(t *topology.Topology) []string {
	out := hostNames(t)
	count := map[string]int{}
	for _, n := range t.Networks {
		for _, p := range n.Ports {
			count[p.Name]++
		}
	}
	for _, n := range t.Networks {
		for _, p := range n.Ports {
			name := p.Name
			if count[p.Name] > 1 {
				name = p.Host.Name + "/" + p.Name
			}
			out = append(out, fmt.Sprintf("%s\tport on %s, network %s", name, p.Host.Name, n.Name))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
