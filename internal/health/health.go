// Package health is what the long-running processes (the controller, the
// agent) serve beside their own metrics: the build and runtime collectors,
// and the /healthz and /readyz endpoints a supervisor or a load balancer
// probes.
package health

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// RegisterRuntime registers on reg the ovs_vxctl_build_info gauge (1, with
// the version and Go version as labels) and the Go and process collectors.
// A collector reg already holds is kept, so a caller's registry that has
// them is fine.
func RegisterRuntime(reg *prometheus.Registry, version string) error {
	if version == "" {
		version = "unknown"
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ovs_vxctl", Name: "build_info",
		Help:        "The version of ovs-vxctl and the Go version it was built with; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	info.Set(1)
	for _, c := range []prometheus.Collector{info, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return fmt.Errorf("registering the runtime metrics: %w", err)
		}
	}
	return nil
}

// ReadyFunc lists what keeps the process from being ready, one short line
// each; none: ready.
type ReadyFunc func() []string

// Mux serves reg at /metrics, /healthz (200 while the process answers at
// all) and /readyz (200 when ready reports nothing, else 503 with what it
// reports, a line each).
func Mux(reg *prometheus.Registry, ready ReadyFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var missing []string
		if ready != nil {
			missing = ready()
		}
		if len(missing) == 0 {
			fmt.Fprintln(w, "ready")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready:\n%s\n", strings.Join(missing, "\n"))
	})
	return mux
}

// Server is an HTTP server for Mux with the timeouts a metrics endpoint
// wants: a scraper that says nothing must not hold a connection for ever.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}
