package hwvtep

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep/vtepdbtest"
)

// H1 on a real database: a server known to the controller, then a flood
// of MACs sorting before it in one transaction. Sync keeps the server
// (sticky admission), and so does a new connection told what the old one
// took (KeepLocal, what the controller does on reconnecting). The
// switch's networks are all driven; one it lacks is reported missing.
func TestFloodKeepsKnownServerRealDatabase(t *testing.T) {
	d, _ := hostileDB(t)
	insertLocal(t, d, "a", [][2]string{{"76:33:00:00:00:01", "10.1.1.50"}})
	const max = 100
	c, err := Connect(ctxT(t), d.Unix, nil, zap.NewNop(), WithMaxLocalMACs(max))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local, _, err := c.Sync(ctxT(t), "hw", "tor1", nil, true)
	if err != nil || len(local) != 1 {
		t.Fatalf("first sync: %v, %v; want the server", local, err)
	}
	if nd := c.NotDriven("hw", "tor1", []uint32{100, 200, 300}); len(nd) != 1 || nd[0].VNI != 300 || nd[0].Reason != NotDrivenMissing {
		t.Errorf("NotDriven = %+v, want only VNI 300 missing", nd)
	}
	rows := make([][2]string, 3*max)
	for i := range rows {
		rows[i] = [2]string{fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), ""}
	}
	insertLocalVia(t, d, "a", "10.0.0.98", rows) // the flood: behind another locator, in one transaction
	hasServer := func(l []LocalMAC) bool {
		for _, m := range l {
			if m.MAC.String() == "76:33:00:00:00:01" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(local) < max && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if local, _, err = c.Sync(ctxT(t), "hw", "tor1", nil, true); err != nil {
			t.Fatal(err)
		}
	}
	if len(local) != max || !hasServer(local) {
		t.Fatalf("after the flood: %d MACs taken, server among them: %v; want %d with the server", len(local), hasServer(local), max)
	}

	c2, err := Connect(ctxT(t), d.Unix, nil, zap.NewNop(), WithMaxLocalMACs(max))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.KeepLocal(local)
	if again, _, err := c2.Sync(ctxT(t), "hw", "tor1", nil, true); err != nil || len(again) != max || !hasServer(again) {
		t.Errorf("a new connection told what the old one took: %d MACs, server %v, %v", len(again), hasServer(again), err)
	}
}

// insertLocalVia is insertLocal behind a locator of its own (dst_ip), so
// that it may follow an insertLocal.
func insertLocalVia(t *testing.T, d *vtepdbtest.DB, ls, dstIP string, rows [][2]string) {
	t.Helper()
	u := d.Vtepctl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch", "name="+ls)
	ops := []map[string]any{{"op": "insert", "table": "Physical_Locator", "uuid-name": "self",
		"row": map[string]any{"encapsulation_type": EncapVXLAN, "dst_ip": dstIP}}}
	for _, r := range rows {
		ops = append(ops, map[string]any{"op": "insert", "table": "Ucast_Macs_Local", "row": map[string]any{
			"MAC": r[0], "ipaddr": r[1], "locator": []any{"named-uuid", "self"}, "logical_switch": []any{"uuid", u}}})
	}
	d.Transact(t, ops...)
}
