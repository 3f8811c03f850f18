package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// globalOptions are the options every verb shares (spec/cli.md). They are
// passed explicitly to each verb; nothing is global.
type globalOptions struct {
	db        string
	dbTLSFile ovsdb.SSLFiles // --db-private-key, --db-certificate, --db-ca-cert
	file      string
	host      string
	format    string
	verbose   bool
	logFormat string
	timeout   time.Duration
}

func (g *globalOptions) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.db, "db", "", "OVSDB endpoint (unix:PATH, tcp:IP:PORT, ssl:IP:PORT); default unix:$OVS_RUNDIR/db.sock")
	f.StringVar(&g.dbTLSFile.PrivateKey, "db-private-key", "", "ssl: --db: this client's private key (PEM)")
	f.StringVar(&g.dbTLSFile.Certificate, "db-certificate", "", "ssl: --db: this client's certificate (PEM)")
	f.StringVar(&g.dbTLSFile.CACert, "db-ca-cert", "", "ssl: --db: the CA certificate the server's certificate must chain to (PEM)")
	f.StringVarP(&g.file, "file", "f", "", "topology file")
	f.StringVar(&g.host, "host", "", "which host of the topology this machine is (default: the host whose vtep is an address of this machine)")
	f.StringVar(&g.format, "format", "table", "output of read-only verbs: table or json")
	f.BoolVarP(&g.verbose, "verbose", "v", false, "debug logging")
	f.StringVar(&g.logFormat, "log-format", "console", "log format: console or json")
	f.DurationVar(&g.timeout, "timeout", 60*time.Second, "give up on OVS after this long")
}

func (g *globalOptions) validate() error {
	if g.format != "table" && g.format != "json" {
		return fmt.Errorf("--format %q: must be table or json", g.format)
	}
	if g.logFormat != "console" && g.logFormat != "json" {
		return fmt.Errorf("--log-format %q: must be console or json", g.logFormat)
	}
	return nil
}

// rundir is OVS's run directory: $OVS_RUNDIR or /var/run/openvswitch.
func rundir() string {
	if d := os.Getenv("OVS_RUNDIR"); d != "" {
		return d
	}
	return "/var/run/openvswitch"
}

// dbEndpoint is --db or OVS's default socket.
func (g *globalOptions) dbEndpoint() string {
	if g.db != "" {
		return g.db
	}
	return "unix:" + filepath.Join(rundir(), "db.sock")
}

// dbTLS is the client's TLS files for an ssl: --db, nil when none is given
// (Connect then says which flags an ssl: endpoint needs).
func (g *globalOptions) dbTLS() *ovsdb.SSLFiles {
	if g.dbTLSFile == (ovsdb.SSLFiles{}) {
		return nil
	}
	f := g.dbTLSFile
	return &f
}

// mgmtTarget is the OpenFlow management socket of a local bridge.
func mgmtTarget(bridge string) string {
	return "unix:" + filepath.Join(rundir(), bridge+".mgmt")
}

// logger builds the zap logger the options ask for; logs go to stderr.
func (g *globalOptions) logger() *zap.Logger {
	level := zapcore.InfoLevel
	if g.verbose {
		level = zapcore.DebugLevel
	}
	var cfg zap.Config
	if g.logFormat == "json" {
		cfg = zap.NewProductionConfig()
	} else {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	log, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return log
}

func (g *globalOptions) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.timeout)
}

// loadTopology reads -f; a missing -f or an invalid file is an error that
// names every problem.
func (g *globalOptions) loadTopology() (*topology.Topology, error) {
	if g.file == "" {
		return nil, fmt.Errorf("no topology file: give -f FILE")
	}
	return topology.Load(g.file)
}

// resolveHost returns --host, or the managed host whose vtep is an address of
// this machine.
func (g *globalOptions) resolveHost(t *topology.Topology) (*topology.Host, error) {
	if g.host != "" {
		h := t.Host(g.host)
		if h == nil {
			return nil, fmt.Errorf("--host %s: no such host in topology %s (hosts: %s)", g.host, t.Name, listHosts(t, false))
		}
		return h, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this machine's addresses to find its host: %w", err)
	}
	local := map[netip.Addr]bool{}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			local[p.Addr().Unmap()] = true
		}
	}
	for _, h := range t.Hosts {
		if local[h.VTEP] {
			return h, nil
		}
	}
	return nil, fmt.Errorf("no host of topology %s has a vtep that is an address of this machine: give --host (one of %s)",
		t.Name, listHosts(t, true))
}

// listHosts names the topology's hosts (only the managed ones when
// managedOnly) for error messages: "host1, host2".
func listHosts(t *topology.Topology, managedOnly bool) string {
	var names []string
	for _, h := range t.Hosts {
		if h.Managed || !managedOnly {
			names = append(names, h.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// hostOptions loads -f, resolves the managed host and builds the agent
// options every verb that acts on this host's OVS shares. The caller calls
// done when finished.
func (g *globalOptions) hostOptions(dryRun bool) (o agent.Options, ctx context.Context, done func(), err error) {
	t, err := g.loadTopology()
	if err != nil {
		return o, nil, nil, err
	}
	h, err := g.managedHost(t)
	if err != nil {
		return o, nil, nil, err
	}
	log := g.logger()
	ctx, cancel := g.context()
	o = agent.Options{Topology: t, Host: h, DB: g.dbEndpoint(), DBTLS: g.dbTLS(), RunDir: rundir(), DryRun: dryRun, Log: log}
	return o, ctx, func() { cancel(); log.Sync() }, nil
}

// managedHost is resolveHost for verbs that configure the host.
func (g *globalOptions) managedHost(t *topology.Topology) (*topology.Host, error) {
	h, err := g.resolveHost(t)
	if err != nil {
		return nil, err
	}
	if !h.Managed {
		return nil, fmt.Errorf("host %s is not managed (managed: false): ovs-vxctl never configures it (managed hosts: %s)",
			h.Name, listHosts(t, true))
	}
	return h, nil
}
