package controller

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get fetches http://addr/path: the status and the body.
func get(t *testing.T, addr net.Addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr.String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHealthEndpoints: /healthz answers at once, /readyz only once every
// switch of the topology is connected and programmed, and /metrics has the
// runtime collectors and every counter from the start.
func TestHealthEndpoints(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, MetricsListen: "127.0.0.1:0", Version: "v9.9.9-test"})
	addr := srv.MetricsAddr()

	if code, body := get(t, addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := get(t, addr, "/readyz")
	if code != http.StatusServiceUnavailable || strings.Count(body, "not connected") != 6 || !strings.Contains(body, "h2 br-tun: not connected") {
		t.Errorf("/readyz with no switch connected: %d\n%s", code, body)
	}

	_, metrics := get(t, addr, "/metrics")
	for _, want := range []string{
		`ovs_vxctl_build_info{goversion="go`,
		`version="v9.9.9-test"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
		`ovs_vxctl_controller_reloads_total{result="ok"} 0`,
		`ovs_vxctl_controller_reloads_total{result="invalid"} 0`,
		`ovs_vxctl_controller_reloads_total{result="unchanged"} 0`,
		`ovs_vxctl_controller_flow_mods_sent_total{bridge="br-tun",host="h3"} 0`,
		`ovs_vxctl_controller_reconcile_errors_total{bridge="br-int",host="h1"} 0`,
		`ovs_vxctl_controller_packet_ins_total{host="h2",result="learned"} 0`,
		`ovs_vxctl_controller_mac_events_total{kind="moved"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	for _, e := range hosts {
		e.connect(t, l.Addr().String())
	}
	eventually(t, 10*time.Second, "/readyz says ready", func() bool {
		code, _ := get(t, addr, "/readyz")
		return code == http.StatusOK
	})
	if !srv.synced(0, 6) {
		t.Error("/readyz said ready before every switch was synced")
	}

	// A switch that goes away makes the controller not ready again.
	h1 := emuHostNamed(hosts, "h1")
	h1.tun.Close()
	eventually(t, 10*time.Second, "/readyz names the missing switch", func() bool {
		code, body := get(t, addr, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "h1 br-tun: not connected") && strings.Count(body, "\n") == 2
	})
}
