package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// SwitchOwner is one row of the Switch table: which replica masters a
// switch, and the generation of that mastership.
type SwitchOwner struct {
	DatapathID   uint64
	Host, Bridge string
	Master       string // replica name
	Generation   uint64 // becomes the OpenFlow role request's generation_id
}

// dpidString is how the Switch table spells a datapath ID: 16 hex digits,
// as OVS's other_config:datapath-id does.
func dpidString(dpid uint64) string { return fmt.Sprintf("%016x", dpid) }

// switchFromModel converts a monitored row; false for a datapath_id that
// is not 16 hex digits (not written by ovs-vxctl).
func switchFromModel(m *model.Switch) (SwitchOwner, bool) {
	dpid, err := strconv.ParseUint(m.DatapathID, 16, 64)
	if err != nil || len(m.DatapathID) != 16 {
		return SwitchOwner{}, false
	}
	return SwitchOwner{DatapathID: dpid, Host: m.Host, Bridge: m.Bridge, Master: m.Master, Generation: uint64(m.Generation)}, true
}

// Owner returns the cached Switch row of dpid.
func (c *Client) Owner(dpid uint64) (SwitchOwner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.switches[dpid]
	return o, ok
}

// putSwitch records a monitored Switch row unless s is dead.
func (c *Client) putSwitch(s *session, m *model.Switch) {
	o, ok := switchFromModel(m)
	if !ok {
		c.log.Debug("ignoring a Switch row", zap.String("datapath_id", m.DatapathID))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.isDead() {
		c.putSwitchLocked(o)
	}
}

// putSwitchLocked records a row from the directory (monitor or sync) and
// calls OnSwitch if it changed anything, or if it is the one a claim put in
// the cache ahead of the monitor (unannounced).
func (c *Client) putSwitchLocked(o SwitchOwner) {
	old, had := c.switches[o.DatapathID]
	early, unannounced := c.unannounced[o.DatapathID]
	delete(c.unannounced, o.DatapathID)
	if had && old == o && !(unannounced && early == o) {
		return
	}
	c.switches[o.DatapathID] = o
	if c.o.OnSwitch != nil {
		c.o.OnSwitch(o)
	}
}

// putClaimedLocked puts the row a claim committed in the cache ahead of
// the monitor, so that Owner is right as soon as Claim returns. OnSwitch
// waits for the monitor's event of it: it is never called from inside a
// call of the caller's into the Client.
func (c *Client) putClaimedLocked(o SwitchOwner) {
	c.switches[o.DatapathID] = o
	c.unannounced[o.DatapathID] = o
}

// removeSwitch forgets a deleted Switch row unless s is dead.
func (c *Client) removeSwitch(s *session, m *model.Switch) {
	o, ok := switchFromModel(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok && !s.isDead() {
		delete(c.switches, o.DatapathID)
		delete(c.unannounced, o.DatapathID)
	}
}

// Claim makes this replica (Options.Name) master of dpid when the switch
// has no row, its master is this replica, or its master is not Alive. It
// returns the row as now committed (won) or the current owner (lost). The
// write is one transaction: a wait on the row's (master, generation) as
// cached, then the update with generation+1 and this replica as master; or
// an insert with generation 1 when the cache has no row, which the index
// on datapath_id refuses if another replica inserted first. A live master
// claiming its own switch wins without a new generation. It retries across
// a directory failover; err != nil when the directory cannot commit before
// ctx ends: callers keep whatever role they have.
func (c *Client) Claim(ctx context.Context, dpid uint64, host, bridge string) (SwitchOwner, bool, error) {
	if c.o.Name == "" {
		return SwitchOwner{}, false, fmt.Errorf("claiming switch %s: this client has no replica name", dpidString(dpid))
	}
	for {
		o, won, err := c.claimOnce(ctx, dpid, host, bridge)
		if err == nil {
			if won {
				c.won.Add(1)
			} else {
				c.lost.Add(1)
			}
			return o, won, nil
		}
		c.log.Debug("claim not committed, retrying", zap.String("datapath_id", dpidString(dpid)), zap.Error(err))
		select {
		case <-ctx.Done():
			return SwitchOwner{}, false, fmt.Errorf("claiming switch %s: %w", dpidString(dpid), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// claimOnce is one attempt of Claim; an error means nothing was decided.
func (c *Client) claimOnce(ctx context.Context, dpid uint64, host, bridge string) (SwitchOwner, bool, error) {
	s, err := c.session(ctx)
	if err != nil {
		return SwitchOwner{}, false, err
	}
	cur, have := c.Owner(dpid)
	if have && cur.Master == c.o.Name {
		return cur, true, nil
	}
	if have && c.Alive(cur.Master) {
		return cur, false, nil
	}
	want := SwitchOwner{DatapathID: dpid, Host: host, Bridge: bridge, Master: c.o.Name, Generation: 1}
	row := ovsdb.Row{"host": host, "bridge": bridge, "master": c.o.Name}
	var ops []ovsdb.Operation
	if have {
		want.Generation = cur.Generation + 1
		row["generation"] = int(want.Generation)
		zero := 0
		ops = []ovsdb.Operation{
			{Op: ovsdb.OperationWait, Table: model.SwitchTable, Timeout: &zero, Where: dpidWhere(dpid),
				Columns: []string{"master", "generation"}, Until: string(ovsdb.WaitConditionEqual),
				Rows: []ovsdb.Row{{"master": cur.Master, "generation": int(cur.Generation)}}},
			{Op: ovsdb.OperationUpdate, Table: model.SwitchTable, Where: dpidWhere(dpid), Row: row},
		}
	} else {
		row["datapath_id"], row["generation"] = dpidString(dpid), 1
		ops = []ovsdb.Operation{{Op: ovsdb.OperationInsert, Table: model.SwitchTable, Row: row}}
	}
	_, err = c.commit(ctx, s, ops)
	var refused *refusal
	switch {
	case err == nil:
		// The cache may hold the new row before the monitor says so: no
		// older event of it can still be on its way (each write bumps
		// the generation, and the wait saw the one cached). A newer row
		// the monitor brought meanwhile stays.
		c.mu.Lock()
		if old, had := c.switches[dpid]; !s.isDead() && (!had || old.Generation < want.Generation) {
			c.putClaimedLocked(want)
		}
		c.mu.Unlock()
		c.log.Info("switch claimed", zap.String("datapath_id", dpidString(dpid)), zap.Uint64("generation", want.Generation),
			zap.String("previous_master", cur.Master))
		return want, true, nil
	case errors.As(err, &refused):
		return c.freshOwner(ctx, s, dpid)
	default:
		return SwitchOwner{}, false, err
	}
}

// freshOwner reads dpid's row from the leader after a refused claim: the
// monitor may not have brought the winner yet. If the row names this
// replica, an earlier attempt whose reply was lost did win.
func (c *Client) freshOwner(ctx context.Context, s *session, dpid uint64) (SwitchOwner, bool, error) {
	ops := []ovsdb.Operation{{Op: ovsdb.OperationSelect, Table: model.SwitchTable, Where: dpidWhere(dpid)}}
	res, err := c.commit(ctx, s, ops)
	if err != nil {
		return SwitchOwner{}, false, fmt.Errorf("reading the owner of %s: %w", dpidString(dpid), err)
	}
	if len(res) == 0 || len(res[0].Rows) == 0 {
		return SwitchOwner{}, false, fmt.Errorf("reading the owner of %s: no row after a refused claim", dpidString(dpid))
	}
	r := res[0].Rows[0]
	m := &model.Switch{}
	m.DatapathID, _ = r["datapath_id"].(string)
	m.Host, _ = r["host"].(string)
	m.Bridge, _ = r["bridge"].(string)
	m.Master, _ = r["master"].(string)
	m.Generation = rowInt(r["generation"])
	o, ok := switchFromModel(m)
	if !ok {
		return SwitchOwner{}, false, fmt.Errorf("reading the owner of %s: malformed row %v", dpidString(dpid), r)
	}
	return o, o.Master == c.o.Name, nil
}

// rowInt reads an integer column of a select result, which JSON decoding
// may give as a float64.
func rowInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

// dpidWhere selects dpid's row by the index.
func dpidWhere(dpid uint64) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "datapath_id", Function: ovsdb.ConditionEqual, Value: dpidString(dpid)}}
}
