package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
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
	resultConflict    = "conflict"     // a declared MAC seen on another host: not moved
	resultDamped      = "damped"       // a flapping learned MAC, frozen: not moved
)

// Reasons of ovs_vxctl_controller_switches_refused_total.
const (
	refusedTLS          = "tls"                  // TLS handshake failed
	refusedHandshake    = "handshake"            // OpenFlow handshake failed
	refusedUnknown      = "unknown"              // not a switch of the topology
	refusedLearnMode    = "learn-mode"           // a switch of a learn-mode host
	refusedCertificate  = "certificate"          // the certificate does not name the host
	refusedClaimed      = "claimed"              // the datapath ID's switch is connected and answers
	refusedPending      = "pending-limit"        // too many connections not yet identified
	refusedPendingPerIP = "pending-limit-source" // too many of them from one address
)

// displacedUnresponsive is the reason of
// ovs_vxctl_controller_switches_displaced_total: the connected switch did
// not answer the probe a new claim of its datapath ID triggered.
const displacedUnresponsive = "unresponsive"

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
	displaced   *prometheus.CounterVec
	pending     prometheus.Gauge
	echoDropped prometheus.Counter
	macEvents   *prometheus.CounterVec
	conflicts   prometheus.Counter
	dampings    prometheus.Counter
	boundHits   *prometheus.CounterVec
	// br-tun switches held back for want of their allocation, and
	// allocations rebuilt by the controller (realloc.go).
	notReady      prometheus.Gauge
	allocRebuilds *prometheus.CounterVec
	// Replicas (registerReplica): role changes by new role, claims by
	// outcome, learned endpoints exchanged with the directory by outcome.
	roleChanges    *prometheus.CounterVec
	claims         *prometheus.CounterVec
	replicaLearned *prometheus.CounterVec
}

// Outcomes of ovs_vxctl_controller_directory_endpoints_total.
const (
	learnedWritten = "written" // queued for the directory's batched writer
	learnedDropped = "dropped" // its queue was full
	learnedMerged  = "merged"  // another replica's, taken into the knowledge
	learnedRefused = "refused" // another replica's, over a bound on learned MACs
	// learnedMalformed: a row that does not parse or names a host (or
	// network) the topology lacks, left out.
	learnedMalformed = "malformed"
	// learnedForgotten: a forgotten MAC's row queued for deletion.
	learnedForgotten = "forgotten"
)

// registerReplica registers the metrics of controller replicas, every label
// at 0; connected reports whether the directory is connected.
func (m *metrics) registerReplica(reg *prometheus.Registry, connected func() bool) {
	const ns, sub = "ovs_vxctl", "controller"
	m.roleChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "role_changes_total",
		Help: "OpenFlow roles this replica took on a switch, by role (master, slave)."}, []string{"role"})
	m.claims = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "claims_total",
		Help: "Claims of a switch's mastership in the directory, by result (won, lost, failed: the directory could not commit; released: given up when its session ended or orphaned; backed_off: claims held back after the switch gave mastership to another controller)."}, []string{"result"})
	m.replicaLearned = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "directory_endpoints_total",
		Help: "Learned endpoints exchanged with the directory, by result (written, dropped on a full queue, merged from another replica, refused by a bound)."}, []string{"result"})
	dirUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "directory_connected",
		Help: "1 while this replica has a synced session to the directory's leader."},
		func() float64 {
			if connected() {
				return 1
			}
			return 0
		})
	reg.MustRegister(m.roleChanges, m.claims, m.replicaLearned, dirUp)
	for _, r := range []string{"master", "slave"} {
		m.roleChanges.WithLabelValues(r)
	}
	for _, r := range []string{claimWon, claimLost, claimFailed, claimReleased, claimBackedOff} {
		m.claims.WithLabelValues(r)
	}
	for _, r := range []string{learnedWritten, learnedDropped, learnedMerged, learnedRefused, learnedMalformed, learnedForgotten} {
		m.replicaLearned.WithLabelValues(r)
	}
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
		displaced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "switches_displaced_total",
			Help: "Connected switches replaced by a new connection claiming their datapath ID, by reason."}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connections_pending",
			Help: "Connections accepted and not yet identified (TLS and OpenFlow handshakes, identity checks)."}),
		echoDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "echo_requests_dropped_total",
			Help: "Echo requests left unanswered because the switch did not read the replies already queued."}),
		macEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mac_events_total",
			Help: "Changes of the controller's knowledge, by kind (learned, moved, ip-learned, forgotten, adopted)."}, []string{"kind"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "declared_mac_conflicts_total",
			Help: "Reports of a MAC declared in the topology from another host than its own (not obeyed)."}),
		dampings: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mac_flap_dampings_total",
			Help: "Learned MACs frozen where they were for moving too often (each hold-down counts once)."}),
		boundHits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "learned_mac_bound_hits_total",
			Help: "New MACs not learned because a bound was reached, by scope: global or vni (one network's)."}, []string{"scope"}),
		notReady: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "switches_not_ready",
			Help: "Connected br-tun switches not programmed because their allocation (local VLANs) is unknown: no advertisement and nothing to rebuild it from."}),
		allocRebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "allocations_rebuilt_total",
			Help: "Allocation advertisements a switch had lost, rebuilt by the controller, by source: memory or state-file."}, []string{"source"}),
	}
	known := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "macs_known",
		Help: "MACs the controller knows, by kind: declared in the topology or learned.", ConstLabels: prometheus.Labels{"kind": "declared"}},
		func() float64 { d, _ := k.Counts(); return float64(d) })
	learned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "macs_known",
		Help: "MACs the controller knows, by kind: declared in the topology or learned.", ConstLabels: prometheus.Labels{"kind": "learned"}},
		func() float64 { _, l := k.Counts(); return float64(l) })
	reg.MustRegister(m.connected, m.flows, m.flowMods, m.bundles, m.packetIns, m.reconciles, m.reconErrors,
		m.convergence, m.refused, m.displaced, m.pending, m.echoDropped, m.macEvents, m.conflicts, m.dampings,
		m.boundHits, m.notReady, m.allocRebuilds, known, learned)
	// Every known label exists from the start, at 0, so rates and alerts
	// work before the first event.
	for _, b := range []string{topology.BridgeInt, topology.BridgeTun} {
		m.connected.WithLabelValues(b)
	}
	for _, r := range []string{refusedTLS, refusedHandshake, refusedUnknown, refusedLearnMode, refusedCertificate,
		refusedClaimed, refusedPending, refusedPendingPerIP} {
		m.refused.WithLabelValues(r)
	}
	m.displaced.WithLabelValues(displacedUnresponsive)
	for _, sc := range []string{ScopeGlobal, ScopeVNI} {
		m.boundHits.WithLabelValues(sc)
	}
	for _, src := range []string{rebuiltFromMemory, rebuiltFromStateFile} {
		m.allocRebuilds.WithLabelValues(src)
	}
	return m
}
