package hostagent

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/internal/health"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an apply, the "result" label of ovs_vxctl_agent_applies_total.
const (
	applyChanged   = "changed"   // something was changed
	applyUnchanged = "unchanged" // the host already matched
	applyFailed    = "failed"
)

// Outcomes of a reload, the "result" label of ovs_vxctl_agent_reloads_total.
const (
	reloadApplied   = "applied"   // a new topology is served
	reloadUnchanged = "unchanged" // the file's bytes did not change
	reloadRefused   = "refused"   // invalid: the last good topology is kept
)

// Metrics are the agent's Prometheus metrics, on a registry of their own.
// Every labelled counter starts at 0 for every label value.
type Metrics struct {
	// Registry holds them all (and only them, unless the caller's).
	Registry *prometheus.Registry

	applies      *prometheus.CounterVec
	applySeconds prometheus.Histogram
	reloads      *prometheus.CounterVec
	triggers     *prometheus.CounterVec
	lastSuccess  prometheus.Gauge
}

// NewMetrics registers the agent's metrics on reg (a new registry when nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	const ns, sub = "ovs_vxctl", "agent"
	m := &Metrics{
		Registry: reg,
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "applies_total",
			Help: "Applies run, by result: changed, unchanged or failed."}, []string{"result"}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "apply_duration_seconds",
			Help: "How long each apply took.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reloads_total",
			Help: "Re-reads of the topology file, by result: applied, unchanged or refused (invalid: nothing changed)."}, []string{"result"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "triggers_total",
			Help: "Changes that asked for an apply, by source (several coalesce into one apply)."}, []string{"source"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_success_timestamp_seconds",
			Help: "When the last apply succeeded (Unix time); 0 before the first."}),
	}
	reg.MustRegister(m.applies, m.applySeconds, m.reloads, m.triggers, m.lastSuccess)
	for _, r := range []string{applyChanged, applyUnchanged, applyFailed} {
		m.applies.WithLabelValues(r)
	}
	for _, r := range []string{reloadApplied, reloadUnchanged, reloadRefused} {
		m.reloads.WithLabelValues(r)
	}
	for _, s := range []string{SourceStart, SourceFile, SourceSignal, SourceOVSDB, SourceFlowCheck, SourceRetry} {
		m.triggers.WithLabelValues(s)
	}
	return m
}

// ServeMetrics serves the registry at http://addr/metrics (addr is IP:PORT,
// or tcp:IP:PORT), with /healthz and /readyz (ready says what is not, see
// package internal/health), until Close; it returns the server and the
// address it listens on.
func ServeMetrics(addr string, reg *prometheus.Registry, ready health.ReadyFunc) (*http.Server, net.Addr, error) {
	l, err := net.Listen("tcp", strings.TrimPrefix(addr, "tcp:"))
	if err != nil {
		return nil, nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	srv := health.Server(health.Mux(reg, ready))
	go srv.Serve(l)
	return srv, l.Addr(), nil
}
