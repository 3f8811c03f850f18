package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
)

// volatileColumns are OVSDB columns ovs-vswitchd rewrites by itself
// (counters, link state, negotiated values): they change without anyone
// configuring anything, so state comparisons ignore them.
var volatileColumns = map[string]bool{
	"statistics": true, "status": true, "link_state": true, "link_resets": true, "link_speed": true,
	"duplex": true, "admin_state": true, "mtu": true, "ifindex": true, "lacp_current": true,
	"bfd_status": true, "cfm_fault": true, "cfm_fault_status": true, "cfm_health": true,
	"cfm_remote_mpids": true, "cfm_remote_opstate": true, "cfm_flap_count": true,
	"is_connected": true, "rstp_status": true,
}

// hostState is what a host holds: its OVSDB contents without the volatile
// columns, and the flows of each bridge without the learned ones (learn()
// may add an entry at any time from background traffic such as IPv6
// neighbour discovery).
type hostState struct {
	ovsdb []string            // "table: col=value col=value ...", sorted
	flows map[string][]string // bridge -> flows, sorted
}

// snapshot reads host's state.
func (l *labEnv) snapshot(t testing.TB, host string) hostState {
	t.Helper()
	r := mustRun(t, "ovsdb-client", "-f", "json", "dump", l.inst(host).DBEndpoint(), "Open_vSwitch")
	st := hostState{ovsdb: parseDump(t, r.stdout), flows: map[string][]string{}}
	for _, br := range strings.Fields(l.vsctl(t, host, "list-br")) {
		st.flows[br] = sorted(withoutCookiePrefix(lines(l.ofctl(t, host, "dump-flows", br, "--no-stats")), "0x7679"))
	}
	return st
}

// parseDump turns `ovsdb-client -f json dump` output (one JSON object per
// table) into sorted row lines without volatile columns.
func parseDump(t testing.TB, out string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var rows []string
	for {
		var table struct {
			Caption  string              `json:"caption"`
			Headings []string            `json:"headings"`
			Data     [][]json.RawMessage `json:"data"`
		}
		if err := dec.Decode(&table); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("parsing ovsdb-client dump: %v", err)
		}
		for _, row := range table.Data {
			var b strings.Builder
			b.WriteString(strings.TrimSuffix(table.Caption, " table") + ":")
			for i, col := range table.Headings {
				if volatileColumns[col] || i >= len(row) {
					continue
				}
				fmt.Fprintf(&b, " %s=%s", col, row[i])
			}
			rows = append(rows, b.String())
		}
	}
	if len(rows) == 0 {
		t.Fatalf("ovsdb-client dump returned no rows: %q", out)
	}
	sort.Strings(rows)
	return rows
}

// sameState fails the test with the differences when a and b differ.
func sameState(t testing.TB, what string, a, b hostState) {
	t.Helper()
	if !equalLines(a.ovsdb, b.ovsdb) {
		t.Errorf("%s: OVSDB contents changed:\n%s", what, diffLines(a.ovsdb, b.ovsdb))
	}
	var bridges []string
	seen := map[string]bool{}
	for br := range a.flows {
		bridges, seen[br] = append(bridges, br), true
	}
	for br := range b.flows {
		if !seen[br] {
			bridges = append(bridges, br)
		}
	}
	sort.Strings(bridges)
	for _, br := range bridges {
		if !equalLines(a.flows[br], b.flows[br]) {
			t.Errorf("%s: flows of %s changed:\n%s", what, br, diffLines(a.flows[br], b.flows[br]))
		}
	}
}
