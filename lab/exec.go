package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Command builds (does not start) argv run inside the namespace of NAME:
// a host (with that host's OVS environment when it is managed, so OVS tools
// find its daemons) or a port, given as "port" or, since port names may
// repeat across hosts, "host/port". A VM port runs in its VM's namespace, an
// internal port in its host's. A name that is both a host and a port means
// the host. The namespace must exist.
func Command(ctx context.Context, o Options, name string, argv []string) (*exec.Cmd, error) {
	if o.Topology == nil {
		return nil, fmt.Errorf("lab exec: no topology given")
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("lab exec %s: no command given", name)
	}
	ns, host, err := resolve(o, name)
	if err != nil {
		return nil, err
	}
	if !nsExists(ns) {
		return nil, fmt.Errorf("lab exec %s: namespace %s does not exist (is the lab up? run `ovs-vxctl lab up`)", name, ns)
	}
	if host != nil && (host.Managed || host.IsHardwareVTEP()) {
		return HostInstance(o, host.Name).Command(ctx, argv[0], argv[1:]...), nil
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Env = os.Environ()
	return cmd, nil
}

// resolve finds the namespace of name; host is set when it is a host's
// namespace (for a host or an internal port).
func resolve(o Options, name string) (ns string, host *topology.Host, err error) {
	t := o.Topology
	hostName, portName, qualified := strings.Cut(name, "/")
	if !qualified {
		if h := t.Host(name); h != nil {
			return HostNS(o, h.Name), h, nil
		}
		portName = name
	} else if t.Host(hostName) == nil {
		return "", nil, fmt.Errorf("lab exec %s: topology %s has no host %q", name, t.Name, hostName)
	}
	var found []*topology.Port
	for _, n := range t.Networks {
		for _, p := range n.Ports {
			if p.Name == portName && (!qualified || p.Host.Name == hostName) {
				found = append(found, p)
			}
		}
	}
	switch len(found) {
	case 0:
		if qualified {
			return "", nil, fmt.Errorf("lab exec %s: host %s has no port %q", name, hostName, portName)
		}
		return "", nil, fmt.Errorf("lab exec %s: topology %s has no host or port of that name", name, t.Name)
	case 1:
	default:
		var opts []string
		for _, p := range found {
			opts = append(opts, p.Host.Name+"/"+p.Name)
		}
		return "", nil, fmt.Errorf("lab exec %s: ambiguous, the port is on several hosts: say which with one of %s", name, strings.Join(opts, ", "))
	}
	p := found[0]
	if p.Type == topology.PortInternal {
		return HostNS(o, p.Host.Name), p.Host, nil
	}
	return VMNS(o, p.Host.Name, p.Name), nil, nil
}
