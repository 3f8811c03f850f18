package hwvtep

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/zapr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// DatabaseName is the name of the database a hardware VTEP serves.
const DatabaseName = "hardware_vtep"

// Client is a connection to a hardware VTEP's hardware_vtep database. It
// monitors the tables the reconcile and Show read into a local cache. It
// does not reconnect: it serves one apply, destroy or show.
//
// A Client serves one goroutine at a time: the controller's loop of one
// switch, or one command.
type Client struct {
	ovs      client.Client
	log      *zap.Logger
	endpoint string
	maxLocal int      // bound on the local MACs Sync returns
	metrics  *Metrics // nil: not reported
	refused  refusals // at the last Sync, to log changes only
	// changes counts the cache's updates of the tables the local MACs
	// depend on (Logical_Switch, Ucast_Macs_Local), from libovsdb's event
	// goroutine; Sync recomputes them only when it moved.
	changes atomic.Uint64
	local   localCache
	// admitted are the local MACs taken at the last read: over maxLocal
	// they keep their place (admit).
	admitted map[macKey]bool
	// lswitches are the logical switches of the last Sync (NotDriven).
	lswitches []*hwvtep.LogicalSwitch
	// lean clients (apply, destroy, diff) neither monitor nor cache the
	// switch's *_Macs_Local tables, which only it bounds: they select the
	// rows of the logical switches a plan removes (fillLocal).
	lean bool
}

// localCache is Sync's last list of local MACs: with many rows on the
// switch, copying and checking them every poll would cost more than the
// poll period.
type localCache struct {
	valid bool
	m     marks
	gen   uint64    // changes when computed
	at    time.Time // when computed: recomputed after localRefresh anyway
	macs  []LocalMAC
}

// localRefresh bounds how long Sync trusts its local MACs without a
// change event (libovsdb drops events when its buffer is full).
const localRefresh = 10 * time.Second

// Connect connects to the hardware_vtep database at endpoint ("tcp:IP:PORT",
// "unix:PATH", or "ssl:IP:PORT" with tlsConfig) and returns once the cache
// holds the database's contents. log may be nil. It refuses a database
// whose schema is older than MinSchemaVersion, or lacks what the model
// needs, naming the version the switch serves.
func Connect(ctx context.Context, endpoint string, tlsConfig *tls.Config, log *zap.Logger, opts ...Option) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	scheme, _, _ := strings.Cut(endpoint, ":")
	switch {
	case scheme == "ssl" && tlsConfig == nil:
		return nil, fmt.Errorf("hardware VTEP OVSDB %s: an ssl: target needs --private-key, --certificate and --ca-cert", endpoint)
	case scheme != "ssl" && scheme != "tcp" && scheme != "unix":
		return nil, fmt.Errorf("hardware VTEP OVSDB %q: want tcp:IP:PORT, ssl:IP:PORT or unix:PATH", endpoint)
	}
	c := &Client{log: log, endpoint: endpoint, maxLocal: DefaultMaxLocalMACs}
	for _, o := range opts {
		o(c)
	}
	tables := map[string]model.Model{
		hwvtep.GlobalTable:             &hwvtep.Global{},
		hwvtep.PhysicalSwitchTable:     &hwvtep.PhysicalSwitch{},
		hwvtep.PhysicalPortTable:       &hwvtep.PhysicalPort{},
		hwvtep.LogicalSwitchTable:      &hwvtep.LogicalSwitch{},
		hwvtep.PhysicalLocatorTable:    &hwvtep.PhysicalLocator{},
		hwvtep.PhysicalLocatorSetTable: &hwvtep.PhysicalLocatorSet{},
		hwvtep.McastMacsRemoteTable:    &hwvtep.McastMacsRemote{},
		hwvtep.UcastMacsRemoteTable:    &hwvtep.UcastMacsRemote{},
	}
	if !c.lean {
		tables[hwvtep.McastMacsLocalTable] = &hwvtep.McastMacsLocal{}
		tables[hwvtep.UcastMacsLocalTable] = &hwvtep.UcastMacsLocal{}
	}
	ovs, err := newOVSDBClient(endpoint, tlsConfig, log, tables)
	if err != nil {
		return nil, err
	}
	if err := ovs.Connect(ctx); err != nil {
		return nil, connectError(ctx, endpoint, tlsConfig, err)
	}
	c.ovs = ovs
	if err := checkVersion(endpoint, ovs.Schema().Version); err != nil {
		ovs.Close()
		return nil, err
	}
	ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(table string, _ model.Model) { c.count(table) },
		UpdateFunc: func(table string, _, _ model.Model) { c.count(table) },
		DeleteFunc: func(table string, _ model.Model) { c.count(table) },
	})
	if _, err := ovs.MonitorAll(ctx); err != nil {
		ovs.Close()
		return nil, fmt.Errorf("monitoring the hardware_vtep database at %s (does it serve the hardware_vtep schema?): %w", endpoint, err)
	}
	log.Debug("connected to hardware VTEP OVSDB", zap.String("endpoint", endpoint))
	return c, nil
}

// count notes a cache update of table (libovsdb's event goroutine).
func (c *Client) count(table string) {
	if table == hwvtep.UcastMacsLocalTable || table == hwvtep.LogicalSwitchTable {
		c.changes.Add(1)
	}
}

// newOVSDBClient creates (not connects) a libovsdb client of the
// hardware_vtep tables of tables.
func newOVSDBClient(endpoint string, tlsConfig *tls.Config, log *zap.Logger, tables map[string]model.Model) (client.Client, error) {
	dbModel, err := model.NewClientDBModel(DatabaseName, tables)
	if err != nil {
		return nil, fmt.Errorf("building the hardware_vtep client model: %w", err)
	}
	logr := zapr.NewLogger(log.Named("libovsdb"))
	opts := []client.Option{client.WithEndpoint(endpoint), client.WithLogger(&logr)}
	if tlsConfig != nil {
		opts = append(opts, client.WithTLSConfig(tlsConfig))
	}
	ovs, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the OVSDB client for %s: %w", endpoint, err)
	}
	return ovs, nil
}

// connectError explains a failed Connect: the network, a database that is
// not there, or a schema that does not fit the model (then it connects
// once more, without a model, to name the version the switch serves).
func connectError(ctx context.Context, endpoint string, tlsConfig *tls.Config, err error) error {
	var op *net.OpError
	switch {
	case errors.As(err, &op):
		return fmt.Errorf("connecting to the hardware VTEP's OVSDB at %s (is its ovsdb-server listening there?): %w", endpoint, op.Err)
	case tlsConfig != nil && (strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:")):
		return fmt.Errorf("connecting to the hardware VTEP's OVSDB at %s (TLS: is this client's certificate signed by a CA the database trusts, and the database's by the CA of --ca-cert?): %w", endpoint, err)
	case strings.Contains(err.Error(), "target database "+DatabaseName+" not found"):
		return fmt.Errorf("the OVSDB at %s serves no %s database (is it a hardware VTEP's?): %w", endpoint, DatabaseName, err)
	case !strings.Contains(err.Error(), "validation error"):
		return fmt.Errorf("connecting to the hardware VTEP's OVSDB at %s: %w", endpoint, err)
	}
	version := "(unknown)"
	if bare, e := newOVSDBClient(endpoint, tlsConfig, zap.NewNop(), map[string]model.Model{}); e == nil {
		if bare.Connect(ctx) == nil {
			version = bare.Schema().Version
			bare.Close()
		}
	}
	if v := checkVersion(endpoint, version); v != nil {
		return fmt.Errorf("%w: %w", v, err)
	}
	return fmt.Errorf("the hardware VTEP's OVSDB at %s serves hardware_vtep schema version %s, which lacks what ovs-vxctl uses: %w", endpoint, quote(version), err)
}

// Close closes the connection.
func (c *Client) Close() { c.ovs.Close() }

// read makes the cache at least as new as the database (one round trip:
// ovsdb-server sends a session's pending updates before answering its next
// request) and copies it; the *_Macs_Local tables only withLocal.
func (c *Client) read(ctx context.Context, withLocal bool) (*snapshot, error) {
	op := libovsdb.Operation{Op: libovsdb.OperationSelect, Table: hwvtep.GlobalTable, Columns: []string{"_uuid"}}
	if _, err := c.transact(ctx, []libovsdb.Operation{op}); err != nil {
		return nil, fmt.Errorf("reading the hardware_vtep database at %s: %w", c.endpoint, err)
	}
	s := &snapshot{}
	lists := []any{&s.switches, &s.ports, &s.lswitches, &s.locators, &s.locatorSets, &s.mcastRemote, &s.ucastRemote}
	if withLocal && !c.lean {
		lists = append(lists, &s.mcastLocal, &s.ucastLocal)
	}
	for _, l := range lists {
		if err := c.ovs.List(ctx, l); err != nil {
			return nil, fmt.Errorf("reading the hardware_vtep cache: %w", err)
		}
	}
	return s, nil
}

// transact commits ops in one transaction and checks every result
// (ovsdb.Transact: libovsdb returns a nil error even when an operation
// failed).
func (c *Client) transact(ctx context.Context, ops []libovsdb.Operation) ([]libovsdb.OperationResult, error) {
	return ovsdb.Transact(ctx, c.ovs, ops, nil)
}

// Apply commits plan in one transaction; an empty plan sends nothing.
func (c *Client) Apply(ctx context.Context, plan *Plan) error {
	if plan == nil || plan.Empty() {
		return nil
	}
	if _, err := c.transact(ctx, plan.Ops); err != nil {
		return fmt.Errorf("applying %d changes to the hardware VTEP's OVSDB at %s: %w", len(plan.Changes), c.endpoint, err)
	}
	c.log.Info("applied hardware VTEP changes", zap.String("endpoint", c.endpoint), zap.Int("changes", len(plan.Changes)))
	return nil
}

// Plan reads the database and computes the transaction that makes it match
// want, changing nothing yet.
func (c *Client) Plan(ctx context.Context, want Config) (*Plan, error) {
	return c.plan(ctx, func(s *snapshot) (*Plan, error) { return planFrom(s, want) })
}

// PlanDestroy reads the database and computes the transaction that removes
// what ovs-vxctl created for host of topology.
func (c *Client) PlanDestroy(ctx context.Context, topology, host string) (*Plan, error) {
	return c.plan(ctx, func(s *snapshot) (*Plan, error) { return planDestroy(s, marks{owner: topology, host: host}), nil })
}

// plan reads the database and plans with f. A lean client then reads the
// local MAC rows of the logical switches the plan removes (they must go
// with them) and plans again.
func (c *Client) plan(ctx context.Context, f func(*snapshot) (*Plan, error)) (*Plan, error) {
	snap, err := c.read(ctx, true)
	if err != nil {
		return nil, err
	}
	plan, err := f(snap)
	if err != nil || !c.lean || len(plan.removed) == 0 {
		return plan, err
	}
	if err := c.fillLocal(ctx, snap, plan.removed); err != nil {
		return nil, err
	}
	return f(snap)
}

// fillLocal selects into s the *_Macs_Local rows of logical switches
// lswitches (UUIDs), the columns removeLogicalSwitch needs.
func (c *Client) fillLocal(ctx context.Context, s *snapshot, lswitches []string) error {
	var ops []libovsdb.Operation
	for _, u := range lswitches {
		where := []libovsdb.Condition{libovsdb.NewCondition("logical_switch", libovsdb.ConditionEqual, libovsdb.UUID{GoUUID: u})}
		for _, table := range []string{hwvtep.UcastMacsLocalTable, hwvtep.McastMacsLocalTable} {
			ops = append(ops, libovsdb.Operation{Op: libovsdb.OperationSelect, Table: table, Where: where, Columns: []string{"_uuid", "MAC"}})
		}
	}
	res, err := c.transact(ctx, ops)
	if err != nil {
		return fmt.Errorf("reading the local MACs of the logical switches to remove at %s: %w", c.endpoint, err)
	}
	for i, r := range res {
		ls := lswitches[i/2]
		for _, row := range r.Rows {
			u, _ := row["_uuid"].(libovsdb.UUID)
			mac, _ := row["MAC"].(string)
			if i%2 == 0 {
				s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: u.GoUUID, MAC: mac, LogicalSwitch: ls})
			} else {
				s.mcastLocal = append(s.mcastLocal, &hwvtep.McastMacsLocal{UUID: u.GoUUID, MAC: mac, LogicalSwitch: ls})
			}
		}
	}
	return nil
}
