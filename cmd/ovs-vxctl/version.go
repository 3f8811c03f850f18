package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Go version and the OVS version found",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			ovs := "not found"
			if out, err := exec.Command("ovs-vsctl", "--version").Output(); err == nil {
				ovs = strings.SplitN(string(out), "\n", 2)[0]
			}
			info := map[string]string{"ovs-vxctl": v, "go": runtime.Version(), "ovs": ovs}
			if g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ovs-vxctl %s\n%s %s/%s\nOVS: %s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, ovs)
			return nil
		},
	}
}
