package hwvtep

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/go-logr/zapr"
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
type Client struct {
	ovs      client.Client
	log      *zap.Logger
	endpoint string
}

// Connect connects to the hardware_vtep database at endpoint ("tcp:IP:PORT",
// "unix:PATH", or "ssl:IP:PORT" with tlsConfig) and returns once the cache
// holds the database's contents. log may be nil.
func Connect(ctx context.Context, endpoint string, tlsConfig *tls.Config, log *zap.Logger) (*Client, error) {
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
	dbModel, err := model.NewClientDBModel(DatabaseName, map[string]model.Model{
		hwvtep.GlobalTable:             &hwvtep.Global{},
		hwvtep.PhysicalSwitchTable:     &hwvtep.PhysicalSwitch{},
		hwvtep.PhysicalPortTable:       &hwvtep.PhysicalPort{},
		hwvtep.LogicalSwitchTable:      &hwvtep.LogicalSwitch{},
		hwvtep.PhysicalLocatorTable:    &hwvtep.PhysicalLocator{},
		hwvtep.PhysicalLocatorSetTable: &hwvtep.PhysicalLocatorSet{},
		hwvtep.McastMacsRemoteTable:    &hwvtep.McastMacsRemote{},
		hwvtep.UcastMacsRemoteTable:    &hwvtep.UcastMacsRemote{},
		hwvtep.McastMacsLocalTable:     &hwvtep.McastMacsLocal{},
		hwvtep.UcastMacsLocalTable:     &hwvtep.UcastMacsLocal{},
	})
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
	if err := ovs.Connect(ctx); err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, fmt.Errorf("connecting to the hardware VTEP's OVSDB at %s (is its ovsdb-server listening there?): %w", endpoint, op.Err)
		}
		return nil, fmt.Errorf("connecting to the hardware VTEP's OVSDB at %s: %w", endpoint, err)
	}
	if _, err := ovs.MonitorAll(ctx); err != nil {
		ovs.Close()
		return nil, fmt.Errorf("monitoring the hardware_vtep database at %s (does it serve the hardware_vtep schema?): %w", endpoint, err)
	}
	log.Debug("connected to hardware VTEP OVSDB", zap.String("endpoint", endpoint))
	return &Client{ovs: ovs, log: log, endpoint: endpoint}, nil
}

// Close closes the connection.
func (c *Client) Close() { c.ovs.Close() }

// read makes the cache at least as new as the database (one round trip:
// ovsdb-server sends a session's pending updates before answering its next
// request) and copies it.
func (c *Client) read(ctx context.Context) (*snapshot, error) {
	op := libovsdb.Operation{Op: libovsdb.OperationSelect, Table: hwvtep.GlobalTable, Columns: []string{"_uuid"}}
	if _, err := c.transact(ctx, []libovsdb.Operation{op}); err != nil {
		return nil, fmt.Errorf("reading the hardware_vtep database at %s: %w", c.endpoint, err)
	}
	s := &snapshot{}
	for _, l := range []any{&s.switches, &s.ports, &s.lswitches, &s.locators, &s.locatorSets,
		&s.mcastRemote, &s.ucastRemote, &s.mcastLocal, &s.ucastLocal} {
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
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	return planFrom(snap, want)
}

// PlanDestroy reads the database and computes the transaction that removes
// what ovs-vxctl created for host of topology.
func (c *Client) PlanDestroy(ctx context.Context, topology, host string) (*Plan, error) {
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	return planDestroy(snap, marks{owner: topology, host: host}), nil
}
