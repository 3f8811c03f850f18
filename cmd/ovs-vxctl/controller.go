package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/controller"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

// controllerHelp is the controller verb's long help.
const controllerHelp = `Run as the OpenFlow 1.3 controller of every br-tun and br-int of the topology's
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
switchca/cacert.pem).

tcp: is NOT authenticated. Datapath IDs are a hash of the topology's and the
hosts' names, so anyone who can reach the controller can claim a host's
switches. A connected switch that answers echo requests is never displaced,
but one that is away (or not connected yet) can be impersonated: the
impostor gets that host's flows and may report MACs. Use tcp: only on a
trusted management network. With ssl:, a switch must present a certificate
signed by --ca-cert whose CN is the host's name (or "<host> id:...", as
ovs-pki writes it), or with the host's name as a SAN DNS name; anything else
is refused. Set-up with ovs-pki (default --dir /var/lib/openvswitch/pki),
each switch certificate named after its host in the topology:

  ovs-pki init
  ovs-pki req+sign ctl controller     # ctl-privkey.pem, ctl-cert.pem
  ovs-pki req+sign host1 switch       # per host: host1-privkey.pem, host1-cert.pem
  # on host1 (or ovs-vxctl apply --private-key --certificate --ca-cert):
  ovs-vsctl set-ssl /etc/openvswitch/host1-privkey.pem \
      /etc/openvswitch/host1-cert.pem /etc/openvswitch/controllerca/cacert.pem
  ovs-vxctl controller -f FILE --listen ssl:IP:6653 --private-key ctl-privkey.pem \
      --certificate ctl-cert.pem --ca-cert /var/lib/openvswitch/pki/switchca/cacert.pem

Declared MACs never move: one reported from another host is logged and
counted as a conflict. A learned MAC moves at once, unless it moved more
than --mac-flap-moves times within --mac-flap-window: it then stays where it
is for --mac-flap-hold. Learned MACs are bounded in all and per network.

A br-tun that lost every flow (ovs-vswitchd restarted) lost apply's
advertisement of its local VLANs too: the controller puts back the ones it
last read from that host. To do so after its own restart as well, give it
--state-file, where it keeps them; without a record of a host it waits for
the next apply on that host, which it logs once and counts in
ovs_vxctl_controller_switches_not_ready.

The file is reloaded when it changes (its directory is watched) and on SIGHUP
(systemctl reload): a valid new topology takes effect with only the flow
changes it needs (new hosts, networks and declared MACs are served, removed
ones cleaned up, the switches of removed hosts disconnected); an invalid one
is logged with every problem and the old one keeps serving. The listen
addresses stay those of the start.

Replicas: when the topology lists a directory (directory: [tcp:IP:PORT, ...],
a clustered ovsdb-server holding ovs-vxctl's directory schema; see
'ovs-vxctl directory schema'), the controller joins it as replica --name
(default: the host name and the --listen address; every replica needs its
own, stable across restarts) and the topology's
controller list names every replica, each started with --listen at its own
target. Each switch then has one master replica, claimed in the directory
with a generation that becomes the OpenFlow role request's generation ID;
the other replicas are slaves (they program nothing and get no packet-ins).
When a master dies or hangs, a live replica claims its switches within
about 1.5 s and, since the flows are already there, sends nothing. What a
master learns is written to the directory (batched) and reaches the
switches every other replica masters. A restarted replica takes the learned
endpoints back from the directory: nothing is re-learned or re-installed.
If the directory loses its quorum, every replica keeps its roles and known
traffic flows; learning is written once it is back. --directory overrides
the topology's list; ssl: members need --directory-private-key,
--directory-certificate and --directory-ca-cert.

--metrics-listen serves Prometheus metrics at http://IP:PORT/metrics, and
/healthz (200 while the process runs) and /readyz (200 once every switch of
the topology is connected and programmed; 503 listing what is missing).
Runs until SIGINT or SIGTERM.`

// newControllerCmd is the controller verb: package controller's daemon.
func newControllerCmd(g *globalOptions) *cobra.Command {
	f := &controllerFlags{}
	cmd := &cobra.Command{
		Use:   "controller -f FILE --listen tcp:IP:PORT",
		Short: "Run as the OpenFlow controller of the topology's switches",
		Long:  controllerHelp,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.run(g) },
	}
	f.register(cmd)
	return cmd
}

// controllerFlags are the controller verb's flags; most go straight into
// the server's options.
type controllerFlags struct {
	listen      []string
	name        string // replica name, in logs and in the directory
	directory   []string
	dirTLS      ovsdb.SSLFiles
	tlsFiles    controller.TLSFiles
	metrics     string
	o           controller.ServerOptions
	echo        time.Duration
	rate, grate float64
	cpuProfile  string // hidden: a CPU profile of the run, for diagnosis
}

func (f *controllerFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.listen, "listen", nil, "listen on tcp:IP:PORT or ssl:IP:PORT (repeatable; default: the topology's controller)")
	fl.StringVar(&f.name, "name", "", "this replica's name in the directory and in every log line (default: HOSTNAME@LISTEN; one per target of a topology's controller list)")
	fl.StringArrayVar(&f.directory, "directory", nil, "a directory member, tcp:IP:PORT or ssl:IP:PORT (repeatable; default: the topology's directory list)")
	fl.StringVar(&f.dirTLS.PrivateKey, "directory-private-key", "", "ssl: directory members: this replica's private key (PEM)")
	fl.StringVar(&f.dirTLS.Certificate, "directory-certificate", "", "ssl: directory members: this replica's certificate (PEM)")
	fl.StringVar(&f.dirTLS.CACert, "directory-ca-cert", "", "ssl: directory members: the CA certificate of the members' certificates (PEM)")
	fl.StringVar(&f.tlsFiles.PrivateKey, "private-key", "", "ssl: the controller's private key (PEM)")
	fl.StringVar(&f.tlsFiles.Certificate, "certificate", "", "ssl: the controller's certificate (PEM)")
	fl.StringVar(&f.tlsFiles.CACert, "ca-cert", "", "ssl: the CA certificate that signed the switches' certificates (PEM)")
	fl.StringVar(&f.metrics, "metrics-listen", "", "serve Prometheus metrics at http://IP:PORT/metrics (and /healthz, /readyz)")
	fl.DurationVar(&f.o.MACIdle, "mac-idle", controller.DefaultMACIdle, "forget a learned MAC idle this long")
	fl.DurationVar(&f.o.AgeInterval, "age-interval", controller.DefaultAgeInterval, "how often activity is read and switches re-checked")
	fl.DurationVar(&f.o.Grace, "grace", controller.DefaultGrace, "how long first reconciles wait for every switch to (re)connect")
	fl.DurationVar(&f.echo, "echo-interval", controller.DefaultEchoInterval, "keepalive period (a switch missing 3 echoes is dropped)")
	fl.Float64Var(&f.rate, "packet-in-rate", controller.DefaultPacketInRate, "packet-ins per second per switch (more are dropped and counted)")
	fl.IntVar(&f.o.PacketInBurst, "packet-in-burst", controller.DefaultPacketInBurst, "packet-in burst per switch")
	fl.Float64Var(&f.grate, "global-packet-in-rate", controller.DefaultGlobalRate, "packet-ins per second, all switches together")
	fl.IntVar(&f.o.MaxLearned, "max-learned-macs", controller.DefaultMaxLearned, "bound on learned MACs, all networks")
	fl.IntVar(&f.o.MaxLearnedPerVNI, "max-learned-macs-per-vni", controller.DefaultMaxLearnedPerVNI, "bound on learned MACs of one network")
	fl.IntVar(&f.o.FlapMoves, "mac-flap-moves", controller.DefaultFlapMoves, "moves of a learned MAC within --mac-flap-window before it is frozen")
	fl.DurationVar(&f.o.FlapWindow, "mac-flap-window", controller.DefaultFlapWindow, "window of --mac-flap-moves")
	fl.DurationVar(&f.o.FlapHold, "mac-flap-hold", controller.DefaultFlapHold, "how long a flapping MAC stays where it is")
	fl.IntVar(&f.o.MaxPending, "max-pending-connections", controller.DefaultMaxPending, "connections not yet identified (handshakes); more are refused")
	fl.IntVar(&f.o.MaxPendingPerSource, "max-pending-per-source", controller.DefaultMaxPendingPerSource, "connections not yet identified from one IP address")
	fl.StringVar(&f.o.StateFile, "state-file", "", "keep the local VLANs read from each host here, to rebuild a lost advertisement after a restart (e.g. /var/lib/ovs-vxctl/controller-state.json)")
	fl.IntVar(&f.o.ReplyBudget, "reply-budget", controller.DefaultReplyBudget, "bytes of flow dumps gathered from all switches together; past it the largest is dropped")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (diagnosis)")
	_ = fl.MarkHidden("cpuprofile")
}

// startProfile starts the CPU profile --cpuprofile asks for; the returned
// function stops it and closes the file.
func (f *controllerFlags) startProfile() (stop func(), err error) {
	if f.cpuProfile == "" {
		return func() {}, nil
	}
	out, err := os.Create(f.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

// run checks every flag before anything listens, then serves until SIGINT
// or SIGTERM.
func (f *controllerFlags) run(g *globalOptions) error {
	t, err := g.loadTopology()
	if err != nil {
		return err
	}
	if len(f.listen) == 0 {
		if t.Controller == "" {
			return fmt.Errorf("no --listen given and topology %s names no controller", t.Name)
		}
		f.listen = []string{t.Controller}
	}
	tlsConfig, err := f.tlsConfig()
	if err != nil {
		return err
	}
	dirTLS, err := f.directoryTLS(t.Directory)
	if err != nil {
		return err
	}
	if f.metrics != "" {
		if _, err := controller.ParseMetricsListen(f.metrics); err != nil {
			return err
		}
	}
	log := g.logger()
	defer log.Sync()
	if f.name != "" {
		log = log.With(zap.String("replica", f.name))
	}
	o := f.o
	o.Topology, o.Listen, o.TLS, o.MetricsListen, o.Log = t, f.listen, tlsConfig, f.metrics, log
	o.EchoInterval, o.PacketInRate, o.GlobalRate = f.echo, f.rate, f.grate
	o.Name, o.Directory, o.DirectoryTLS = f.name, f.directory, dirTLS
	if f.tlsFiles != (controller.TLSFiles{}) {
		// The same files reach ssl: hardware_vtep databases.
		if o.HardwareVTEPTLS, err = f.tlsFiles.OVSDBClientConfig(); err != nil {
			return err
		}
	}
	o.Version = buildVersion(version)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// SIGHUP reloads the file (as a change of it does) instead of ending
	// the controller.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := controller.NewServer(o)
	if err != nil {
		return err
	}
	stopProfile, err := f.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		srv.WatchFile(ctx, g.file, hup)
	}()
	err = srv.Run(ctx, nil)
	cancel()
	<-watching
	if err != nil {
		log.Error("controller failed", zap.Error(err))
		return err
	}
	return nil
}

// tlsConfig is the TLS configuration an ssl: listener needs, or the TLS
// flags ask for; nil when neither does.
func (f *controllerFlags) tlsConfig() (*tls.Config, error) {
	needTLS := false
	for _, l := range f.listen {
		la, err := controller.ParseListen(l)
		if err != nil {
			return nil, err
		}
		needTLS = needTLS || la.TLS
	}
	if needTLS || f.tlsFiles != (controller.TLSFiles{}) {
		return f.tlsFiles.Config()
	}
	return nil, nil
}

// directoryTLS is the TLS configuration of the directory's ssl: members
// (--directory, else the topology's list); nil when none is ssl:.
func (f *controllerFlags) directoryTLS(topoDir []string) (*tls.Config, error) {
	members := f.directory
	if len(members) == 0 {
		members = topoDir
	}
	needTLS := false
	for _, m := range members {
		switch {
		case strings.HasPrefix(m, "ssl:"):
			needTLS = true
		case !strings.HasPrefix(m, "tcp:"):
			return nil, fmt.Errorf("directory member %q: want tcp:IP:PORT or ssl:IP:PORT", m)
		}
	}
	if !needTLS {
		return nil, nil
	}
	if !f.dirTLS.Complete() {
		return nil, errors.New("an ssl: directory member needs --directory-private-key, --directory-certificate and --directory-ca-cert")
	}
	return ovsdb.ClientTLS(f.dirTLS)
}
