package hostagent

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/internal/health"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Config is what `ovs-vxctl agent` runs with.
type Config struct {
	File     string             // the topology file
	Topology *topology.Topology // its contents at start
	Host     string             // this host's name in it
	DB       string             // OVSDB endpoint
	RunDir   string             // OVS_RUNDIR: the bridges' management sockets
	SSL      *ovsdb.SSLFiles    // the switch's TLS files for an ssl: controller
	DBTLS    *ovsdb.SSLFiles    // this client's TLS files for an ssl: DB
	// MetricsListen, when set, serves Prometheus metrics at
	// http://MetricsListen/metrics.
	MetricsListen string
	Version       string           // ovs-vxctl's, for ovs_vxctl_build_info
	Signals       <-chan os.Signal // SIGHUP
	FlowCheck     time.Duration    // 0: DefaultFlowCheck
	Log           *zap.Logger
}

// Run connects to OVSDB, watches it and the file, and keeps the host
// matching the topology until ctx ends. It fails only when it cannot start
// (no OVSDB, a bad --metrics-listen): failed applies are retried.
func Run(ctx context.Context, c Config) error {
	log := c.Log
	if log == nil {
		log = zap.NewNop()
	}
	db, err := ovsdb.Connect(ctx, c.DB, log.Named("watch"), ovsdb.WithTLSFiles(c.DBTLS))
	if err != nil {
		return err // ovsdb.Connect names the endpoint
	}
	defer db.Close()
	m := NewMetrics(nil)
	if err := health.RegisterRuntime(m.Registry, c.Version); err != nil {
		return err
	}
	d, err := New(Options{
		File: c.File, Topology: c.Topology, Host: c.Host, Signals: c.Signals, FlowCheck: c.FlowCheck,
		Apply: applyWith(c, applyLogger(log)), Bindings: db.Bindings, Log: log, Metrics: m,
	})
	if err != nil {
		return err
	}
	db.Watch(d.Interest, func(reason string) { d.Trigger(SourceOVSDB, reason, false) })
	if c.MetricsListen != "" {
		srv, addr, err := ServeMetrics(c.MetricsListen, m.Registry, d.NotReady)
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info("serving metrics", zap.String("url", fmt.Sprintf("http://%s/metrics", addr)))
	}
	return d.Run(ctx)
}

// applyWith is agent.Apply with the connection settings of c.
func applyWith(c Config, log *zap.Logger) ApplyFunc {
	return func(ctx context.Context, t *topology.Topology, h *topology.Host) (*agent.Report, error) {
		return agent.Apply(ctx, agent.Options{Topology: t, Host: h, DB: c.DB, DBTLS: c.DBTLS, RunDir: c.RunDir, SSL: c.SSL, Log: log})
	}
}

// applyLogger is the logger of each apply: the daemon logs what an apply
// did (and each warning once) itself, so the apply's own informational
// lines and warnings, which would repeat at every apply, show only when
// debugging.
func applyLogger(log *zap.Logger) *zap.Logger {
	if log.Core().Enabled(zapcore.DebugLevel) {
		return log.Named("apply")
	}
	return log.Named("apply").WithOptions(zap.IncreaseLevel(zapcore.ErrorLevel))
}
