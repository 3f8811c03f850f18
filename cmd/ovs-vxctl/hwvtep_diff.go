package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
)

// hardwareDiff sorts the change lines of a hardware VTEP plan into what
// diff-flows prints: lines only on the switch start with '-', lines only
// desired with '+', and a change in place ("~ SUBJECT OLD -> NEW") becomes
// the pair "-SUBJECT OLD", "+SUBJECT NEW". The JSON groups are delete, add
// and modify (the plan's lines as they are).
func hardwareDiff(changes []string) (lines []string, groups map[string][]string) {
	groups = map[string][]string{"add": {}, "modify": {}, "delete": {}}
	for _, c := range changes {
		switch {
		case strings.HasPrefix(c, "+ "):
			groups["add"] = append(groups["add"], c[2:])
			lines = append(lines, "+"+c[2:])
		case strings.HasPrefix(c, "- "):
			groups["delete"] = append(groups["delete"], c[2:])
			lines = append(lines, "-"+c[2:])
		default:
			c = strings.TrimPrefix(c, "~ ")
			groups["modify"] = append(groups["modify"], c)
			lines = append(lines, splitInPlace(c)...)
		}
	}
	return lines, groups
}

// splitInPlace turns "SUBJECT OLD -> NEW" into "-SUBJECT OLD" and
// "+SUBJECT NEW". SUBJECT is "logical_switch NAME COLUMN" or "unknown-dst
// NAME", the forms the planner writes; anything else stays one '~' line.
func splitInPlace(c string) []string {
	old, nu, ok := strings.Cut(c, " -> ")
	n := 2
	if strings.HasPrefix(c, "logical_switch ") {
		n = 3
	}
	f := strings.SplitN(old, " ", n+1)
	if !ok || len(f) != n+1 || (n == 2 && f[0] != "unknown-dst") {
		return []string{"~" + c}
	}
	subject := strings.Join(f[:n], " ")
	return []string{"-" + subject + " " + f[n], "+" + subject + " " + nu}
}

// runHardwareDiff is diff-flows for hardware VTEP host o.Host: the
// changes a dry-run apply would make to the switch's hardware_vtep rows.
func (g *globalOptions) runHardwareDiff(cmd *cobra.Command, o hwvtep.Options) error {
	defer o.Log.Sync()
	ctx, cancel := g.context()
	defer cancel()
	o.DryRun = true
	rep, err := hwvtep.Apply(ctx, o)
	if err != nil {
		return fmt.Errorf("comparing the hardware_vtep rows of host %s: %w", o.Host.Name, err)
	}
	if err := printHardwareDiff(cmd.OutOrStdout(), g.format, o.Host.Name, rep); err != nil {
		return err
	}
	if rep.Changed() {
		return &exitError{code: 2}
	}
	return nil
}

// printHardwareDiff prints diff-flows' output for a hardware VTEP.
func printHardwareDiff(w io.Writer, format, host string, rep *hwvtep.Report) error {
	lines, groups := hardwareDiff(rep.Changes)
	if format == "json" {
		return writeJSON(w, map[string]any{"host": host, "differ": rep.Changed(), "hardware_vtep": groups, "notes": nonNil(rep.Notes)})
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "hardware_vtep:")
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return nil
}
