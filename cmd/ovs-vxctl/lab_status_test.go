package main

import (
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// TestPrintLabStatus: the controller and agent lines say what runs, and
// the columns stay aligned whatever the widths.
func TestPrintLabStatus(t *testing.T) {
	st := &lab.StatusReport{Topology: "demo", Dir: "/run/x", Underlay: true,
		Hosts: []lab.HostStatus{
			{Name: "host1", NS: "vx-demo.host1", Managed: true, NSExists: true, OVSDBServer: true, Vswitchd: true,
				Bridges: []string{"br-int", "br-tun"}, Agent: &lab.AgentStatus{Started: true, Running: true, PID: 4242}},
			{Name: "a-much-longer-host-name", NS: "vx-demo.a-much-longer-host-name", Managed: true, NSExists: true,
				Agent: &lab.AgentStatus{Started: true, PID: 17}},
			{Name: "kv", NS: "vx-demo.kv", NSExists: true},
		},
		Controllers: []lab.ControllerStatus{
			{Target: "tcp:192.168.50.254:6653", Running: true, PID: 99, Listen: []string{"tcp:192.168.50.254:6653"}, Metrics: "127.0.0.1:9464"},
			{Target: "tcp:[fd00::fe]:6653"},
		},
	}
	var b strings.Builder
	printLabStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		"controller tcp:192.168.50.254:6653: running, pid 99, listening on tcp:192.168.50.254:6653, metrics on 127.0.0.1:9464\n",
		"controller tcp:[fd00::fe]:6653: not running\n",
		"running, pid 4242",
		"not running (pid 17 gone)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lab status lacks %q:\n%s", want, out)
		}
	}
	// Every row of the hosts' table starts its AGENT column at the same
	// offset as the header.
	ls := strings.Split(out, "\n")
	col := strings.Index(ls[1], "AGENT")
	for _, l := range ls[2:5] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row out of line with the header (AGENT at %d):\n%s\n%s", col, ls[1], l)
		}
	}
}
