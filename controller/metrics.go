package controller

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Packet-in outcomes, the "result" label of ovs_vxctl_controller_packet_ins_total.
const (
	resultLearned     = "learned"      // a new MAC
	resultMoved       = "moved"        // a known MAC on another host
	resultRefreshed   = "refreshed"    // already known there (its flows are on the way)
	resultRateLimited = "rate_limited" // over the per-switch or global budget
	resultFull        = "full"         // the bound on learned MACs is reached
	resultIgnored     = "ignored"      // not a report of an unknown local source
	resultMalformed   = "malformed"    // undecodable
	resultNotReady    = "not_ready"    // the switch's allocation is not known yet
)

// metrics are the controller's Prometheus metrics, on a registry of its own
// (several servers may run in one process, as tests do).
type metrics struct {
	reg *prometheus.Registry

	connected   *prometheus.GaugeVec
	flows       *prometheus.GaugeVec
	flowMods    *prometheus.CounterVec
	bundles     *prometheus.CounterVec
	packetIns   *prometheus.CounterVec
	reconciles  *prometheus.HistogramVec
	reconErrors *prometheus.CounterVec
	convergence *prometheus.HistogramVec
	refused     *prometheus.CounterVec
	macEvents   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, k *Knowledge) *metrics {
	const ns, sub = "ovs_vxctl", "controller"
	m := &metrics{
		reg: reg,
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "switches_connected",
			Help: "Switches connected and identified, by bridge."}, []string{"bridge"}),
		flows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "flows",
			Help: "Flows the controller keeps on each switch, after its last reconcile."}, []string{"host", "bridge"}),
		flowMods: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "flow_mods_sent_total",
			Help: "Flow-mods sent (inside bundles)."}, []string{"host", "bridge"}),
		bundles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bundles_sent_total",
			Help: "Atomic bundles committed."}, []string{"host", "bridge"}),
		packetIns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "packet_ins_total",
			Help: "Packet-ins received, by what came of them (rate_limited counts drops)."}, []string{"host", "result"}),
		reconciles: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "reconcile_duration_seconds",
			Help: "Time to reconcile one switch: read, diff and commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"bridge"}),
		reconErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reconcile_errors_total",
			Help: "Reconciles that failed (retried with backoff)."}, []string{"host", "bridge"}),
		convergence: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "convergence_seconds",
			Help:    "Time from a change of knowledge (a packet-in, an expiry) to its commit on an affected switch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"bridge"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "switches_refused_total",
			Help: "Connections refused, by reason."}, []string{"reason"}),
		macEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mac_events_total",
			Help: "Changes of the controller's knowledge, by kind (learned, moved, ip-learned, forgotten, adopted)."}, []string{"kind"}),
	}
	known := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "macs_known",
		Help: "MACs the controller knows, by kind: declared in the topology or learned.", ConstLabels: prometheus.Labels{"kind": "declared"}},
		func() float64 { d, _ := k.Counts(); return float64(d) })
	learned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "macs_known",
		Help: "MACs the controller knows, by kind: declared in the topology or learned.", ConstLabels: prometheus.Labels{"kind": "learned"}},
		func() float64 { _, l := k.Counts(); return float64(l) })
	reg.MustRegister(m.connected, m.flows, m.flowMods, m.bundles, m.packetIns, m.reconciles, m.reconErrors,
		m.convergence, m.refused, m.macEvents, known, learned)
	for _, b := range []string{"br-int", "br-tun"} {
		m.connected.WithLabelValues(b)
	}
	return m
}
