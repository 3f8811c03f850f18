package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/controller"
)

func newControllerCmd(g *globalOptions) *cobra.Command {
	var (
		listen      []string
		tlsFiles    controller.TLSFiles
		metrics     string
		o           controller.ServerOptions
		echo        time.Duration
		rate, grate float64
	)
	cmd := &cobra.Command{
		Use:   "controller -f FILE --listen tcp:IP:PORT",
		Short: "Run as the OpenFlow controller of the topology's switches",
		Long: `Run as the OpenFlow 1.3 controller of every br-tun and br-int of the topology's
controller-mode hosts (apply points them at the topology's controller address).
Switches are identified by datapath ID; any other switch is refused. Each
switch gets the compiled pipeline plus what the controller knows: declared
MACs and IPs, and MACs (and ARP-announced IPs) learned from packet-ins, as
unicast entries and ARP responders on every other host of the network. Every
change is pushed as a diff in one atomic bundle; a (re)connecting switch is
reconciled against what it already holds.

--listen takes tcp:IP:PORT or ssl:IP:PORT (repeatable; default: the topology's
controller address). ssl: needs --private-key, --certificate and --ca-cert
(the CA that signed the switches' certificates, e.g. ovs-pki's
switchca/cacert.pem): switches must present a certificate it signed.
Runs until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.loadTopology()
			if err != nil {
				return err
			}
			if len(listen) == 0 {
				if t.Controller == "" {
					return fmt.Errorf("no --listen given and topology %s names no controller", t.Name)
				}
				listen = []string{t.Controller}
			}
			needTLS := false
			for _, l := range listen {
				la, err := controller.ParseListen(l)
				if err != nil {
					return err
				}
				needTLS = needTLS || la.TLS
			}
			var tlsConfig *tls.Config
			if needTLS || tlsFiles != (controller.TLSFiles{}) {
				if tlsConfig, err = tlsFiles.Config(); err != nil {
					return err
				}
			}
			if metrics != "" {
				if _, err := controller.ParseMetricsListen(metrics); err != nil {
					return err
				}
			}
			log := g.logger()
			defer log.Sync()
			o.Topology, o.Listen, o.TLS, o.MetricsListen, o.Log = t, listen, tlsConfig, metrics, log
			o.EchoInterval, o.PacketInRate, o.GlobalRate = echo, rate, grate
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			srv, err := controller.NewServer(o)
			if err != nil {
				return err
			}
			if err := srv.Run(ctx, nil); err != nil {
				log.Error("controller failed", zap.Error(err))
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&listen, "listen", nil, "listen on tcp:IP:PORT or ssl:IP:PORT (repeatable; default: the topology's controller)")
	f.StringVar(&tlsFiles.PrivateKey, "private-key", "", "ssl: the controller's private key (PEM)")
	f.StringVar(&tlsFiles.Certificate, "certificate", "", "ssl: the controller's certificate (PEM)")
	f.StringVar(&tlsFiles.CACert, "ca-cert", "", "ssl: the CA certificate that signed the switches' certificates (PEM)")
	f.StringVar(&metrics, "metrics-listen", "", "serve Prometheus metrics at http://IP:PORT/metrics")
	f.DurationVar(&o.MACIdle, "mac-idle", controller.DefaultMACIdle, "forget a learned MAC idle this long")
	f.DurationVar(&o.AgeInterval, "age-interval", controller.DefaultAgeInterval, "how often activity is read and switches re-checked")
	f.DurationVar(&o.Grace, "grace", controller.DefaultGrace, "how long first reconciles wait for every switch to (re)connect")
	f.DurationVar(&echo, "echo-interval", controller.DefaultEchoInterval, "keepalive period (a switch missing 3 echoes is dropped)")
	f.Float64Var(&rate, "packet-in-rate", controller.DefaultPacketInRate, "packet-ins per second per switch (more are dropped and counted)")
	f.IntVar(&o.PacketInBurst, "packet-in-burst", controller.DefaultPacketInBurst, "packet-in burst per switch")
	f.Float64Var(&grate, "global-packet-in-rate", controller.DefaultGlobalRate, "packet-ins per second, all switches together")
	f.IntVar(&o.MaxLearned, "max-learned-macs", controller.DefaultMaxLearned, "bound on learned MACs")
	return cmd
}
