// Package ovsdb reconciles one host's Open vSwitch database with a topology:
// it computes the OVSDB operations that make br-int, br-tun, the patch pair,
// the VXLAN ports, the VM/internal ports of a managed host (and, for an ssl:
// controller, the switch's SSL row) match the topology, shows them as a list
// of human-readable changes, and commits them in one transaction. Every row it creates carries ownership marks in
// external_ids (see KeyOwner); rows without them are never modified.
//
// It talks to ovsdb-server with libovsdb and the typed models of package
// ovsdb/vswitch. The libovsdb package of the same name is imported here as
// libovsdb.
package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/zapr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
)

// DefaultWaitTimeout bounds how long Apply waits for ovs-vswitchd to apply a
// committed change, and how long the context-less read helpers wait for the
// database.
const DefaultWaitTimeout = 30 * time.Second

// Client is a connection to one ovsdb-server holding the Open_vSwitch
// database. It monitors the Open_vSwitch, Bridge, Port, Interface,
// Controller and SSL tables into a local cache and reconnects (with backoff, for
// ever) when the server goes away. It is safe for concurrent use.
type Client struct {
	ovs      client.Client
	log      *zap.Logger
	endpoint string

	// WaitTimeout bounds how long Apply waits for ovs-vswitchd to catch up
	// with a committed change (cur_cfg reaching next_cfg). Connect sets it
	// to DefaultWaitTimeout.
	WaitTimeout time.Duration
	// NoWait makes Apply return as soon as the transaction is committed,
	// like `ovs-vsctl --no-wait`: for a database no ovs-vswitchd serves.
	NoWait bool
}

// Connect connects to the OVSDB server at endpoint ("unix:/path/db.sock" or
// "tcp:IP:PORT"), starts monitoring the tables the reconciler reads and
// returns once the cache holds the database's current contents. The client
// then reconnects by itself whenever the connection drops. log may be nil.
func Connect(ctx context.Context, endpoint string, log *zap.Logger, opts ...ConnectOption) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	var co connectOptions
	for _, o := range opts {
		o(&co)
	}
	clientOpts := []client.Option{}
	if strings.HasPrefix(endpoint, "ssl:") {
		cfg, err := clientTLS(co.tls)
		if err != nil {
			return nil, fmt.Errorf("OVSDB endpoint %s: %w", endpoint, err)
		}
		clientOpts = append(clientOpts, client.WithTLSConfig(cfg))
	}
	dbModel, err := model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		vswitch.OpenvSwitchTable: &vswitch.OpenvSwitch{},
		vswitch.BridgeTable:      &vswitch.Bridge{},
		vswitch.PortTable:        &vswitch.Port{},
		vswitch.InterfaceTable:   &vswitch.Interface{},
		vswitch.ControllerTable:  &vswitch.Controller{},
		vswitch.SSLTable:         &vswitch.SSL{},
	})
	if err != nil {
		return nil, fmt.Errorf("building the OVSDB client model: %w", err)
	}

	// libovsdb panics when its reconnect backoff gives up (or is nil), so
	// retry for ever, at most every 2 s.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0
	logr := zapr.NewLogger(log.Named("libovsdb"))
	ovs, err := client.NewOVSDBClient(dbModel, append(clientOpts,
		// Always explicit: libovsdb's default unix endpoint names a socket
		// file OVS does not create.
		client.WithEndpoint(endpoint),
		client.WithReconnect(5*time.Second, bo),
		client.WithLogger(&logr),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating OVSDB client for %s: %w", endpoint, err)
	}
	if err := ovs.Connect(ctx); err != nil {
		return nil, connectError(endpoint, err)
	}
	c := &Client{ovs: ovs, log: log, endpoint: endpoint, WaitTimeout: DefaultWaitTimeout}
	if err := c.monitor(ctx); err != nil {
		ovs.Close()
		return nil, err
	}
	log.Debug("connected to OVSDB", zap.String("endpoint", endpoint))
	return c, nil
}

// connectError is the error of a failed connection to endpoint. When
// nothing answered there it names the likely cause and keeps only the
// system's reason: libovsdb's own layers ("failed to connect to ENDPOINT:
// failed to open connection: dial unix PATH: ...") repeat the endpoint.
func connectError(endpoint string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("connecting to OVSDB at %s (is ovsdb-server running?): %w", endpoint, op.Err)
	}
	return fmt.Errorf("connecting to OVSDB at %s: %w", endpoint, err)
}

// monitor subscribes to the columns the reconciler and Show read. Leaving out
// the statistics columns keeps ovs-vswitchd's periodic counter updates off
// the connection.
func (c *Client) monitor(ctx context.Context) error {
	var (
		o vswitch.OpenvSwitch
		b vswitch.Bridge
		p vswitch.Port
		i vswitch.Interface
		k vswitch.Controller
		s vswitch.SSL
	)
	m := c.ovs.NewMonitor(
		client.WithTable(&o, &o.Bridges, &o.NextCfg, &o.CurCfg, &o.OVSVersion, &o.SSL),
		client.WithTable(&b, &b.Name, &b.Ports, &b.DatapathType, &b.FailMode, &b.Protocols,
			&b.OtherConfig, &b.ExternalIDs, &b.Controller, &b.DatapathID, &b.Mirrors, &b.Netflow, &b.Sflow, &b.IPFIX),
		client.WithTable(&p, &p.Name, &p.Interfaces, &p.Tag, &p.VLANMode, &p.Trunks, &p.ExternalIDs),
		client.WithTable(&i, &i.Name, &i.Type, &i.Options, &i.Ofport, &i.OfportRequest, &i.MAC, &i.MTU, &i.MTURequest,
			&i.ExternalIDs, &i.AdminState, &i.LinkState, &i.Error),
		client.WithTable(&k, &k.Target, &k.ConnectionMode, &k.ExternalIDs, &k.IsConnected,
			&k.ControllerRateLimit, &k.ControllerBurstLimit, &k.InactivityProbe),
		client.WithTable(&s, &s.PrivateKey, &s.Certificate, &s.CaCert, &s.ExternalIDs),
	)
	if len(m.Errors) > 0 {
		return fmt.Errorf("building the OVSDB monitor: %w", errors.Join(m.Errors...))
	}
	if _, err := c.ovs.Monitor(ctx, m); err != nil {
		return fmt.Errorf("monitoring OVSDB at %s: %w", c.endpoint, err)
	}
	return nil
}

// checkEndpoint rejects endpoints that libovsdb would silently replace with
// its defaults, and ssl: (this client has no way to take certificates yet).
func checkEndpoint(endpoint string) error {
	scheme, rest, ok := strings.Cut(endpoint, ":")
	if !ok || rest == "" {
		return fmt.Errorf("OVSDB endpoint %q: want unix:PATH or tcp:IP:PORT", endpoint)
	}
	switch scheme {
	case "unix":
	case "tcp", "ssl":
		if _, err := url.Parse("tcp://" + rest); err != nil || !strings.Contains(rest, ":") {
			return fmt.Errorf("OVSDB endpoint %q: want %s:IP:PORT", endpoint, scheme)
		}
	default:
		return fmt.Errorf("OVSDB endpoint %q: unknown scheme %q (want unix:PATH, tcp:IP:PORT or ssl:IP:PORT)", endpoint, scheme)
	}
	return nil
}

// Close closes the connection; the client does not reconnect afterwards.
func (c *Client) Close() {
	c.ovs.Close()
}

// sync makes the cache at least as new as the database was when sync was
// called. ovsdb-server flushes a session's pending monitor updates before it
// reads that session's next request, and libovsdb applies updates in order
// on its read loop, so one round trip is enough. A read-only select is used
// rather than echo because libovsdb's Transact waits for a reconnection while
// its Echo does not.
func (c *Client) sync(ctx context.Context) error {
	op := libovsdb.Operation{Op: libovsdb.OperationSelect, Table: vswitch.OpenvSwitchTable, Columns: []string{"_uuid"}}
	for {
		res, err := c.ovs.Transact(ctx, op)
		if err == nil {
			if _, err := libovsdb.CheckOperationResults(res, []libovsdb.Operation{op}); err != nil {
				return fmt.Errorf("reading OVSDB at %s: %w", c.endpoint, err)
			}
			return nil
		}
		// Between the connection dropping and libovsdb noticing it,
		// Transact fails fast with ErrNotConnected: wait for the
		// reconnection instead. A select is safe to resend.
		if !errors.Is(err, client.ErrNotConnected) {
			return fmt.Errorf("reading OVSDB at %s: %w", c.endpoint, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading OVSDB at %s: not connected: %w", c.endpoint, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// transact commits ops in one transaction and checks every result: libovsdb
// returns a nil error even when an operation failed. why, when not nil,
// explains the failure of operation i better than the server does ("" to
// keep the server's words).
func (c *Client) transact(ctx context.Context, ops []libovsdb.Operation, why func(i int) string) ([]libovsdb.OperationResult, error) {
	return Transact(ctx, c.ovs, ops, why)
}

// Transact commits ops on any libovsdb client (this package's, or another
// database's such as a hardware VTEP's) in one transaction and checks every
// result; why is as for Client.transact.
func Transact(ctx context.Context, ovs client.Client, ops []libovsdb.Operation, why func(i int) string) ([]libovsdb.OperationResult, error) {
	res, err := ovs.Transact(ctx, ops...)
	if err != nil {
		// The request may have reached the server before the connection
		// failed: only a fresh read can tell what happened.
		return nil, fmt.Errorf("sending the transaction (it may or may not have been committed; plan again): %w", err)
	}
	opErrs, err := libovsdb.CheckOperationResults(res, ops)
	if err == nil {
		return res, nil
	}
	if len(opErrs) == 0 {
		// Every operation succeeded but the commit itself failed (the
		// extra result element).
		return nil, fmt.Errorf("transaction not committed, nothing was changed: %w", err)
	}
	var msgs []string
	for i, r := range res {
		if i >= len(ops) || r.Error == "" {
			continue
		}
		if why != nil {
			if w := why(i); w != "" {
				msgs = append(msgs, w)
				continue
			}
		}
		msgs = append(msgs, fmt.Sprintf("%s on %s: %s: %s", ops[i].Op, ops[i].Table, r.Error, r.Details))
	}
	return nil, fmt.Errorf("transaction failed, nothing was changed: %s", strings.Join(msgs, "; "))
}
