package main

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the release this binary was built from. The Makefile stamps it
// with -ldflags "-X main.version=$(git describe --tags --always --dirty)".
// It is the program's one package-level variable, because the linker can
// only set a package-level string variable; nothing writes it at run time.
var version string

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Go version and the OVS version found",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), g.format)
		},
	}
}

// printVersion prints what `version` and `--version` print.
func printVersion(w io.Writer, format string) error {
	v := buildVersion(version)
	ovs := ovsVersion()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	if format == "json" {
		return writeJSON(w, map[string]string{"ovs-vxctl": v, "go": runtime.Version(), "platform": platform, "ovs": ovs})
	}
	_, err := fmt.Fprintf(w, "ovs-vxctl %s\n%s %s\nOpen vSwitch %s\n", v, runtime.Version(), platform, ovs)
	return err
}

// buildVersion is stamped when the build stamped one (make); otherwise what
// the Go toolchain recorded: the module version of `go install ...@vX`, or
// the VCS revision of a plain `go build` in a git checkout (unless
// -buildvcs=false); "devel" when neither is known.
func buildVersion(stamped string) string {
	if stamped != "" {
		return stamped
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel-" + rev[:min(12, len(rev))]
	if dirty {
		v += "-dirty"
	}
	return v
}

// ovsVersion is the version of the Open vSwitch tools on PATH, from
// `ovs-vsctl --version` ("ovs-vsctl (Open vSwitch) 3.1.0"), or "not found".
func ovsVersion() string {
	out, err := exec.Command("ovs-vsctl", "--version").Output()
	if err != nil {
		return "not found (no ovs-vsctl on PATH)"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if _, v, ok := strings.Cut(first, "(Open vSwitch) "); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(first)
}
