package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/hostagent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

// agentHelp is the agent verb's long help.
const agentHelp = `Keep this host matching the topology for as long as it runs: apply at start
(as ovs-vxctl apply does), then again whenever something it cares about changes:

  - an interface carrying the external_ids:iface-id of one of the host's ports
    (iface_id in the file) is plugged into br-int, unplugged, or changes ofport:
    it is bound at once (its Port gets the network's local VLAN tag);
  - a row ovs-vxctl created, or a Port it bound, is edited behind its back
    (watched through an OVSDB monitor, not polled);
  - the topology file changes (its directory is watched, so an editor's
    rename-over is seen) or SIGHUP arrives;
  - every --flow-check (default 30s) the flows are diffed against the
    compiled ones, which repairs flows edited behind its back (a check that
    finds them right sends nothing), and restores the flows of a restarted
    ovs-vswitchd.

Changes are coalesced (a burst gives one apply) and applies run one at a time.
A file that does not parse is logged with every problem and changes nothing:
the last good topology keeps being served. A failed apply is retried, after 1s
doubling to 30s. SIGTERM or SIGINT ends the agent and leaves the data plane as
it is (an apply under way is finished first). --metrics-listen serves Prometheus
metrics (applies, failures, reloads refused) at http://IP:PORT/metrics, and
/healthz (200 while it runs) and /readyz (200 once the last apply succeeded).

An invalid file at start, a --host not in it, or no OVSDB is an error.`

// newAgentCmd is the agent verb: package hostagent's daemon.
func newAgentCmd(g *globalOptions) *cobra.Command {
	var (
		ssl       ovsdb.SSLFiles
		metrics   string
		flowCheck time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent -f FILE [--host H]",
		Short: "Keep this host matching the topology: apply, then again at every change",
		Long:  agentHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.loadTopology()
			if err != nil {
				return err
			}
			h, err := g.managedHost(t)
			if err != nil {
				return err
			}
			log := g.logger()
			defer log.Sync()
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			c := hostagent.Config{File: g.file, Topology: t, Host: h.Name, DB: g.dbEndpoint(), DBTLS: g.dbTLS(), RunDir: rundir(),
				MetricsListen: metrics, Version: buildVersion(version), Signals: hup, FlowCheck: flowCheck, Log: log}
			if ssl != (ovsdb.SSLFiles{}) {
				c.SSL = &ssl
			}
			if err := hostagent.Run(ctx, c); err != nil {
				log.Error("agent failed", zap.Error(err))
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&metrics, "metrics-listen", "", "serve Prometheus metrics at http://IP:PORT/metrics")
	fl.DurationVar(&flowCheck, "flow-check", hostagent.DefaultFlowCheck, "how often the flows are diffed against the compiled ones")
	fl.StringVar(&ssl.PrivateKey, "private-key", "", "switch's private key, for an ssl: controller (absolute path, as ovs-vsctl set-ssl)")
	fl.StringVar(&ssl.Certificate, "certificate", "", "switch's certificate, for an ssl: controller")
	fl.StringVar(&ssl.CACert, "ca-cert", "", "CA certificate that signed the controller's certificate")
	return cmd
}
