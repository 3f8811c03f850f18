package hwvtep

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

func TestParseLocalMAC(t *testing.T) {
	for _, c := range []struct{ mac, ip, wantMAC, wantIP, reason string }{
		{"52:54:00:00:00:01", "", "52:54:00:00:00:01", "invalid IP", ""},
		{"52:54:00:00:00:01", "10.1.1.1", "52:54:00:00:00:01", "10.1.1.1", ""},
		{"52-54-00-00-00-0A", "fd00::1", "52:54:00:00:00:0a", "fd00::1", ""},
		{"52:54:00:00:00:01", "::ffff:10.1.1.1", "52:54:00:00:00:01", "10.1.1.1", ""},
		{"not-a-mac", "10.1.1.1", "", "invalid IP", RefusedMAC},
		{"", "", "", "invalid IP", RefusedMAC},
		{"ff:ff:ff:ff:ff:ff", "", "", "invalid IP", RefusedMAC},                                           // broadcast
		{"01:00:5e:00:00:01", "", "", "invalid IP", RefusedMAC},                                           // multicast
		{"00:00:00:00:00:00", "", "", "invalid IP", RefusedMAC},                                           // zero
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "", "", "invalid IP", RefusedMAC}, // InfiniBand
		{"52:54:00:00:00:01\x1b[31m", "", "", "invalid IP", RefusedMAC},
		{"52:54:00:00:00:01", "999.1.1.1", "52:54:00:00:00:01", "invalid IP", RefusedIP},
		{"52:54:00:00:00:01", "224.0.0.1", "52:54:00:00:00:01", "invalid IP", RefusedIP},
		{"52:54:00:00:00:01", "0.0.0.0", "52:54:00:00:00:01", "invalid IP", RefusedIP},
		{"52:54:00:00:00:01", "127.0.0.1", "52:54:00:00:00:01", "invalid IP", RefusedIP},
		{"52:54:00:00:00:01", "255.255.255.255", "52:54:00:00:00:01", "invalid IP", RefusedIP},
		{"52:54:00:00:00:01", "fe80::1%eth0", "52:54:00:00:00:01", "invalid IP", RefusedIP},
	} {
		mac, ip, reason := parseLocalMAC(c.mac, c.ip)
		if mac.String() != c.wantMAC || ip.String() != c.wantIP || reason != c.reason {
			t.Errorf("parseLocalMAC(%q, %q) = %q %q %q, want %q %q %q", c.mac, c.ip, mac, ip, reason, c.wantMAC, c.wantIP, c.reason)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.7.0", "1.7.0", 0}, {"1.6.9", "1.7.0", -1}, {"1.10.0", "1.7.0", 1}, {"2.0.0", "1.7.0", 1},
		{"", "1.7.0", -1}, {"1.7", "1.7.0", -1}, {"x.y.z", "1.7.0", -1}, {"1.-1.0", "1.7.0", -1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if err := checkVersion("unix:x", "1.3.0"); err == nil || !strings.Contains(err.Error(), `version "1.3.0"; ovs-vxctl needs 1.7.0 or later`) {
		t.Errorf("checkVersion 1.3.0: %v", err)
	}
	if err := checkVersion("unix:x", "1.7.0"); err != nil {
		t.Errorf("checkVersion 1.7.0: %v", err)
	}
}

// hostileSnapshot: our logical switch a (VNI 100) with n good local MACs and
// malformed rows, and their logical switch with rows of its own.
func hostileSnapshot(n int) (*snapshot, marks) {
	m := marks{owner: "u", host: "tor1"}
	key, theirKey := 100, 999
	ours := &hwvtep.LogicalSwitch{UUID: uuid(1), Name: "a", TunnelKey: &key,
		OtherConfig: map[string]string{ovsdb.KeyOwner: "u", ovsdb.KeyHost: "tor1", ovsdb.KeyNetwork: "a"}}
	theirs := &hwvtep.LogicalSwitch{UUID: uuid(2), Name: "theirs", TunnelKey: &theirKey, OtherConfig: map[string]string{}}
	s := &snapshot{lswitches: []*hwvtep.LogicalSwitch{ours, theirs}}
	add := func(ls, mac, ip string) {
		s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: uuid(1000 + len(s.ucastLocal)), LogicalSwitch: ls, MAC: mac, Ipaddr: ip})
	}
	for i := n - 1; i >= 0; i-- { // the database's order is no order
		add(ours.UUID, fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16, (i>>8)&0xff, i&0xff), "")
	}
	add(ours.UUID, "52:54:00:00:00:00", "10.1.1.1")      // a duplicate, with an IP
	add(ours.UUID, "ff:ff:ff:ff:ff:ff", "")              // broadcast
	add(ours.UUID, "junk\x1b[2J", "10.1.1.2")            // terminal escape
	add(ours.UUID, "02:00:00:00:00:01", "not an ip")     // taken without its IP
	add(theirs.UUID, "junk", "")                         // not ours: not even counted
	add("00000000-0000-0000-0000-00000000dead", "x", "") // dangling
	return s, m
}

func TestLocalMACsRefusesMalformedAndBounds(t *testing.T) {
	s, m := hostileSnapshot(3)
	local, ref := s.index().localMACs(m, 0)
	var got []string
	for _, l := range local {
		got = append(got, fmt.Sprintf("%d/%s/%s", l.VNI, l.MAC, l.IP))
	}
	want := "100/02:00:00:00:00:01/invalid IP 100/52:54:00:00:00:00/invalid IP 100/52:54:00:00:00:01/invalid IP 100/52:54:00:00:00:02/invalid IP"
	if strings.Join(got, " ") != want {
		t.Errorf("local MACs %q, want %q", strings.Join(got, " "), want)
	}
	if ref.mac != 2 || ref.ip != 1 || ref.limit != 0 || len(ref.examples) != 3 || !strings.Contains(strings.Join(ref.examples, " "), `"junk\x1b[2J"`) {
		t.Errorf("refusals %+v, want 2 MACs and 1 IP, escaped examples", ref)
	}

	s, m = hostileSnapshot(100_000)
	local, ref = s.index().localMACs(m, 8192)
	if len(local) != 8192 || ref.limit != 100_001-8192 || local[0].MAC.String() != "02:00:00:00:00:01" || local[8191].MAC.String() != "52:54:00:00:1f:fe" {
		t.Errorf("bounded: %d MACs (first %s, last %s), %d over the limit", len(local), local[0].MAC, local[len(local)-1].MAC, ref.limit)
	}
}

func TestReportLogsOncePerChange(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	c := &Client{log: zap.New(core), endpoint: "unix:x", maxLocal: 2, metrics: NewMetrics(reg)}
	s, m := hostileSnapshot(3)
	for range 3 {
		_, ref := s.index().localMACs(m, c.maxLocal)
		c.report(ref)
	}
	if logs.Len() != 1 || logs.All()[0].Level != zap.WarnLevel || logs.All()[0].ContextMap()[RefusedLimit] != int64(2) {
		t.Fatalf("logs %+v, want one warning with 2 over the limit", logs.All())
	}
	if n := gauge(t, c.metrics, RefusedMAC); n != 2 {
		t.Errorf("gauge %s = %v, want 2", RefusedMAC, n)
	}
	c.report(refusals{})
	if logs.Len() != 2 || !strings.Contains(logs.All()[1].Message, "all taken again") {
		t.Errorf("logs %+v, want an all-clear", logs.All())
	}
	if n := gauge(t, c.metrics, RefusedLimit); n != 0 {
		t.Errorf("gauge %s = %v after the all-clear, want 0", RefusedLimit, n)
	}
}

func gauge(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.refused.WithLabelValues("unix:x", reason).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue()
}

// FuzzLocalMACs feeds the parser of the switch's Ucast_Macs_Local rows
// anything: what it returns is always a unicast MAC of one of our logical
// switches, once, within the bound, with an IP that is a usable address,
// and every row of ours is either taken or counted.
func FuzzLocalMACs(f *testing.F) {
	f.Add("52:54:00:00:00:01", "10.1.1.1", "52:54:00:00:00:01", "", uint8(1))
	f.Add("ff:ff:ff:ff:ff:ff", "::1", "0000.0000.0001", "fe80::1%x", uint8(0))
	f.Add("52-54-00-00-00-02", "224.0.0.1", "\x00", "1.2.3", uint8(5))
	f.Fuzz(func(t *testing.T, mac1, ip1, mac2, ip2 string, max uint8) {
		s, m := hostileSnapshot(0)
		s.ucastLocal = nil
		for i, r := range [][2]string{{mac1, ip1}, {mac2, ip2}, {mac1, ip2}} {
			s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: uuid(10 + i), LogicalSwitch: uuid(1 + i%2), MAC: r[0], Ipaddr: r[1]})
		}
		local, ref := s.index().localMACs(m, int(max))
		if max > 0 && len(local) > int(max) {
			t.Fatalf("%d MACs over the bound %d", len(local), max)
		}
		for i, l := range local {
			if len(l.MAC) != 6 || l.MAC[0]&1 != 0 || l.VNI != 100 {
				t.Fatalf("taken: %+v", l)
			}
			if l.IP.IsValid() && (l.IP.IsMulticast() || l.IP.IsUnspecified() || l.IP.IsLoopback() || l.IP.Zone() != "" || l.IP.Is4In6()) {
				t.Fatalf("taken IP: %v", l.IP)
			}
			if i > 0 && local[i-1].MAC.String() >= l.MAC.String() {
				t.Fatalf("not sorted or not once: %v", local)
			}
		}
		if ours := 2; len(local)+ref.mac+ref.limit > ours || (ref.mac == 0 && ref.limit == 0 && len(local) == 0) {
			t.Fatalf("%d taken, refusals %+v of %d rows of ours", len(local), ref, ours)
		}
	})
}
