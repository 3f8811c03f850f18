package flows

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// exampleTopologies loads every examples/*/topology.yaml once per mode: as
// the file says, then with every host in learn mode, then in controller mode.
func exampleTopologies(t *testing.T) map[string]*topology.Topology {
	t.Helper()
	files, err := filepath.Glob("../examples/*/topology.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	out := map[string]*topology.Topology{}
	for _, file := range files {
		for _, mode := range []topology.Mode{"", topology.ModeLearn, topology.ModeController} {
			topo, err := topology.Load(file)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, h := range topo.Hosts {
				if mode != "" {
					h.Mode = mode
				}
			}
			name := filepath.Base(filepath.Dir(file))
			if mode != "" {
				name += "/" + string(mode)
			}
			out[name] = topo
		}
	}
	return out
}

// Every golden file's flows keep the contract, and so do the controller's
// (declared endpoints) and the allocation advertisement, in either mode.
func TestValidateAcceptsGoldenAndControllerFlows(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/golden/*.flows")
	checked := 0
	for name, topo := range exampleTopologies(t) {
		for _, h := range topo.ManagedHosts() {
			alloc := mustAlloc(t, topo, h.Name)
			prog, err := Compile(topo, h, alloc)
			if err != nil {
				t.Fatalf("%s host %s: %v", name, h.Name, err)
			}
			if !strings.Contains(name, "/") {
				// The flows as the file says are the golden files' flows.
				for bridge, fl := range map[string][]Flow{topology.BridgeTun: prog.Tun, topology.BridgeInt: prog.Int} {
					path := filepath.Join("../examples", name, "golden", h.Name+"."+bridge+".flows")
					want, err := os.ReadFile(path)
					if err != nil || string(want) != strings.Join(lines(fl), "\n")+"\n" {
						t.Fatalf("%s: not the compiled flows (%v): run TestExamplesMatchGoldenFiles", path, err)
					}
					checked++
				}
			}
			tun := append(prog.Tun, CompileEndpoints(topo, h, alloc, DeclaredEndpoints(topo))...)
			tun = append(tun, CompileAllocation(alloc)...)
			if err := Validate(tun); err != nil {
				t.Errorf("%s host %s: %v", name, h.Name, err)
			}
			if err := ValidateInt(prog.Int); err != nil {
				t.Errorf("%s host %s: %v", name, h.Name, err)
			}
		}
	}
	if checked != len(files) {
		t.Errorf("validated %d golden files, there are %d", checked, len(files))
	}
}

// resubmit stands for an action package flows does not define (as the
// decoder's are): Validate cannot know where it leads.
type resubmit struct {
	Action
	table uint8
}

func (r resubmit) String() string { return fmt.Sprintf("resubmit(,%d)", r.table) }

// Each hand-made flow breaks exactly one rule of the contract: Validate
// rejects it naming the flow, and accepts the flow it was made from.
func TestValidateRejectsBrokenFlows(t *testing.T) {
	ip := netip.MustParseAddr("10.1.1.1")
	good := map[string]Flow{
		"classify": {Table: TableClassify, Priority: PriorityClassify, Match: Match{InPort: 10}, Actions: []Action{GotoTable{TableFromTun}}},
		"tunnel": {Table: TableFromTun, Priority: PriorityClassify, Match: Match{HasTunID: true, TunID: 100, InPort: 10},
			Actions: []Action{PushVLAN{}, SetVLANVID{VID: 1}, Learn{Table: TableUnicast, Priority: PriorityLearned}, Output{Port: 1}}},
		"flood":   {Table: TableFlood, Priority: PriorityClassify, Match: Match{HasVLAN: true, VLAN: 1}, Actions: []Action{PopVLAN{}, Output{Port: 10}}},
		"arp":     {Table: TableARP, Priority: PriorityARP, Match: Match{EthType: EthTypeARP, HasVLAN: true, VLAN: 1, ArpTPA: ip, ArpOp: 1}},
		"miss":    {Table: TableUnicast, Priority: PriorityMiss, Actions: []Action{GotoTable{TableFlood}}},
		"advert":  {Table: TableAllocation, Priority: PriorityClassify, Match: Match{HasTunID: true, TunID: 100, HasVLAN: true, VLAN: 1}},
		"fromint": {Table: TableFromPort, Priority: PriorityKnownARP, Match: Match{EthType: EthTypeARP, HasVLAN: true, VLAN: 1, EthSrc: mac("52:54:00:00:00:01"), ArpSPA: ip}, Actions: []Action{GotoTable{TableARP}}},
	}
	for name, f := range good {
		if err := Validate([]Flow{f}); err != nil {
			t.Fatalf("good flow %s rejected: %v", name, err)
		}
	}
	with := func(name string, change func(*Flow)) Flow {
		f := good[name]
		f.Actions = append([]Action(nil), f.Actions...)
		change(&f)
		return f
	}
	for _, tc := range []struct {
		name, want string
		flow       Flow
	}{
		{"goto an undeclared table", "may not continue in table 7", with("classify", func(f *Flow) { f.Actions = []Action{GotoTable{7}} })},
		{"goto a table not next", "may not continue in table 21", with("classify", func(f *Flow) { f.Actions = []Action{GotoTable{TableFlood}} })},
		{"tunnel to flood", "may not continue in table 21", with("tunnel", func(f *Flow) { f.Actions = append(f.Actions[:3], GotoTable{TableFlood}) })},
		{"goto backwards", "may not continue in table 1", with("miss", func(f *Flow) { f.Actions = []Action{GotoTable{TableFromPort}} })},
		{"goto not last", "goto_table is not the last action", with("classify", func(f *Flow) { f.Actions = append(f.Actions, Output{Port: 10}) })},
		{"resubmit", "is not one the pipeline uses", with("flood", func(f *Flow) { f.Actions = append(f.Actions, resubmit{table: 2}) })},
		{"forbidden field dl_vlan in 0", "may not match dl_vlan", with("classify", func(f *Flow) { f.Match.HasVLAN, f.Match.VLAN = true, 1 })},
		{"forbidden field tun_id in 21", "may not match tun_id", with("flood", func(f *Flow) { f.Match.HasTunID, f.Match.TunID = true, 100 })},
		{"forbidden field dl_dst in 2", "may not match dl_dst", with("tunnel", func(f *Flow) { f.Match.EthDst = mac("52:54:00:00:00:01") })},
		{"forbidden field in_port in 250", "may not match in_port", with("advert", func(f *Flow) { f.Match.InPort = 1 })},
		{"forbidden field tun_id in 3", "may not match tun_id", with("arp", func(f *Flow) { f.Match.HasTunID, f.Match.TunID = true, 100 })},
		{"forbidden field nd_target in 1", "may not match nd_target", with("fromint", func(f *Flow) { f.Match.NDTarget = netip.MustParseAddr("fd00::1") })},
		{"bad priority in 0", "has no priority 5", with("classify", func(f *Flow) { f.Priority = 5 })},
		{"default priority", "has no priority 32768", with("flood", func(f *Flow) { f.Priority = DefaultPriority })},
		{"bad priority in 250", "has no priority 0", with("advert", func(f *Flow) { f.Priority = PriorityMiss; f.Match = Match{} })},
		{"miss flow with a match", "the miss flow (priority 0) matches dl_vlan", with("flood", func(f *Flow) { f.Priority = PriorityMiss })},
		{"undeclared table 5", "table 5 is not declared", with("flood", func(f *Flow) { f.Table = 5 })},
		{"undeclared table 249", "table 249 is not declared", with("advert", func(f *Flow) { f.Table = 249 })},
		{"learn into an undeclared table", "learn() writes into undeclared table 22", with("tunnel", func(f *Flow) { f.Actions[2] = Learn{Table: 22, Priority: PriorityLearned} })},
		{"learn at a bad priority", "learn() writes priority 7 into table 20", with("tunnel", func(f *Flow) { f.Actions[2] = Learn{Table: TableUnicast, Priority: 7} })},
	} {
		err := Validate([]Flow{tc.flow})
		if err == nil {
			t.Errorf("%s: accepted %s", tc.name, tc.flow)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.flow.String()) {
			t.Errorf("%s: error does not say %q with the flow %q:\n%s", tc.name, tc.want, tc.flow, msg)
		}
		if n := strings.Count(err.Error(), "\n"); n != 1 {
			t.Errorf("%s: %d problems reported, want 1:\n%s", tc.name, n, err)
		}
	}
}

// Validate reports every broken flow, not only the first.
func TestValidateReportsAllProblems(t *testing.T) {
	var fl []Flow
	for p := range uint16(3) {
		fl = append(fl, Flow{Table: TableFlood, Priority: 10 + p})
	}
	err := Validate(fl)
	if err == nil {
		t.Fatal("accepted three flows at undeclared priorities")
	}
	for _, f := range fl {
		if !strings.Contains(err.Error(), f.String()) {
			t.Errorf("error does not name %s:\n%v", f, err)
		}
	}
	fl = nil
	for range maxProblems + 5 {
		fl = append(fl, Flow{Table: 99})
	}
	if err := Validate(fl); err == nil || !strings.Contains(err.Error(), "and 5 more problems") {
		t.Errorf("%d broken flows: %v", len(fl), err)
	}
}

// br-int holds one NORMAL flow; anything else breaks its contract.
func TestValidateInt(t *testing.T) {
	normal := Flow{Priority: PriorityMiss, Actions: []Action{Output{Port: PortNormal}}}
	if err := ValidateInt([]Flow{normal}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Flow{
		{Table: TableFromPort, Priority: PriorityMiss, Actions: []Action{Output{Port: PortNormal}}},
		{Priority: PriorityClassify, Actions: []Action{Output{Port: PortNormal}}},
		{Priority: PriorityMiss, Actions: []Action{GotoTable{TableFromPort}}},
	} {
		if err := ValidateInt([]Flow{f}); err == nil {
			t.Errorf("br-int accepted %s", f)
		}
	}
}
