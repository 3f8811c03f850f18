package hostagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The daemon's event loop against fakes: no OVS, no root.

// topoYAML is a valid topology with host1 and host2 sharing tenant-a and
// extra networks n2, n3... on host1 (nets counts them all).
func topoYAML(nets int) string {
	s := "name: hatest\nhosts:\n  - {name: host1, vtep: 10.0.0.1}\n  - {name: host2, vtep: 10.0.0.2}\nnetworks:\n" +
		"  - name: tenant-a\n    vni: 100\n    ports:\n      - {host: host1, name: web, iface_id: vm-web}\n      - {host: host2, name: vm2}\n"
	for i := 2; i <= nets; i++ {
		s += fmt.Sprintf("  - name: n%d\n    vni: %d\n    ports:\n      - {host: host1, name: p%d}\n", i, 100+i, i)
	}
	return s
}

// call is one apply the fake saw.
type call struct {
	t *topology.Topology
	h *topology.Host
}

// fake is an apply function that records its calls, can fail, takes a
// while, and notices applies that overlap.
type fake struct {
	calls    chan call
	fail     atomic.Int32 // fail this many calls
	delay    time.Duration
	running  atomic.Int32
	overlaps atomic.Int32
}

func newFake() *fake { return &fake{calls: make(chan call, 100)} }

func (f *fake) apply(_ context.Context, t *topology.Topology, h *topology.Host) (*agent.Report, error) {
	if f.running.Add(1) > 1 {
		f.overlaps.Add(1)
	}
	defer f.running.Add(-1)
	time.Sleep(f.delay)
	f.calls <- call{t, h}
	if f.fail.Add(-1) >= 0 {
		return nil, errors.New("fake apply failure")
	}
	return &agent.Report{OVSDB: []string{"~ something"}}, nil
}

// next waits for the next apply.
func (f *fake) next(t *testing.T, within time.Duration) call {
	t.Helper()
	select {
	case c := <-f.calls:
		if c.t.Host(c.h.Name) != c.h {
			t.Errorf("apply got a host that is not its topology's")
		}
		return c
	case <-time.After(within):
		t.Fatalf("no apply within %s", within)
		return call{}
	}
}

// none fails if an apply comes within d.
func (f *fake) none(t *testing.T, d time.Duration, why string) {
	t.Helper()
	select {
	case <-f.calls:
		t.Fatalf("an apply came, want none: %s", why)
	case <-time.After(d):
	}
}

type harness struct {
	d    *Daemon
	f    *fake
	file string
	logs *observer.ObservedLogs
	hup  chan os.Signal
}

// start writes topoYAML(nets) to a file, starts a daemon on it with fake
// and runs it until the test ends.
func start(t *testing.T, f *fake, nets int, edit func(*Options)) *harness {
	return startWith(t, f, nets, edit, nil)
}

// startWith is start with a hook that runs after New and before Run.
func startWith(t *testing.T, f *fake, nets int, edit func(*Options), beforeRun func(file string)) *harness {
	t.Helper()
	file := filepath.Join(t.TempDir(), "topology.yaml")
	writeFile(t, file, topoYAML(nets))
	top, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	hup := make(chan os.Signal, 1)
	o := Options{File: file, Topology: top, Host: "host1", Apply: f.apply, Signals: hup,
		Debounce: 40 * time.Millisecond, MaxDelay: time.Second, RetryMin: 50 * time.Millisecond, Log: zap.New(core)}
	if edit != nil {
		edit(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if beforeRun != nil {
		beforeRun(file)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &harness{d: d, f: f, file: file, logs: logs, hup: hup}
}

// writeFile replaces path as editors do: a new file renamed over it.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func counter(t *testing.T, m interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var v dto.Metric
	if err := m.Write(&v); err != nil {
		t.Fatal(err)
	}
	return v.GetCounter().GetValue()
}

// A burst of changes gives one apply, changes during an apply give one more
// after it, and applies never overlap.
func TestBurstCoalescesIntoOneApply(t *testing.T) {
	f := newFake()
	f.delay = 100 * time.Millisecond
	h := start(t, f, 1, nil)
	f.next(t, 2*time.Second) // the start

	for i := range 20 {
		h.d.Trigger(SourceOVSDB, fmt.Sprintf("change %d", i), false)
		time.Sleep(5 * time.Millisecond)
	}
	f.next(t, 2*time.Second)
	f.none(t, 300*time.Millisecond, "20 changes within the debounce interval must give one apply")

	// Changes while an apply runs: kept for exactly one more.
	h.d.Trigger(SourceOVSDB, "first", false)
	time.Sleep(60 * time.Millisecond) // debounced; the apply is now running
	h.d.Trigger(SourceOVSDB, "during 1", false)
	h.d.Trigger(SourceOVSDB, "during 2", false)
	f.next(t, 2*time.Second)
	f.next(t, 2*time.Second)
	f.none(t, 300*time.Millisecond, "changes during an apply must give one more")
	if n := f.overlaps.Load(); n != 0 {
		t.Errorf("%d applies overlapped", n)
	}
	if got := counter(t, h.d.m.triggers.WithLabelValues(SourceOVSDB)); got != 23 {
		t.Errorf("ovsdb triggers counted %v, want 23", got)
	}
}

// An invalid file is logged with all its problems and changes nothing; the
// old topology keeps being applied; a valid edit is picked up.
func TestInvalidFileKeepsTheOldTopology(t *testing.T) {
	f := newFake()
	h := start(t, f, 1, nil)
	f.next(t, 2*time.Second)

	writeFile(t, h.file, strings.Replace(topoYAML(2), "vni: 102", "vni: 100", 1)+"  - {name: bad}\n")
	f.none(t, 500*time.Millisecond, "an invalid file must change nothing")
	refused := h.logs.FilterMessageSnippet("topology file refused").All()
	if len(refused) != 1 {
		t.Fatalf("logged %d refusals, want 1: %v", len(refused), h.logs.All())
	}
	probs := fmt.Sprint(refused[0].ContextMap()["problems"])
	for _, want := range []string{"networks[1].vni: 100 is already used by networks[0]", "networks[2].vni: required"} {
		if !strings.Contains(probs, want) {
			t.Errorf("logged problems %s, want %q among them", probs, want)
		}
	}
	if got := counter(t, h.d.m.reloads.WithLabelValues(reloadRefused)); got != 1 {
		t.Errorf("reloads refused = %v, want 1", got)
	}

	h.d.Trigger(SourceOVSDB, "interface plugged", false)
	if c := f.next(t, 2*time.Second); len(c.t.Networks) != 1 {
		t.Errorf("apply after the refusal used %d networks, want the old topology's 1", len(c.t.Networks))
	}

	writeFile(t, h.file, topoYAML(2))
	if c := f.next(t, 2*time.Second); len(c.t.Networks) != 2 {
		t.Errorf("apply after a valid edit used %d networks, want 2", len(c.t.Networks))
	}
	if in := h.d.Interest(); in == nil {
		t.Error("no interest after reload")
	}
}

// SIGHUP re-reads the file (here changed while nothing watched it); one
// that did not change gives no apply.
func TestSIGHUPReloads(t *testing.T) {
	f := newFake()
	// Changed before Run watches: only SIGHUP can tell.
	h := startWith(t, f, 1, nil, func(file string) { writeFile(t, file, topoYAML(3)) })
	if c := f.next(t, 2*time.Second); len(c.t.Networks) != 1 {
		t.Fatalf("start applied %d networks, want 1", len(c.t.Networks))
	}
	h.hup <- syscall.SIGHUP
	if c := f.next(t, 2*time.Second); len(c.t.Networks) != 3 {
		t.Errorf("apply after SIGHUP used %d networks, want 3", len(c.t.Networks))
	}
	h.hup <- syscall.SIGHUP
	f.none(t, 300*time.Millisecond, "SIGHUP with an unchanged file")
	if got := counter(t, h.d.m.reloads.WithLabelValues(reloadUnchanged)); got != 1 {
		t.Errorf("unchanged reloads = %v, want 1", got)
	}
}

// A failed apply is retried; an attached-mac reaches the topology applied.
func TestFailedApplyIsRetriedAndAttachedMACUsed(t *testing.T) {
	f := newFake()
	f.fail.Store(2)
	bindings := func(context.Context, *topology.Topology, *topology.Host) ([]ovsdb.Binding, error) {
		return []ovsdb.Binding{{Port: "web", IfaceID: "vm-web", Interface: "vnet0", AttachedMAC: "52:54:00:12:34:56"}}, nil
	}
	h := start(t, f, 1, func(o *Options) { o.Bindings = bindings })
	for range 3 {
		c := f.next(t, 2*time.Second)
		web := c.t.Network("tenant-a").Ports[0]
		if web.MAC.String() != "52:54:00:12:34:56" {
			t.Errorf("port web applied with MAC %q, want the attached-mac", web.MAC)
		}
	}
	if h.d.t.Network("tenant-a").Ports[0].MAC != nil {
		t.Error("the attached-mac leaked into the daemon's topology")
	}
	f.none(t, 300*time.Millisecond, "no more retries after a success")
	if got := counter(t, h.d.m.applies.WithLabelValues(applyFailed)); got != 2 {
		t.Errorf("failed applies = %v, want 2", got)
	}
}

// The daemon parses the very bytes it hashed: a file that changes between
// the read and the parse is applied as read, and its later contents are
// seen as a change, not taken for the bytes already hashed.
func TestReloadParsesTheBytesItHashed(t *testing.T) {
	f := newFake()
	var once sync.Once
	h := start(t, f, 1, func(o *Options) {
		file := o.File
		o.Parse = func(data []byte) (*topology.Topology, error) {
			// The file changes again while the first reload parses.
			once.Do(func() { writeFile(t, file, topoYAML(3)) })
			return topology.Parse(data)
		}
	})
	f.next(t, 2*time.Second) // the start
	writeFile(t, h.file, topoYAML(2))
	if c := f.next(t, 2*time.Second); len(c.t.Networks) != 2 {
		t.Errorf("first reload applied %d networks, want the 2 of the bytes it read", len(c.t.Networks))
	}
	if c := f.next(t, 2*time.Second); len(c.t.Networks) != 3 {
		t.Errorf("second reload applied %d networks, want the 3 written meanwhile", len(c.t.Networks))
	}
}

// Reasons pile up while no apply takes them, but only up to maxPending:
// distinct reasons (an ofport per flap) cannot grow memory without bound.
func TestPendingReasonsAreBounded(t *testing.T) {
	top, err := topology.Parse([]byte(topoYAML(1)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Topology: top, Host: "host1", Apply: newFake().apply})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 * maxPending {
		d.Trigger(SourceOVSDB, fmt.Sprintf("interface vnet0: ofport %d -> %d", i, i+1), false)
		d.Trigger(SourceFile, fmt.Sprintf("edit %d", i), true)
	}
	p := d.take()
	if len(p.reasons) != maxPending || len(p.reloads) != maxPending {
		t.Errorf("kept %d reasons and %d reloads, want %d each", len(p.reasons), len(p.reloads), maxPending)
	}
	if got := counter(t, d.m.triggers.WithLabelValues(SourceOVSDB)); got != float64(10*maxPending) {
		t.Errorf("triggers counted %v, want every one: %d", got, 10*maxPending)
	}
}

// An attached-mac that two iface_id ports of one network carry is given to
// neither; a port's own MAC is still used.
func TestSharedAttachedMACIsUsedByNoPort(t *testing.T) {
	yaml := strings.Replace(topoYAML(1), "      - {host: host2, name: vm2}\n",
		"      - {host: host2, name: vm2}\n      - {host: host1, name: db, iface_id: vm-db}\n      - {host: host1, name: app, iface_id: vm-app}\n", 1)
	top, err := topology.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	bindings := func(context.Context, *topology.Topology, *topology.Host) ([]ovsdb.Binding, error) {
		return []ovsdb.Binding{
			{Port: "web", IfaceID: "vm-web", AttachedMAC: "52:54:00:00:00:01"},
			{Port: "db", IfaceID: "vm-db", AttachedMAC: "52:54:00:00:00:01"},
			{Port: "app", IfaceID: "vm-app", AttachedMAC: "52:54:00:00:00:02"},
		}, nil
	}
	d, err := New(Options{Topology: top, Host: "host1", Apply: newFake().apply, Bindings: bindings})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range d.withAttachedMACs(context.Background()).Network("tenant-a").Ports {
		got[p.Name] = p.MAC.String()
	}
	if got["web"] != "" || got["db"] != "" || got["app"] != "52:54:00:00:00:02" {
		t.Errorf("MACs given: %v; want none for web and db, which share one, and app's own", got)
	}
}

// A refused file that comes between a failed apply and its retry does not
// cancel the retry.
func TestRefusedReloadKeepsTheRetry(t *testing.T) {
	f := newFake()
	f.fail.Store(1)
	h := start(t, f, 1, func(o *Options) { o.RetryMin = 400 * time.Millisecond })
	f.next(t, 2*time.Second) // the start, which fails
	writeFile(t, h.file, "name: [broken\n")
	for deadline := time.Now().Add(time.Second); counter(t, h.d.m.reloads.WithLabelValues(reloadRefused)) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the broken file was not refused within a second")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.next(t, 2*time.Second) // the retry, still due
}
