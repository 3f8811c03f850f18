package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
)

// Foreign flows removed by apply are listed with '!', after the diff, and
// counted; in JSON under "foreign".
func TestReportListsForeignFlows(t *testing.T) {
	added := flows.WithContentCookie(flows.Flow{Table: 1, Priority: 0}, flows.CookieOwned)
	foreign := flows.Flow{Priority: 100, Match: flows.Match{InPort: 1}}
	rep := &agent.Report{Flows: []agent.BridgeFlows{
		{Bridge: "br-int"},
		{Bridge: "br-tun", Diff: openflow.Diff{Add: []flows.Flow{added}}, Foreign: []flows.Flow{foreign}},
	}}
	var b bytes.Buffer
	if err := printReport(&b, "table", "host1", false, rep); err != nil {
		t.Fatal(err)
	}
	want := "br-tun: +" + strings.TrimSpace(added.String()) + "\n" +
		"br-tun: !" + strings.TrimSpace(foreign.String()) + "\n"
	if out := b.String(); !strings.HasPrefix(out, want) || !strings.Contains(out, "changed 0 OVSDB rows, 2 flows") {
		t.Errorf("report:\n%s\nwant it to start with:\n%s", out, want)
	}
	b.Reset()
	if err := printReport(&b, "json", "host1", false, rep); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Flows map[string]map[string][]string `json:"flows"`
	}
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if f := out.Flows["br-tun"]["foreign"]; len(f) != 1 || !strings.Contains(f[0], "priority=100,in_port=1 actions=drop") {
		t.Errorf("JSON foreign flows of br-tun: %q", f)
	}
	// A bridge with only foreign flows is a change.
	if !(&agent.Report{Flows: []agent.BridgeFlows{{Bridge: "br-tun", Foreign: []flows.Flow{foreign}}}}).Changed() {
		t.Error("a report with a foreign flow says nothing changed")
	}
}
