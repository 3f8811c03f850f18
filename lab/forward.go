package lab

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Forwards reports whether managed host h routes between networks, so the
// lab must turn IP forwarding on in its namespace: it has static routes (they
// name a next hop on the overlay, for traffic the host forwards, as the
// seed's gateways do), or internal ports in more than one network (it is the
// gateway between them). A new network namespace starts with forwarding off,
// whatever the machine's own setting.
func Forwards(t *topology.Topology, h *topology.Host) bool {
	if !h.Managed {
		return false
	}
	if len(h.Routes) > 0 {
		return true
	}
	nets := map[*topology.Network]bool{}
	for _, p := range t.PortsOn(h) {
		if p.Type == topology.PortInternal {
			nets[p.Network] = true
		}
	}
	return len(nets) > 1
}

// forwardingFiles are the settings that make a namespace route: IPv4 and,
// when the kernel has IPv6, IPv6 (conf/all also sets the default of the
// interfaces created later, such as the internal ports apply adds). They are
// /proc/sys files, which show the settings of the opener's namespace.
func forwardingFiles() []string {
	f := []string{"/proc/sys/net/ipv4/ip_forward"}
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		f = append(f, "/proc/sys/net/ipv6/conf/all/forwarding")
	}
	return f
}

// forward turns IP forwarding on in hp's namespace when the host routes
// (see Forwards); otherwise it leaves the namespace as it is. tee writes
// the files (sysctl(8) is not among the lab's required programs).
func (p *plan) forward(ctx context.Context, hp *hostPlan) error {
	if !Forwards(p.o.Topology, hp.h) {
		return nil
	}
	files := forwardingFiles()
	if _, err := run(ctx, "1\n", "ip", append([]string{"netns", "exec", hp.ns, "tee"}, files...)...); err != nil {
		return fmt.Errorf("turning IP forwarding on (the host routes between networks): %w", err)
	}
	p.o.logger().Debug("IP forwarding on", zap.String("host", hp.h.Name), zap.Strings("files", files))
	return nil
}
