package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// requireSubcommands makes every command under root that only groups
// subcommands (lab, completion) refuse an unknown one. Cobra would print
// the group's help and exit 0 for `lab dwon`, so a typo in a script would
// pass for success. Without arguments the group still prints its help.
func requireSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		requireSubcommands(c)
		if !c.HasSubCommands() || c.Runnable() {
			continue
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownSubcommand(cmd, args[0])
		}
	}
}

// unknownSubcommand is the error for `PARENT NAME` when PARENT has no
// subcommand NAME: it names the valid ones and, like cobra for top-level
// verbs, the closest one.
func unknownSubcommand(parent *cobra.Command, name string) error {
	var valid []string
	for _, c := range parent.Commands() {
		if c.IsAvailableCommand() {
			valid = append(valid, c.Name())
		}
	}
	if parent.SuggestionsMinimumDistance <= 0 {
		parent.SuggestionsMinimumDistance = 2 // cobra's default, which only its root applies
	}
	hint := ""
	if s := parent.SuggestionsFor(name); len(s) > 0 {
		hint = fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return fmt.Errorf("unknown subcommand %q for %q%s; valid subcommands: %s",
		name, parent.CommandPath(), hint, strings.Join(valid, ", "))
}
