package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
)

func TestMACLogLimiter(t *testing.T) {
	l := newMACLogLimiter(3)
	t0 := time.Unix(1000, 0)
	var ok, firsts int
	for i := range 10 {
		o, held, first := l.take("learned", t0.Add(time.Duration(i)*time.Millisecond))
		if held != nil {
			t.Fatalf("take %d returned held lines %v within the second", i, held)
		}
		if o {
			ok++
		}
		if first {
			firsts++
		}
	}
	l.take("forgotten (idle)", t0.Add(500*time.Millisecond))
	if ok != 3 || firsts != 1 {
		t.Fatalf("%d lines let through, %d firsts; want 3 and 1", ok, firsts)
	}
	if h := l.flush(t0.Add(999 * time.Millisecond)); h != nil {
		t.Fatalf("flush within the second returned %v", h)
	}
	h := l.flush(t0.Add(time.Second))
	if h["learned"] != 7 || h["forgotten (idle)"] != 1 || len(h) != 2 {
		t.Fatalf("flush = %v, want 7 learned and 1 forgotten held back", h)
	}
	if h := l.flush(t0.Add(2 * time.Second)); h != nil {
		t.Fatalf("second flush = %v, want nothing", h)
	}
	// A new second lets lines through again; the next one after it
	// returns what it held.
	for range 4 {
		l.take("moved", t0.Add(3*time.Second))
	}
	o, held, _ := l.take("learned", t0.Add(4*time.Second))
	if !o || held["moved"] != 1 {
		t.Fatalf("take in a new second = %v, %v; want let through, 1 moved held before", o, held)
	}
}

// logServer is the hardware VTEP test topology's server logging into an
// observer.
func logServer(t *testing.T, o ServerOptions) (*Server, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	o.Topology, o.Log = parseTopo(t, hwTopo), zap.New(core)
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func countMessages(logs *observer.ObservedLogs, prefix string) int {
	return logs.FilterMessageSnippet(prefix).Len()
}

// A flood of MACs from a switch writes a handful of lines and a summary;
// the switch withdrawing them says so, not "idle".
func TestMACLinesSummarisedWithReasons(t *testing.T) {
	s, logs := logServer(t, ServerOptions{})
	tor := s.Topology().Host("tor1")
	var local []hwvtep.LocalMAC
	for i := range 500 {
		local = append(local, hwvtep.LocalMAC{VNI: 100, MAC: mac(fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff))})
	}
	prev := s.observeLocal(tor, local, nil, zap.NewNop())
	if n := countMessages(logs, "MAC learned"); n != macLogPerSecond {
		t.Errorf("%d per-MAC learned lines for 500 MACs, want %d", n, macLogPerSecond)
	}
	s.logHeld(s.macLog.flush(time.Now().Add(2 * time.Second)))
	if n := logs.FilterMessage(fmt.Sprintf("%d more MACs learned in the last second", 500-macLogPerSecond)).Len(); n != 1 {
		t.Errorf("summary lines: %d, want 1; logs %v", n, messages(logs))
	}
	s.observeLocal(tor, nil, prev, zap.NewNop())
	s.logHeld(s.macLog.flush(time.Now().Add(4 * time.Second)))
	if n := countMessages(logs, "MAC forgotten (withdrawn by the switch)"); n != macLogPerSecond {
		t.Errorf("%d per-MAC 'withdrawn by the switch' lines, want %d", n, macLogPerSecond)
	}
	if n := countMessages(logs, "idle"); n != 0 {
		t.Errorf("%d lines say idle for MACs the switch withdrew", n)
	}
	if n := logs.FilterMessage(fmt.Sprintf("%d more MACs forgotten (withdrawn by the switch) in the last second", 500-macLogPerSecond)).Len(); n != 1 {
		t.Errorf("forgotten summary lines: %d; logs %v", n, messages(logs))
	}
}

// Each reason a MAC is forgotten is named: ageing, and a withdrawal of a
// MAC whose host is no longer in its network (the network was removed).
func TestForgottenReasons(t *testing.T) {
	s, logs := logServer(t, ServerOptions{})
	now := time.Now()
	s.changedWhy([]Event{{Kind: EventForgotten, Key: key(100, "02:00:00:00:00:01"), Host: "h2"}}, now, ForgotIdle)
	s.changed([]Event{{Kind: EventForgotten, Key: key(100, "02:00:00:00:00:02"), Host: "h2"}}, now)
	s.changed([]Event{{Kind: EventForgotten, Key: key(999, "02:00:00:00:00:03"), Host: "h2"}}, now)
	s.changed([]Event{{Kind: EventForgotten, Key: key(100, "02:00:00:00:00:04"), Host: "gone"}}, now)
	want := []string{"MAC forgotten (idle)", "MAC forgotten (withdrawn)",
		"MAC forgotten (network or host removed from the topology)", "MAC forgotten (network or host removed from the topology)"}
	if got := messages(logs); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
}

// The controller's per-network bound applies to what a switch reports,
// and hitting it is one warning, not one per MAC.
func TestHardwareVTEPMACsObeyPerVNIBound(t *testing.T) {
	s, logs := logServer(t, ServerOptions{MaxLearnedPerVNI: 5})
	tor := s.Topology().Host("tor1")
	var local []hwvtep.LocalMAC
	for i := range 50 {
		local = append(local, hwvtep.LocalMAC{VNI: 100, MAC: mac(fmt.Sprintf("02:00:00:00:00:%02x", i+1))})
	}
	s.observeLocal(tor, local, nil, zap.NewNop())
	if _, learned := s.know.Counts(); learned != 5 {
		t.Errorf("%d learned, want the bound 5", learned)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d warnings for 45 refused MACs, want 1: %v", n, messages(logs))
	}
	if n := learnMetric(t, s.met.boundHits.WithLabelValues(ScopeVNI)); n != 45 {
		t.Errorf("bound hits counted %v, want 45", n)
	}
}

type fakeNotDriven struct {
	hwvtepSyncer
	nd []hwvtep.NotDriven
}

func (f *fakeNotDriven) NotDriven(string, string, []uint32) []hwvtep.NotDriven { return f.nd }

// A switch whose logical switch is missing or hand-made is logged once per
// change and shows in a gauge by host and reason.
func TestReportNotDriven(t *testing.T) {
	s, logs := logServer(t, ServerOptions{Registry: prometheus.NewRegistry()})
	tor := s.Topology().Host("tor1")
	f := &fakeNotDriven{nd: []hwvtep.NotDriven{{VNI: 100, Reason: hwvtep.NotDrivenNotOurs, Detail: "hand-made"}}}
	last := ""
	for range 3 {
		last = s.reportNotDriven(f, tor, last, s.log)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Fatalf("%d warnings for the same problem read 3 times, want 1", n)
	}
	if g := learnMetric(t, s.hw.notDriven.WithLabelValues("tor1", hwvtep.NotDrivenNotOurs)); g != 1 {
		t.Errorf("gauge not_ours = %v, want 1", g)
	}
	f.nd = nil
	last = s.reportNotDriven(f, tor, last, s.log)
	if g := learnMetric(t, s.hw.notDriven.WithLabelValues("tor1", hwvtep.NotDrivenNotOurs)); g != 0 || last != "" {
		t.Errorf("after the fix: gauge %v, last %q", g, last)
	}
	if n := countMessages(logs, "every network driven again"); n != 1 {
		t.Errorf("%d all-clear lines, want 1", n)
	}
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Message)
	}
	return out
}

// learnMetric is the value of a gauge or counter.
func learnMetric(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.GetGauge().GetValue()
	}
	return d.GetCounter().GetValue()
}
