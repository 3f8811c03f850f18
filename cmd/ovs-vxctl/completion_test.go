package main

import (
	"slices"
	"strings"
	"testing"
)

// complete runs cobra's hidden completion verb and returns the candidates
// (without descriptions) and the directive line.
func complete(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	code, out, stderr := runCLI(t, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var names []string
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		names = append(names, name)
	}
	return names, lines[len(lines)-1]
}

func TestCompletion(t *testing.T) {
	tenants := "../../examples/two-tenants/topology.yaml"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-f", threeHosts, "--host", ""}, []string{"host1", "host2", "host3"}},
		{[]string{"apply", "-f", threeHosts, "--host", "h"}, []string{"host1", "host2", "host3"}},
		{[]string{"show", "--format", ""}, []string{"table", "json"}},
		{[]string{"--log-format", ""}, []string{"console", "json"}},
		{[]string{"flows", "--bridge", ""}, []string{"br-tun", "br-int"}},
		{[]string{"fdb", "-f", tenants, "--vni", ""}, []string{"100", "200"}},
		{[]string{"lab", ""}, []string{"down", "exec", "status", "up"}},
		{[]string{"lab", "exec", "-f", threeHosts, ""}, []string{"host1", "host2", "host3", "vm1", "vm2", "vm3"}},
	} {
		got, directive := complete(t, tc.args...)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("complete %v = %v (%s), want %v", tc.args, got, directive, tc.want)
				break
			}
		}
	}
	if got, _ := complete(t, "--host", ""); len(got) != 0 {
		t.Errorf("--host without -f offers %v", got)
	}
}
