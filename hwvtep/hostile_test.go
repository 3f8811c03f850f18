package hwvtep

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep/vtepdbtest"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
)

// A hardware VTEP's database is outside input: these tests give apply,
// show, destroy and the controller's Sync a real ovsdb-server whose
// contents (or schema) a careless or hostile switch chose.

// hostileDB is a database with physical switch tor1 (p0, p1, p2) to which
// hwTopology was applied.
func hostileDB(t *testing.T) (*vtepdbtest.DB, func(extra string) Options) {
	t.Helper()
	d := vtepdbtest.Start(t, vtepdbtest.Options{})
	d.Switch(t, "tor1", "10.0.0.9", "p0", "p1", "p2")
	opts := func(extra string) Options {
		top := hwTopology(t, d.Unix, extra)
		return Options{Topology: top, Host: top.Host("tor1")}
	}
	if _, err := Apply(ctxT(t), opts("")); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return d, opts
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// insertLocal inserts Ucast_Macs_Local rows (MAC, ipaddr) of logical
// switch ls (by name) behind a new locator, in one transaction: vtep-ctl
// checks what it writes, a switch need not.
func insertLocal(t *testing.T, d *vtepdbtest.DB, ls string, rows [][2]string) {
	t.Helper()
	u := d.Vtepctl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch", "name="+ls)
	ops := []map[string]any{{"op": "insert", "table": "Physical_Locator", "uuid-name": "self",
		"row": map[string]any{"encapsulation_type": EncapVXLAN, "dst_ip": "10.0.0.99"}}}
	for _, r := range rows {
		ops = append(ops, map[string]any{"op": "insert", "table": "Ucast_Macs_Local", "row": map[string]any{
			"MAC": r[0], "ipaddr": r[1], "locator": []any{"named-uuid", "self"}, "logical_switch": []any{"uuid", u}}})
	}
	d.Transact(t, ops...)
}

func TestHostileLocalMACsRealDatabase(t *testing.T) {
	d, opts := hostileDB(t)
	insertLocal(t, d, "a", [][2]string{
		{"52:54:00:00:00:01", "10.1.1.1"}, {"52:54:00:00:00:02", "999.1.1.1"}, {"52:54:00:00:00:03", "224.0.0.1"},
		{"not-a-mac", "10.1.1.4"}, {"ff:ff:ff:ff:ff:ff", ""}, {"00:00:00:00:00:00", ""},
		{"52:54:00:00:00:05\x1b[2J", "10.1.1.5"}, {strings.Repeat("5", 10000), ""},
	})
	core, logs := observer.New(zap.InfoLevel)
	c, err := Connect(ctxT(t), d.Unix, nil, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var local []LocalMAC
	for range 3 { // three polls: one warning
		if local, _, err = c.Sync(ctxT(t), "hw", "tor1", nil, false); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	var got []string
	for _, l := range local {
		got = append(got, fmt.Sprintf("%d/%s/%s", l.VNI, l.MAC, l.IP))
	}
	if want := "100/52:54:00:00:00:01/10.1.1.1 100/52:54:00:00:00:02/invalid IP 100/52:54:00:00:00:03/invalid IP"; strings.Join(got, " ") != want {
		t.Errorf("local MACs %q, want %q", strings.Join(got, " "), want)
	}
	warns := logs.FilterLevelExact(zap.WarnLevel).All()
	if len(warns) != 1 || warns[0].ContextMap()[RefusedMAC] != int64(5) || warns[0].ContextMap()[RefusedIP] != int64(2) {
		t.Errorf("warnings %+v, want one: 5 malformed MACs, 2 malformed IPs", warns)
	} else {
		t.Logf("%s %v", warns[0].Message, warns[0].ContextMap())
	}
	// Sync keeps its list while nothing changes, and sees a change.
	d.Vtepctl(t, "add-ucast-local", "a", "52:54:00:00:00:10", "10.0.0.9")
	waitLocal := func(what string, cond func([]LocalMAC) bool) {
		t.Helper()
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			local, _, err := c.Sync(ctxT(t), "hw", "tor1", nil, false)
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if cond(local) {
				return
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("%s: local MACs %v", what, local)
			}
		}
	}
	has := func(mac string) func([]LocalMAC) bool {
		return func(l []LocalMAC) bool {
			return slices.ContainsFunc(l, func(m LocalMAC) bool { return m.MAC.String() == mac })
		}
	}
	waitLocal("a MAC the switch added", has("52:54:00:00:00:10"))
	d.Vtepctl(t, "del-ucast-local", "a", "52:54:00:00:00:01")
	waitLocal("a MAC the switch withdrew", func(l []LocalMAC) bool { return !has("52:54:00:00:00:01")(l) })

	// show reads them as they are (the CLI escapes them); apply and
	// destroy are not disturbed.
	st, err := Show(ctxT(t), opts(""))
	if err != nil || len(st.Switches) != 2 || len(st.Switches[0].LocalMACs) != 8 {
		t.Fatalf("show: %v %+v", err, st)
	}
	if rep, err := Apply(ctxT(t), opts("")); err != nil || rep.Changed() {
		t.Errorf("re-apply: %v %q, want nothing to change", err, rep)
	}
	if rep, err := Destroy(ctxT(t), opts("")); err != nil || !rep.Changed() {
		t.Fatalf("destroy: %v", err)
	}
	if got := d.Vtepctl(t, "list-ls"); got != "" {
		t.Errorf("after destroy: logical switches %q", got)
	}
}

// 100k local MACs: Sync takes the bound's worth, logs once, and stays
// usable; the figures are logged (make bench is where speed is judged).
func TestManyLocalMACsRealDatabase(t *testing.T) {
	d, opts := hostileDB(t)
	const n = 100_000
	rows := make([][2]string, n)
	for i := range rows {
		rows[i] = [2]string{fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", i>>24, (i>>16)&0xff, (i>>8)&0xff, i&0xff), ""}
	}
	start := time.Now()
	insertLocal(t, d, "a", rows)
	t.Logf("%d Ucast_Macs_Local rows inserted in %v", n, time.Since(start).Round(time.Millisecond))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	core, logs := observer.New(zap.InfoLevel)
	start = time.Now()
	c, err := Connect(ctxT(t), d.Unix, nil, zap.New(core), WithMaxLocalMACs(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connected := time.Since(start)
	var local []LocalMAC
	var polls []time.Duration
	for range 5 {
		s := time.Now()
		if local, _, err = c.Sync(ctxT(t), "hw", "tor1", nil, false); err != nil {
			t.Fatalf("sync: %v", err)
		}
		polls = append(polls, time.Since(s).Round(time.Millisecond))
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("connect (initial monitor of %d rows) %v; Sync %v; heap %d MB -> %d MB with the client's cache",
		n, connected.Round(time.Millisecond), polls, before.HeapAlloc>>20, after.HeapAlloc>>20)
	if len(local) != 4096 || local[0].MAC.String() != "52:54:00:00:00:00" {
		t.Errorf("Sync took %d MACs, want the bound, 4096, from the lowest", len(local))
	}
	t.Logf("%d log entries, %d of them libovsdb dropping events", logs.Len(), logs.FilterMessageSnippet("dropping event").Len())
	warns := logs.FilterLevelExact(zap.WarnLevel).All()
	if len(warns) != 1 || warns[0].ContextMap()[RefusedLimit] != int64(n-4096) {
		t.Errorf("warnings %+v, want one with %d over the limit", warns, n-4096)
	}
	start = time.Now()
	if rep, err := Apply(ctxT(t), opts("")); err != nil || rep.Changed() {
		t.Errorf("re-apply: %v, want nothing to change", err)
	}
	t.Logf("apply with %d local MACs on the switch: %v", n, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	rep, err := Destroy(ctxT(t), opts(""))
	if err != nil || len(rep.Changes) < n {
		t.Fatalf("destroy: %v, %d changes", err, len(rep.Changes))
	}
	t.Logf("destroy of a logical switch with %d local MACs: %v", n, time.Since(start).Round(time.Millisecond))
	if got := d.Vtepctl(t, "list-ls"); got != "" {
		t.Errorf("after destroy: logical switches %q", got)
	}
}

// Logical switches that are not ours, whatever their names, marks or
// keys, are never changed: apply refuses to take them over, destroy
// leaves them.
func TestForeignLogicalSwitchesRealDatabase(t *testing.T) {
	d, opts := hostileDB(t)
	// Marked by the same topology for another host, bound on p2.
	d.Vtepctl(t, "add-ls", "x")
	d.Vtepctl(t, "set", "Logical_Switch", "x", "tunnel_key=500", "other_config:ovs-vxctl-owner=hw", "other_config:ovs-vxctl-host=tor2")
	d.Vtepctl(t, "bind-ls", "tor1", "p2", "5", "x")
	// Our topology's mark without a host; a network c wants its name.
	d.Vtepctl(t, "add-ls", "c")
	d.Vtepctl(t, "set", "Logical_Switch", "c", "other_config:ovs-vxctl-owner=hw")
	// Someone else takes a's VNI after our apply.
	d.Vtepctl(t, "add-ls", "z")
	d.Vtepctl(t, "set", "Logical_Switch", "z", "tunnel_key=100")
	before := d.Vtepctl(t, "list", "Logical_Switch", "c", "x", "z")

	_, err := Apply(ctxT(t), opts("  - {name: c, vni: 300, ports: [{host: tor1, name: p2, vlan: 7}]}\n"))
	for _, want := range []string{
		`logical switch c already exists and it belongs to topology "hw" host ""`,
		`logical switch z already has tunnel_key 100 (network a's VNI) and it was not created by ovs-vxctl`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("apply: %v; want it to say %q", err, want)
		}
	}
	if rep, err := Destroy(ctxT(t), opts("")); err != nil || !rep.Changed() {
		t.Fatalf("destroy: %v", err)
	}
	if got := d.Vtepctl(t, "list-ls"); got != "c\nx\nz" {
		t.Errorf("after destroy: logical switches %q, want c, x, z", got)
	}
	if got := d.Vtepctl(t, "list", "Logical_Switch", "c", "x", "z"); got != before {
		t.Errorf("foreign logical switches changed:\n%s\nwas:\n%s", got, before)
	}
	if got := d.Vtepctl(t, "list-bindings", "tor1", "p2"); got != "0005 x" {
		t.Errorf("p2's bindings %q, want x's", got)
	}
}

// The physical switch: missing, or tunnelling from another address.
func TestPhysicalSwitchRealDatabase(t *testing.T) {
	d := vtepdbtest.Start(t, vtepdbtest.Options{})
	top := hwTopology(t, d.Unix, "")
	o := Options{Topology: top, Host: top.Host("tor1")}
	if _, err := Apply(ctxT(t), o); err == nil || !strings.Contains(err.Error(), `no physical switch "tor1" (it has: none)`) {
		t.Errorf("apply without the switch: %v", err)
	}
	if _, err := Show(ctxT(t), o); err == nil || !strings.Contains(err.Error(), `no physical switch "tor1"`) {
		t.Errorf("show without the switch: %v", err)
	}
	d.Switch(t, "tor1", "", "p0")
	if _, err := Apply(ctxT(t), o); err == nil || !strings.Contains(err.Error(), "physical switch tor1 has no port p1 (it has: p0)") {
		t.Errorf("apply without port p1: %v", err)
	}
	d.Vtepctl(t, "add-port", "tor1", "p1")
	rep, err := Apply(ctxT(t), o)
	if err != nil || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "tunnel_ips none, not the host's vtep 10.0.0.9") {
		t.Errorf("apply to a switch without tunnel_ips: %v %q", err, rep)
	}
	d.Vtepctl(t, "set", "Physical_Switch", "tor1", "tunnel_ips=10.9.9.9")
	rep, err = Apply(ctxT(t), o)
	if err != nil || rep.Changed() || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "tunnel_ips 10.9.9.9, not the host's vtep 10.0.0.9") {
		t.Errorf("apply to a switch with other tunnel_ips: %v %q", err, rep)
	}
}

// A database with an older hardware_vtep schema, or none, is refused at
// connection with an error naming what it serves.
func TestSchemaVersionRealDatabase(t *testing.T) {
	for name, c := range map[string]struct {
		schema func(t *testing.T) string
		want   string
	}{
		"1.6.0, same columns": {func(t *testing.T) string { return vtepdbtest.OldSchema(t, "1.6.0") },
			`serves hardware_vtep schema version "1.6.0"; ovs-vxctl needs 1.7.0 or later`},
		"1.3.0, fewer columns": {func(t *testing.T) string {
			return vtepdbtest.OldSchema(t, "1.3.0", "Logical_Switch.replication_mode", "Logical_Switch.other_config")
		}, `serves hardware_vtep schema version "1.3.0"; ovs-vxctl needs 1.7.0 or later`},
		"1.7.0, a column missing": {func(t *testing.T) string { return vtepdbtest.OldSchema(t, "1.7.0", "Logical_Switch.other_config") },
			`serves hardware_vtep schema version "1.7.0", which lacks what ovs-vxctl uses`},
		"Open_vSwitch": {func(t *testing.T) string { return ovsrun.SchemaPath }, "serves no hardware_vtep database"},
	} {
		t.Run(name, func(t *testing.T) {
			d := vtepdbtest.Start(t, vtepdbtest.Options{Schema: c.schema(t)})
			top := hwTopology(t, d.Unix, "")
			_, err := Apply(ctxT(t), Options{Topology: top, Host: top.Host("tor1")})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("apply: %v; want %q", err, c.want)
			}
			t.Log(err)
		})
	}
}
