// Package hostagent is the daemon of `ovs-vxctl agent`: it keeps one host
// matching the topology file for as long as it runs. It applies with
// package agent (the library `ovs-vxctl apply` runs once) at start, and again
// whenever something it cares about changes: an interface carrying the
// iface-id of one of the host's ports is plugged, unplugged or renumbered,
// a row it owns (or a Port it bound) is edited behind its back, the file
// changes, SIGHUP arrives, or the periodic flow check comes round (flows
// edited behind its back raise no event: every FlowCheck an apply diffs
// them, which sends nothing when they are right). Changes are coalesced, so
// that a burst gives one apply, and applies run one at a time. A file that
// does not parse is logged with all its problems and changes nothing: the
// last good topology keeps being served. Stopping leaves the data plane as
// it is: the daemon never destroys anything.
package hostagent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/internal/watch"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Defaults of Options.
const (
	// DefaultDebounce is how long the daemon waits for a change to be
	// followed by no other before it applies: a VM plug is a few
	// transactions in a row, and an editor's save a few file events.
	DefaultDebounce = 75 * time.Millisecond
	// DefaultMaxDelay bounds the wait of a steady stream of changes.
	DefaultMaxDelay = 500 * time.Millisecond
	// DefaultFlowCheck is the period of the flow check: OpenFlow has no
	// cheap notification of a flow edited by someone else.
	DefaultFlowCheck = 30 * time.Second
	// DefaultApplyTimeout bounds one apply.
	DefaultApplyTimeout = 60 * time.Second
	// Failed applies are retried after RetryMin, doubling up to RetryMax.
	DefaultRetryMin = time.Second
	DefaultRetryMax = 30 * time.Second
)

// Sources of a trigger, the "source" label of
// ovs_vxctl_agent_triggers_total.
const (
	SourceStart     = "start"      // the first apply
	SourceFile      = "file"       // the topology file changed
	SourceSignal    = "sighup"     // SIGHUP: re-read the file
	SourceOVSDB     = "ovsdb"      // a change of OVSDB the host cares about
	SourceFlowCheck = "flow-check" // the periodic check for drift
	SourceRetry     = "retry"      // an apply failed earlier
)

// The messages of the log lines that end an apply: one of them follows
// every apply (MsgUnchanged only after a start or a failure, unless
// debugging), so that a supervisor can tell when the agent is in step.
const (
	MsgApplied   = "applied"
	MsgUnchanged = "host already matches the topology"
	MsgFailed    = "apply failed; retrying"
)

// ApplyFunc makes host h match topology t: agent.Apply in production.
type ApplyFunc func(ctx context.Context, t *topology.Topology, h *topology.Host) (*agent.Report, error)

// BindingsFunc reads the interfaces bound to h's iface_id ports.
type BindingsFunc func(ctx context.Context, t *topology.Topology, h *topology.Host) ([]ovsdb.Binding, error)

// Options configure a Daemon. Topology, Host and Apply are required.
type Options struct {
	File     string             // the topology file, watched; "" watches nothing
	Topology *topology.Topology // the file's contents at start (valid)
	Host     string             // this host's name in the topology
	Apply    ApplyFunc
	// Parse parses the bytes of the file read again; topology.Parse when
	// nil. The daemon parses exactly the bytes it hashed: reading the file
	// a second time could parse a half-written one and then take the
	// finished file, whose hash is the same, as unchanged.
	Parse func(data []byte) (*topology.Topology, error)
	// Bindings, when set, gives each iface_id port without a MAC in the
	// file its interface's attached-mac before each apply.
	Bindings BindingsFunc
	// Signals delivers SIGHUP; nil when no signal is handled.
	Signals <-chan os.Signal

	Debounce, MaxDelay, FlowCheck, ApplyTimeout, RetryMin, RetryMax time.Duration

	Log     *zap.Logger
	Metrics *Metrics // nil: NewMetrics(nil)
}

// Daemon keeps one host matching the topology. Its methods are safe for
// concurrent use; Run runs the applies, one at a time.
type Daemon struct {
	o   Options
	log *zap.Logger
	m   *Metrics

	// Touched by Run's goroutine only.
	t        *topology.Topology
	h        *topology.Host
	fileHash [sha256.Size]byte
	warnings []string // of the last apply, so that each is logged once
	synced   bool     // the last apply succeeded
	retry    time.Duration

	interest atomic.Pointer[ovsdb.Interest]
	// unready is why the host may not match (NotReady): nil before the
	// first apply ends, "" after one that succeeded.
	unready atomic.Pointer[string]
	mu      sync.Mutex
	pending pending
	wake    chan struct{}
}

// pending is what was asked for since the last apply: reloads (with why)
// and applies (with why).
type pending struct {
	reloads []string
	reasons []string
}

// New checks o and fills in its defaults; Run starts the daemon.
func New(o Options) (*Daemon, error) {
	if o.Topology == nil || o.Apply == nil {
		return nil, fmt.Errorf("the host agent needs a topology and an apply function")
	}
	h := o.Topology.Host(o.Host)
	if h == nil || !h.Managed {
		return nil, fmt.Errorf("host %q is not a managed host of topology %s", o.Host, o.Topology.Name)
	}
	setDefault(&o.Debounce, DefaultDebounce)
	setDefault(&o.MaxDelay, DefaultMaxDelay)
	setDefault(&o.FlowCheck, DefaultFlowCheck)
	setDefault(&o.ApplyTimeout, DefaultApplyTimeout)
	setDefault(&o.RetryMin, DefaultRetryMin)
	setDefault(&o.RetryMax, DefaultRetryMax)
	if o.Parse == nil {
		o.Parse = topology.Parse
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	d := &Daemon{o: o, log: o.Log.With(zap.String("topology", o.Topology.Name), zap.String("host", o.Host)),
		m: o.Metrics, t: o.Topology, h: h, wake: make(chan struct{}, 1)}
	if o.File != "" {
		if b, err := os.ReadFile(o.File); err == nil {
			d.fileHash = sha256.Sum256(b)
		}
	}
	d.interest.Store(ovsdb.InterestOf(d.t, d.h))
	return d, nil
}

func setDefault(v *time.Duration, def time.Duration) {
	if *v <= 0 {
		*v = def
	}
}

// Interest is what OVSDB changes the daemon applies for, given the
// topology it serves now (for ovsdb.Client.Watch).
func (d *Daemon) Interest() *ovsdb.Interest { return d.interest.Load() }

// Trigger asks for an apply, after re-reading the file when reload is set.
// It never blocks: triggers that come while an apply is running are kept
// for the next one.
func (d *Daemon) Trigger(source, reason string, reload bool) {
	d.m.triggers.WithLabelValues(source).Inc()
	d.log.Debug("change", zap.String("source", source), zap.String("reason", reason))
	d.mu.Lock()
	list := &d.pending.reasons
	if reload {
		list = &d.pending.reloads
	}
	// Bounded: an interface flapping through a long apply gives a new
	// reason at each ofport, and only the first few are ever logged.
	if len(*list) < maxPending && !slices.Contains(*list, reason) {
		*list = append(*list, reason)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// maxPending bounds the reasons kept for the next apply: more than
// maxReasons, so that the apply's log line still says there were more.
const maxPending = 4 * maxReasons

// take returns what is pending and clears it.
func (d *Daemon) take() pending {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pending
	d.pending = pending{}
	return p
}

// Run applies at once and then whenever triggered, until ctx ends. An
// apply under way when ctx ends is finished first (within ApplyTimeout),
// so that the host is never left half-applied; nothing is undone.
func (d *Daemon) Run(ctx context.Context) error {
	files, err := d.watchFile()
	if err != nil {
		return err
	}
	defer files.Close()
	d.log.Info("agent started", zap.String("file", d.o.File), zap.Duration("flow_check", d.o.FlowCheck))
	d.Trigger(SourceStart, "start", false)
	flowCheck := time.NewTicker(d.o.FlowCheck)
	defer flowCheck.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			d.log.Info("agent stopping; the data plane stays as it is")
			return nil
		case <-d.o.Signals:
			d.Trigger(SourceSignal, "SIGHUP", true)
		case ev := <-files.Events():
			if files.Concerns(ev) {
				d.Trigger(SourceFile, "topology file "+ev.Op.String(), true)
			}
		case err := <-files.Errors():
			d.log.Warn("watching the topology file", zap.Error(err))
		case <-flowCheck.C:
			d.Trigger(SourceFlowCheck, "periodic check for drift", false)
		case <-retry:
			d.Trigger(SourceRetry, "retry after a failed apply", false)
		case <-d.wake:
			if !d.settle(ctx, files) {
				continue
			}
			// A wake that ran no apply (a refused or unchanged file)
			// keeps the retry of an earlier failure.
			switch applied, err := d.process(ctx); {
			case err != nil:
				retry = time.After(d.nextRetry())
			case applied:
				retry, d.retry = nil, 0
			}
		}
	}
}

// settle waits until no trigger came for Debounce (at most MaxDelay), so
// that a burst of changes gives one apply. File events keep coming in
// while it waits. It reports false when ctx ended.
func (d *Daemon) settle(ctx context.Context, files *watch.File) bool {
	quiet := time.NewTimer(d.o.Debounce)
	defer quiet.Stop()
	limit := time.NewTimer(d.o.MaxDelay)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-d.wake:
			quiet.Reset(d.o.Debounce)
		case ev := <-files.Events():
			if files.Concerns(ev) {
				d.Trigger(SourceFile, "topology file "+ev.Op.String(), true)
			}
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		}
	}
}

// nextRetry is the delay before retrying a failed apply: RetryMin, doubled
// by each failure in a row up to RetryMax.
func (d *Daemon) nextRetry() time.Duration {
	d.retry = min(max(2*d.retry, d.o.RetryMin), d.o.RetryMax)
	return d.retry
}
