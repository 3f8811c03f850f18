package hwvtep

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Options says which hardware VTEP host of which topology to act on; the
// host's hardware_vtep field says where its database is.
type Options struct {
	Topology *topology.Topology
	Host     *topology.Host
	DryRun   bool
	// TLS is the client's side of an ssl: database target; nil otherwise.
	TLS *tls.Config
	Log *zap.Logger
}

// Report says what Apply or Destroy changed, or (dry run) would change.
type Report struct {
	Changes  []string
	Notes    []string
	Duration time.Duration
}

// Changed reports whether anything was (or would be) changed.
func (r *Report) Changed() bool { return len(r.Changes) > 0 }

func (o Options) connect(ctx context.Context, opts ...Option) (*Client, error) {
	if !o.Host.IsHardwareVTEP() {
		return nil, fmt.Errorf("host %s is not a hardware VTEP (no hardware_vtep)", o.Host.Name)
	}
	return Connect(ctx, o.Host.HardwareVTEP.OVSDB, o.TLS, o.Log, opts...)
}

// Apply makes the hardware VTEP's database match the topology in one
// transaction (none when nothing differs, or on a dry run).
func Apply(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	want, err := Desired(o.Topology, o.Host)
	if err != nil {
		return nil, err
	}
	c, err := o.connect(ctx, lean()) // the local MACs are not its business
	if err != nil {
		return nil, err
	}
	defer c.Close()
	plan, err := c.Ensure(ctx, want, o.DryRun)
	if err != nil {
		return nil, err
	}
	return &Report{Changes: plan.Changes, Notes: plan.Notes, Duration: time.Since(start)}, nil
}

// Ensure plans the reconcile of want and, unless dry, commits it; it
// returns the plan either way.
func (c *Client) Ensure(ctx context.Context, want Config, dry bool) (*Plan, error) {
	plan, err := c.Plan(ctx, want)
	if err != nil {
		return nil, err
	}
	for _, n := range plan.Notes {
		c.log.Info(n, zap.String("host", want.Host))
	}
	if dry {
		return plan, nil
	}
	if err := c.Apply(ctx, plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// Destroy removes what apply created for the host from its switch's
// database, and nothing else.
func Destroy(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if o.Topology == nil || o.Host == nil || o.Topology.Name == "" || o.Host.Name == "" {
		return nil, fmt.Errorf("destroy needs a named topology and host")
	}
	c, err := o.connect(ctx, lean())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	plan, err := c.PlanDestroy(ctx, o.Topology.Name, o.Host.Name)
	if err != nil {
		return nil, err
	}
	if !o.DryRun {
		if err := c.Apply(ctx, plan); err != nil {
			return nil, err
		}
	}
	return &Report{Changes: plan.Changes, Notes: plan.Notes, Duration: time.Since(start)}, nil
}

// Show describes the host's physical switch and its logical switches.
func Show(ctx context.Context, o Options) (*State, error) {
	c, err := o.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Show(ctx, o.Topology.Name, o.Host.Name, o.Host.HardwareVTEP.PhysicalSwitch)
}
