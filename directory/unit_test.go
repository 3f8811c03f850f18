package directory

import (
	"encoding/json"
	"testing"
	"time"

	libmodel "github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
)

// The embedded schema is the one the models were generated from, and holds
// the tables and indexes the client relies on.
func TestSchemaMatchesModel(t *testing.T) {
	var s ovsdb.DatabaseSchema
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatalf("schema: %v", err)
	}
	if s.Name != DatabaseName {
		t.Errorf("schema name %q, want %q", s.Name, DatabaseName)
	}
	dbm, err := model.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := libmodel.NewDatabaseModel(s, dbm); len(errs) > 0 {
		t.Fatalf("models do not match the schema: %v", errs)
	}
	for table, index := range map[string]string{"Endpoint": "vni,mac", "Switch": "datapath_id", "Replica": "name"} {
		ts := s.Table(table)
		if ts == nil || len(ts.Indexes) != 1 || fmtIndex(ts.Indexes[0]) != index {
			t.Errorf("table %s: indexes %v, want [%s]", table, ts, index)
		}
	}
}

func fmtIndex(cols []string) string {
	out := ""
	for i, c := range cols {
		if i > 0 {
			out += ","
		}
		out += c
	}
	return out
}

func TestOpenNeedsEndpoints(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without endpoints worked")
	}
}

// With no member reachable, learned endpoints wait in a bounded queue and
// the rest are dropped and counted, without ever blocking the caller.
func TestLearnDropsOnFullQueue(t *testing.T) {
	c, err := Open(Options{Endpoints: []string{"tcp:127.0.0.1:1"}, QueueSize: 10, FlushRows: 1, MaxBatch: 1,
		ConnectTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := 0
	start := time.Now()
	for i := range 100 {
		if c.Learn(ep(1, i, "h")) {
			accepted++
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Learn blocked for %v", d)
	}
	// The queue holds 10; the writer holds at most one batch of 1.
	if accepted < 10 || accepted > 11 || c.Stats().Dropped != uint64(100-accepted) {
		t.Errorf("accepted %d, stats %+v", accepted, c.Stats())
	}
}

func TestEndpointRowRoundTrip(t *testing.T) {
	e := Endpoint{Key: Key{VNI: 5, MAC: "52:54:00:00:00:01"}, Host: "h", IPs: []string{"10.0.0.1"}, Kind: KindLearned,
		Writer: "ctl1", Updated: time.UnixMilli(1234)}
	row, err := e.row()
	if err != nil {
		t.Fatal(err)
	}
	m := &model.Endpoint{Vni: 5, MAC: e.MAC, Host: row["host"].(string), IPs: []string{"10.0.0.1"},
		Kind: row["kind"].(string), Writer: row["writer"].(string), Updated: row["updated"].(int)}
	if got := fromModel(m); !got.equal(e) {
		t.Errorf("round trip: %+v, want %+v", got, e)
	}
}
