package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// SwitchOwner is one row of the Switch table: which replica masters a
// switch, and the generation of that mastership. A row of a claim key
// (ClaimKey) has DatapathID 0.
type SwitchOwner struct {
	DatapathID   uint64
	Host, Bridge string
	Master       string // replica name; "" when released: nobody owns it
	Generation   uint64 // becomes the OpenFlow role request's generation_id
}

// broken reports whether o's generation cannot be counted up: the row was
// written at or beyond MaxGeneration.
func (o SwitchOwner) broken() bool { return o.Generation >= MaxGeneration }

// MaxGeneration bounds the generations the directory holds: the column is
// a signed 64-bit integer, and a row far above any real count of takeovers
// is somebody's mistake, not something to add 1 to.
const MaxGeneration = 1 << 62

// HardwareVTEPKey is the claim key (ClaimKey) of the hardware VTEP on
// host: the replica holding it is the only one writing its database.
func HardwareVTEPKey(host string) string { return keyHardwareVTEP + host }

const keyHardwareVTEP = "hwvtep:"

// ErrGenerationRange is a claim that would need a generation above
// MaxGeneration: nothing is written.
var ErrGenerationRange = errors.New("generation out of range")

// dpidString is how the Switch table spells a datapath ID: 16 hex digits,
// as OVS's other_config:datapath-id does.
func dpidString(dpid uint64) string { return fmt.Sprintf("%016x", dpid) }

// parseKey checks a datapath_id column: 16 hex digits (dpid, isDPID) or a
// claim key ("hwvtep:" and a host name).
func parseKey(key string) (dpid uint64, isDPID bool, err error) {
	if len(key) == 16 {
		if d, perr := strconv.ParseUint(key, 16, 64); perr == nil {
			return d, true, nil
		}
	}
	if strings.HasPrefix(key, keyHardwareVTEP) && len(key) > len(keyHardwareVTEP) {
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("datapath_id %q is neither 16 hex digits nor %q and a host", key, keyHardwareVTEP)
}

// switchFromModel converts a monitored row; an error for a datapath_id
// ovs-vxctl does not write, and for a generation out of range (which
// returns the row too, its Generation MaxGeneration: such a row must stay
// in the cache, or the row it replaced would be taken for the truth, and a
// claim of it starts the generation again; see claimOnce).
func switchFromModel(m *model.Switch) (SwitchOwner, error) {
	dpid, _, err := parseKey(m.DatapathID)
	if err != nil {
		return SwitchOwner{}, err
	}
	o := SwitchOwner{DatapathID: dpid, Host: m.Host, Bridge: m.Bridge, Master: m.Master, Generation: uint64(m.Generation)}
	if m.Generation < 0 || m.Generation > MaxGeneration {
		o.Generation = MaxGeneration
		return o, fmt.Errorf("switch %s: generation %d: %w (0..%d)", m.DatapathID, m.Generation, ErrGenerationRange, MaxGeneration)
	}
	return o, nil
}

// usable reports whether a row switchFromModel converted with err belongs
// in the cache: all but a datapath_id ovs-vxctl does not write.
func usable(err error) bool { return err == nil || errors.Is(err, ErrGenerationRange) }

// isDPIDKey reports whether key is a switch's (16 hex digits), not a
// claim key's.
func isDPIDKey(key string) bool {
	_, isDPID, err := parseKey(key)
	return err == nil && isDPID
}

// malformedSwitch logs and counts a Switch row the cache does not take.
func (c *Client) malformedSwitch(m *model.Switch, err error) {
	c.malformed.Add(1)
	c.log.Warn("ignoring a Switch row of the directory", zap.String("datapath_id", m.DatapathID), zap.String("master", m.Master),
		zap.Int("generation", m.Generation), zap.Error(err))
}

// Owner returns the cached Switch row of dpid.
func (c *Client) Owner(dpid uint64) (SwitchOwner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.switches[dpid]
	return o, ok
}

// KeyOwner returns the cached row of a claim key (ClaimKey).
func (c *Client) KeyOwner(key string) (SwitchOwner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownerLocked(key)
}

// ownerLocked is the cached row of key: a datapath ID's or a claim key's.
func (c *Client) ownerLocked(key string) (SwitchOwner, bool) {
	if dpid, isDPID, err := parseKey(key); err == nil && isDPID {
		o, ok := c.switches[dpid]
		return o, ok
	}
	o, ok := c.keyed[key]
	return o, ok
}

// putSwitch records a monitored Switch row unless s is dead.
func (c *Client) putSwitch(s *session, m *model.Switch) {
	o, err := switchFromModel(m)
	if err != nil {
		c.malformedSwitch(m, err)
	}
	if !usable(err) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.isDead() {
		c.putSwitchLocked(m.DatapathID, o)
	}
}

// putSwitchLocked records a row from the directory (monitor or sync) and
// calls OnSwitch if it changed anything, or if it is the one a claim put in
// the cache ahead of the monitor (unannounced).
func (c *Client) putSwitchLocked(key string, o SwitchOwner) {
	if !isDPIDKey(key) {
		// A claim key's row: no switch to tell OnSwitch of.
		c.keyed[key] = o
		return
	}
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
func (c *Client) putClaimedLocked(key string, o SwitchOwner) {
	if !isDPIDKey(key) {
		c.keyed[key] = o
		return
	}
	c.switches[o.DatapathID] = o
	c.unannounced[o.DatapathID] = o
}

// removeSwitch forgets a deleted Switch row unless s is dead.
func (c *Client) removeSwitch(s *session, m *model.Switch) {
	o, err := switchFromModel(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if usable(err) && !s.isDead() {
		if isDPIDKey(m.DatapathID) {
			delete(c.switches, o.DatapathID)
			delete(c.unannounced, o.DatapathID)
		} else {
			delete(c.keyed, m.DatapathID)
		}
	}
}

// Claim makes this replica (Options.Name) master of dpid when the switch
// has no row, its row is released (master ""), its master is this replica,
// or its master is not Alive. It returns the row as now committed (won) or
// the current owner (lost). The write is one transaction: a wait on the
// row's (master, generation) as cached, then the update with generation+1
// and this replica as master; or an insert with generation 1 when the
// cache has no row, which the index on datapath_id refuses if another
// replica inserted first. A live master claiming its own switch wins
// without a new generation. It retries across a directory failover; err !=
// nil when the directory cannot commit before ctx ends: callers keep
// whatever role they have.
func (c *Client) Claim(ctx context.Context, dpid uint64, host, bridge string) (SwitchOwner, bool, error) {
	return c.claim(ctx, dpidString(dpid), host, bridge, 0)
}

// ClaimAbove is Claim with a generation of at least min: the switch
// remembers a generation above the directory's (the directory was rebuilt
// while the switch kept running) and would refuse a lower one as stale.
// Even this replica's own row gets a new generation if it is below min.
func (c *Client) ClaimAbove(ctx context.Context, dpid uint64, host, bridge string, min uint64) (SwitchOwner, bool, error) {
	return c.claim(ctx, dpidString(dpid), host, bridge, min)
}

// ClaimKey is Claim of something that is not an OpenFlow switch, named by
// a claim key (HardwareVTEPKey): the same rules, the same table.
func (c *Client) ClaimKey(ctx context.Context, key, host, bridge string) (SwitchOwner, bool, error) {
	if _, isDPID, err := parseKey(key); err != nil || isDPID {
		return SwitchOwner{}, false, fmt.Errorf("claiming %q: not a claim key (want %q and a host)", key, keyHardwareVTEP)
	}
	return c.claim(ctx, key, host, bridge, 0)
}

func (c *Client) claim(ctx context.Context, key, host, bridge string, min uint64) (SwitchOwner, bool, error) {
	if c.o.Name == "" {
		return SwitchOwner{}, false, fmt.Errorf("claiming %s: this client has no replica name", key)
	}
	for {
		o, won, err := c.claimOnce(ctx, key, host, bridge, min)
		if err == nil {
			if won {
				c.won.Add(1)
			} else {
				c.lost.Add(1)
			}
			return o, won, nil
		}
		if errors.Is(err, ErrGenerationRange) || errors.Is(err, ErrNameInUse) {
			return SwitchOwner{}, false, fmt.Errorf("claiming %s: %w", key, err)
		}
		c.log.Debug("claim not committed, retrying", zap.String("datapath_id", key), zap.Error(err))
		select {
		case <-ctx.Done():
			return SwitchOwner{}, false, fmt.Errorf("claiming %s: %w", key, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// claimOnce is one attempt of Claim; an error means nothing was decided.
func (c *Client) claimOnce(ctx context.Context, key, host, bridge string, min uint64) (SwitchOwner, bool, error) {
	if err := ctx.Err(); err != nil {
		return SwitchOwner{}, false, err // a transaction sent now might commit unseen
	}
	s, err := c.session(ctx)
	if err != nil {
		return SwitchOwner{}, false, err
	}
	if err := c.nameConflict(); err != nil {
		return SwitchOwner{}, false, err
	}
	c.mu.Lock()
	cur, have := c.ownerLocked(key)
	c.mu.Unlock()
	if have && cur.Master == c.o.Name && cur.Generation >= min && !cur.broken() {
		return cur, true, nil
	}
	if have && cur.Master != "" && cur.Master != c.o.Name && c.Alive(cur.Master) {
		return cur, false, nil
	}
	dpid, _, _ := parseKey(key)
	want := SwitchOwner{DatapathID: dpid, Host: host, Bridge: bridge, Master: c.o.Name, Generation: max(1, min)}
	if have && !cur.broken() {
		want.Generation = max(cur.Generation+1, min)
	}
	if have && cur.broken() {
		// Nothing can count up from it; the switch only knows min (what
		// it remembers, or 0), so starting again above that is safe.
		c.log.Warn("claiming a Switch row whose generation cannot be counted up: starting it again",
			zap.String("datapath_id", key), zap.String("master", cur.Master), zap.Uint64("generation", want.Generation))
	}
	if want.Generation > MaxGeneration {
		return SwitchOwner{}, false, fmt.Errorf("generation %d: %w (at most %d)", want.Generation, ErrGenerationRange, uint64(MaxGeneration))
	}
	row := ovsdb.Row{"host": host, "bridge": bridge, "master": c.o.Name, "generation": int(want.Generation)}
	var ops []ovsdb.Operation
	if have {
		ops = []ovsdb.Operation{rowWait(key, cur), {Op: ovsdb.OperationUpdate, Table: model.SwitchTable, Where: keyWhere(key), Row: row}}
	} else {
		row["datapath_id"] = key
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
		if old, had := c.ownerLocked(key); !s.isDead() && (!had || old.Generation < want.Generation || cur.broken()) {
			c.putClaimedLocked(key, want)
		}
		c.mu.Unlock()
		c.log.Info("switch claimed", zap.String("datapath_id", key), zap.Uint64("generation", want.Generation),
			zap.String("previous_master", cur.Master))
		return want, true, nil
	case errors.As(err, &refused):
		return c.freshOwner(ctx, s, key)
	default:
		return SwitchOwner{}, false, err
	}
}

// rowWait is an OVSDB wait that key's row still holds cur's master and
// generation.
//
// A broken row's generation (written out of range, read as MaxGeneration)
// cannot be compared exactly (a JSON number that large loses digits): its
// wait is on the master alone, which every claim of it changes (its master
// is never a live replica when it is claimed).
func rowWait(key string, cur SwitchOwner) ovsdb.Operation {
	zero := 0
	cols, row := []string{"master", "generation"}, ovsdb.Row{"master": cur.Master, "generation": int(cur.Generation)}
	if cur.broken() {
		cols, row = []string{"master"}, ovsdb.Row{"master": cur.Master}
	}
	return ovsdb.Operation{Op: ovsdb.OperationWait, Table: model.SwitchTable, Timeout: &zero, Where: keyWhere(key),
		Columns: cols, Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{row}}
}

// Release gives up this replica's mastership of dpid, claimed with
// generation gen: the row's master becomes "" (the generation stays), so
// another replica connected to the switch claims it at once instead of
// waiting for this one to die. Nothing is written if the row no longer
// holds (this replica, gen): released is false then.
func (c *Client) Release(ctx context.Context, dpid, gen uint64) (released bool, err error) {
	return c.ReleaseKey(ctx, dpidString(dpid), gen)
}

// ReleaseKey is Release of a claim key's row.
func (c *Client) ReleaseKey(ctx context.Context, key string, gen uint64) (bool, error) {
	if c.o.Name == "" {
		return false, fmt.Errorf("releasing %s: this client has no replica name", key)
	}
	mine := SwitchOwner{Master: c.o.Name, Generation: gen}
	ops := []ovsdb.Operation{rowWait(key, mine),
		{Op: ovsdb.OperationUpdate, Table: model.SwitchTable, Where: keyWhere(key), Row: ovsdb.Row{"master": ""}}}
	for {
		s, err := c.session(ctx)
		if err != nil {
			return false, fmt.Errorf("releasing %s: %w", key, err)
		}
		_, err = c.commit(ctx, s, ops)
		var refused *refusal
		switch {
		case err == nil:
			c.log.Info("switch released", zap.String("datapath_id", key), zap.Uint64("generation", gen))
			return true, nil
		case errors.As(err, &refused):
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("releasing %s: %w", key, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freshOwner reads key's row from the leader after a refused claim: the
// monitor may not have brought the winner yet. If the row names this
// replica, an earlier attempt whose reply was lost did win.
func (c *Client) freshOwner(ctx context.Context, s *session, key string) (SwitchOwner, bool, error) {
	ops := []ovsdb.Operation{{Op: ovsdb.OperationSelect, Table: model.SwitchTable, Where: keyWhere(key)}}
	res, err := c.commit(ctx, s, ops)
	if err != nil {
		return SwitchOwner{}, false, fmt.Errorf("reading the owner of %s: %w", key, err)
	}
	if len(res) == 0 || len(res[0].Rows) == 0 {
		return SwitchOwner{}, false, fmt.Errorf("reading the owner of %s: no row after a refused claim", key)
	}
	r := res[0].Rows[0]
	m := &model.Switch{}
	m.DatapathID, _ = r["datapath_id"].(string)
	m.Host, _ = r["host"].(string)
	m.Bridge, _ = r["bridge"].(string)
	m.Master, _ = r["master"].(string)
	m.Generation = rowInt(r["generation"])
	o, err := switchFromModel(m)
	if !usable(err) {
		return SwitchOwner{}, false, fmt.Errorf("reading the owner of %s: %w", key, err)
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

// keyWhere selects key's row by the index.
func keyWhere(key string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "datapath_id", Function: ovsdb.ConditionEqual, Value: key}}
}
