package openflow

import (
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

func TestComputeDiff(t *testing.T) {
	a := flows.Flow{Table: 1, Priority: 5, Cookie: 1, Match: flows.Match{InPort: 1}, Actions: []flows.Action{flows.Output{Port: 2}}}
	b := flows.Flow{Table: 1, Priority: 5, Cookie: 2, Match: flows.Match{InPort: 2}, Actions: []flows.Action{flows.Output{Port: 1}}}
	c := flows.Flow{Table: 2, Priority: 1, Cookie: 3}
	a2 := a
	a2.Cookie, a2.Actions = 4, []flows.Action{flows.Output{Port: 3}}
	d := flows.Flow{Table: 9, Priority: 1, Cookie: 5}

	if diff := ComputeDiff([]flows.Flow{a, b, c}, []flows.Flow{c, b, a}); !diff.Empty() || diff.String() != "" {
		t.Errorf("same flows in another order: %+v", diff)
	}
	diff := ComputeDiff([]flows.Flow{a2, b, d}, []flows.Flow{a, b, c})
	if len(diff.Modify) != 1 || diff.Modify[0].Cookie != 4 || diff.Replaced[0].Cookie != 1 {
		t.Errorf("modify: %+v", diff)
	}
	if len(diff.Add) != 1 || diff.Add[0].Table != 9 || len(diff.Delete) != 1 || diff.Delete[0].Table != 2 {
		t.Errorf("add/delete: %+v", diff)
	}
	want := strings.Join([]string{
		"-cookie=0x1, table=1, priority=5,in_port=1 actions=output:2",
		"+cookie=0x4, table=1, priority=5,in_port=1 actions=output:3",
		"-cookie=0x3, table=2, priority=1 actions=drop",
		"+cookie=0x5, table=9, priority=1 actions=drop",
	}, "\n") + "\n"
	if diff.String() != want {
		t.Errorf("diff text:\n%s\nwant:\n%s", diff, want)
	}
	if diff := ComputeDiff(nil, nil); !diff.Empty() {
		t.Errorf("empty: %+v", diff)
	}
	// Two installed flows of one Key (possible when the match is lossy):
	// the first pairs with the desired flow, the other goes.
	x := a
	x.Cookie = 9
	diff = ComputeDiff([]flows.Flow{a2}, []flows.Flow{a, x})
	if len(diff.Modify) != 1 || len(diff.Delete) != 1 || len(diff.Add) != 0 {
		t.Errorf("duplicate installed keys: %+v", diff)
	}
}
