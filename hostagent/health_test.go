package hostagent

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/health"
)

// TestHealthEndpoints: the agent's /readyz follows its applies; /metrics
// has the runtime collectors.
func TestHealthEndpoints(t *testing.T) {
	f := newFake()
	f.fail.Store(1) // the first apply fails, the retry succeeds
	f.delay = 100 * time.Millisecond
	m := NewMetrics(nil)
	if err := health.RegisterRuntime(m.Registry, "v1.2.3-test"); err != nil {
		t.Fatal(err)
	}
	h := start(t, f, 1, func(o *Options) { o.Metrics = m })
	srv, addr, err := ServeMetrics("127.0.0.1:0", m.Registry, h.d.NotReady)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + path)
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
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no apply has finished yet") {
		t.Errorf("/readyz before the first apply: %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	f.next(t, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for code, body := get("/readyz"); !strings.Contains(body, "fake apply failure"); code, body = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after a failed apply: %d %q", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.next(t, 5*time.Second)
	for code, body := get("/readyz"); code != http.StatusOK; code, body = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after a successful apply: %d %q", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{`ovs_vxctl_build_info{goversion="go`, `version="v1.2.3-test"} 1`, "go_goroutines ", "process_cpu_seconds_total ",
		`ovs_vxctl_agent_reloads_total{result="refused"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
