package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// StatusReport is what exists of a lab.
type StatusReport struct {
	Topology string       `json:"topology"`
	Dir      string       `json:"dir"`
	Underlay bool         `json:"underlay"` // the underlay namespace exists
	Hosts    []HostStatus `json:"hosts"`
	VMs      []VMStatus   `json:"vms"`
	Stray    []string     `json:"stray,omitempty"` // lab namespaces the topology does not name
	// Controllers are the topology's controller targets (controller mode
	// only) and the `ovs-vxctl controller` processes of the underlay.
	Controllers []ControllerStatus `json:"controllers,omitempty"`
	// Directory are the members of the topology's directory cluster.
	Directory []DirectoryMemberStatus `json:"directory,omitempty"`
}

// ControllerStatus is one `ovs-vxctl controller` of the lab: a controller
// target of the topology, and the process serving it if one runs in the
// underlay namespace (found by its command line, so one a test or a person
// started counts too).
type ControllerStatus struct {
	Target  string   `json:"target"`         // --listen the topology asks for; "" for a process listening elsewhere
	Name    string   `json:"name,omitempty"` // the lab's replica name (--name) for the target
	Running bool     `json:"running"`
	PID     int      `json:"pid,omitempty"`
	Listen  []string `json:"listen,omitempty"`         // the process's --listen values
	Metrics string   `json:"metrics_listen,omitempty"` // its --metrics-listen
}

// AgentStatus is a managed host's `ovs-vxctl agent`: lab up --agents (or a
// port bound by iface_id) starts one per host and records its pid.
type AgentStatus struct {
	Started bool `json:"started"` // the lab recorded a pid
	Running bool `json:"running"`
	PID     int  `json:"pid,omitempty"`
}

// HostStatus is the state of one host of the lab.
type HostStatus struct {
	Name        string       `json:"name"`
	NS          string       `json:"netns"`
	Managed     bool         `json:"managed"`
	NSExists    bool         `json:"netns_exists"`
	OVSDBServer bool         `json:"ovsdb_server"`    // managed hosts only
	Vswitchd    bool         `json:"ovs_vswitchd"`    // managed hosts only
	Bridges     []string     `json:"bridges"`         // OVS bridges (managed) or Linux bridges (unmanaged)
	Agent       *AgentStatus `json:"agent,omitempty"` // managed hosts only
}

// VMStatus is the state of one VM port's namespace and its eth0.
type VMStatus struct {
	Host     string   `json:"host"`
	Port     string   `json:"port"`
	NS       string   `json:"netns"`
	NSExists bool     `json:"netns_exists"`
	MAC      string   `json:"mac,omitempty"`
	Addrs    []string `json:"addrs,omitempty"` // global addresses, CIDR
	MTU      int      `json:"mtu,omitempty"`
	Up       bool     `json:"up"`
}

// Complete reports whether every part of the lab exists and runs.
func (s *StatusReport) Complete() bool {
	if !s.Underlay {
		return false
	}
	for _, h := range s.Hosts {
		if !h.NSExists || h.Managed && (!h.OVSDBServer || !h.Vswitchd) {
			return false
		}
	}
	for _, v := range s.VMs {
		if !v.NSExists || !v.Up {
			return false
		}
	}
	for _, c := range s.Controllers {
		if c.Target != "" && !c.Running {
			return false
		}
	}
	for _, d := range s.Directory {
		if !d.Running {
			return false
		}
	}
	return true
}

// Empty reports whether nothing of the lab exists.
func (s *StatusReport) Empty() bool {
	if s.Underlay || len(s.Stray) > 0 {
		return false
	}
	for _, h := range s.Hosts {
		if h.NSExists || h.OVSDBServer || h.Vswitchd {
			return false
		}
	}
	for _, v := range s.VMs {
		if v.NSExists {
			return false
		}
	}
	for _, d := range s.Directory {
		if d.Running {
			return false
		}
	}
	return true
}

// String renders the status for people.
func (s *StatusReport) String() string {
	var b strings.Builder
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(&b, "lab %s (state %s): underlay %s\n", s.Topology, s.Dir, yes(s.Underlay))
	for _, h := range s.Hosts {
		if h.Managed {
			fmt.Fprintf(&b, "  host %-12s netns %-3s ovsdb-server %-3s ovs-vswitchd %-3s bridges %s\n",
				h.Name, yes(h.NSExists), yes(h.OVSDBServer), yes(h.Vswitchd), strings.Join(h.Bridges, ","))
		} else {
			fmt.Fprintf(&b, "  host %-12s netns %-3s kernel VTEP, bridges %s\n", h.Name, yes(h.NSExists), strings.Join(h.Bridges, ","))
		}
	}
	for _, v := range s.VMs {
		fmt.Fprintf(&b, "  vm   %-25s netns %-3s up %-3s mac %s addrs %s\n",
			v.Host+"/"+v.Port, yes(v.NSExists), yes(v.Up), v.MAC, strings.Join(v.Addrs, ","))
	}
	for _, d := range s.Directory {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	for _, c := range s.Controllers {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	for _, h := range s.Hosts {
		if h.Agent != nil && h.Agent.Started {
			fmt.Fprintf(&b, "  agent of %s: %s\n", h.Name, h.Agent)
		}
	}
	for _, ns := range s.Stray {
		fmt.Fprintf(&b, "  stray namespace %s (run lab down)\n", ns)
	}
	return b.String()
}

// String says whether the controller runs, and where it listens.
func (c ControllerStatus) String() string {
	what := "controller " + c.Target
	if c.Name != "" {
		what = "controller " + c.Name + " " + c.Target
	}
	if c.Target == "" {
		what = "controller (no target of the topology)"
	}
	if !c.Running {
		return what + ": not running"
	}
	out := fmt.Sprintf("%s: running, pid %d, listening on %s", what, c.PID, strings.Join(c.Listen, ","))
	if c.Metrics != "" {
		out += ", metrics on " + c.Metrics
	}
	return out
}

// String says whether the agent runs.
func (a *AgentStatus) String() string {
	switch {
	case a == nil || !a.Started:
		return "not started"
	case !a.Running:
		return fmt.Sprintf("not running (pid %d gone)", a.PID)
	}
	return fmt.Sprintf("running, pid %d", a.PID)
}

// Status reports, per host, whether its namespace exists, its daemons run
// and which bridges it has, and per VM its namespace and eth0.
func Status(ctx context.Context, o Options) (*StatusReport, error) {
	o.SkipApply = true // Status needs neither the binary nor the file
	p, err := newPlan(o)
	if err != nil {
		return nil, err
	}
	s := &StatusReport{Topology: o.Topology.Name, Dir: p.dir, Underlay: nsExists(p.ul)}
	expected := map[string]bool{p.ul: true}
	for _, hp := range p.hosts {
		expected[hp.ns] = true
		hs := HostStatus{Name: hp.h.Name, NS: hp.ns, Managed: hp.h.Managed, NSExists: nsExists(hp.ns)}
		if hp.h.Managed {
			inst := HostInstance(o, hp.h.Name)
			hs.Agent = agentStatus(filepath.Join(inst.Dir, AgentPid))
			hs.OVSDBServer = inst.Running("ovsdb-server")
			hs.Vswitchd = inst.Running("ovs-vswitchd")
			if hs.OVSDBServer {
				if out, err := inst.Vsctl(ctx, "list-br"); err == nil {
					hs.Bridges = strings.Fields(out)
				}
			}
		} else if hs.NSExists {
			hs.Bridges = linuxBridges(ctx, hp.ns)
		}
		s.Hosts = append(s.Hosts, hs)
		for _, vm := range hp.vms {
			expected[vm.ns] = true
			s.VMs = append(s.VMs, vmStatus(ctx, hp.h.Name, vm))
		}
	}
	s.Controllers = controllerStatus(p)
	s.Directory = directoryStatus(ctx, o.Topology, p.dir)
	nss, err := labNamespaces(o.Topology.Name)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if !expected[ns] {
			s.Stray = append(s.Stray, ns)
		}
	}
	return s, nil
}

// ipLink is the part of `ip -j addr` output Status reads.
type ipLink struct {
	IfName   string   `json:"ifname"`
	MTU      int      `json:"mtu"`
	Flags    []string `json:"flags"`
	Address  string   `json:"address"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

func vmStatus(ctx context.Context, host string, vm *vmPlan) VMStatus {
	vs := VMStatus{Host: host, Port: vm.port.Name, NS: vm.ns, NSExists: nsExists(vm.ns)}
	if !vs.NSExists {
		return vs
	}
	out, err := run(ctx, "", "ip", "-n", vm.ns, "-j", "addr", "show", "dev", VMIf)
	if err != nil {
		return vs
	}
	var links []ipLink
	if json.Unmarshal([]byte(out), &links) != nil || len(links) != 1 {
		return vs
	}
	l := links[0]
	vs.MAC, vs.MTU, vs.Up = l.Address, l.MTU, slices.Contains(l.Flags, "UP")
	for _, a := range l.AddrInfo {
		if a.Scope == "global" {
			vs.Addrs = append(vs.Addrs, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		}
	}
	return vs
}

func linuxBridges(ctx context.Context, ns string) []string {
	out, err := run(ctx, "", "ip", "-n", ns, "-j", "link", "show", "type", "bridge")
	if err != nil {
		return nil
	}
	var links []ipLink
	if json.Unmarshal([]byte(out), &links) != nil {
		return nil
	}
	var names []string
	for _, l := range links {
		names = append(names, l.IfName)
	}
	return names
}

// agentStatus reads the agent's pid file and checks the process.
func agentStatus(pidFile string) *AgentStatus {
	pid, ok := readPid(pidFile)
	if !ok {
		return &AgentStatus{}
	}
	return &AgentStatus{Started: true, Running: isAgent(pid), PID: pid}
}

// controllerStatus matches the topology's controller targets with the
// `ovs-vxctl controller` processes of the underlay namespace; a process
// serving none of them is listed too, without a target.
func controllerStatus(p *plan) []ControllerStatus {
	procs := controllerProcs(p.ul)
	var out []ControllerStatus
	for _, c := range p.ctrls {
		cs := ControllerStatus{Target: c.target, Name: c.name}
		for i, pr := range procs {
			if slices.Contains(pr.Listen, c.target) {
				cs.Running, cs.PID, cs.Listen, cs.Metrics = true, pr.PID, pr.Listen, pr.Metrics
				procs = slices.Delete(procs, i, i+1)
				break
			}
		}
		out = append(out, cs)
	}
	return append(out, procs...)
}

// controllerProcs finds the `ovs-vxctl controller` processes running in
// namespace ns and reads their --listen and --metrics-listen.
func controllerProcs(ns string) []ControllerStatus {
	var out []ControllerStatus
	for _, pid := range nsPids([]string{ns}) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "controller" {
			continue
		}
		cs := ControllerStatus{Running: true, PID: pid}
		for i, a := range args {
			value := func(flag string) (string, bool) {
				if v, ok := strings.CutPrefix(a, flag+"="); ok {
					return v, true
				}
				if a == flag && i+1 < len(args) {
					return args[i+1], true
				}
				return "", false
			}
			if v, ok := value("--listen"); ok {
				cs.Listen = append(cs.Listen, v)
			}
			if v, ok := value("--metrics-listen"); ok {
				cs.Metrics = v
			}
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}
