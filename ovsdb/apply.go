package ovsdb

import (
	"context"
	"fmt"
	"slices"
	"time"

	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
)

// Apply commits plan in one transaction (nothing at all when it is empty),
// checks every operation's result, and then waits, at most WaitTimeout, until
// ovs-vswitchd has applied it, the way ovs-vsctl does: the transaction also
// increments Open_vSwitch.next_cfg, and ovs-vswitchd copies it to cur_cfg
// once its bridges and ports match the database. After Apply returns, the
// bridges' OpenFlow ports exist and can be programmed (unless NoWait).
func (c *Client) Apply(ctx context.Context, plan *Plan) error {
	if plan == nil || plan.Empty() {
		return nil
	}
	b := builder{api: c.ovs}
	b.bumpNextCfg(plan.root)
	if b.err != nil {
		return fmt.Errorf("building the next_cfg operations: %w", b.err)
	}
	ops := append(slices.Clone(plan.Ops), b.ops...)
	res, err := c.transact(ctx, ops, func(i int) string {
		if i < len(plan.guardWhy) {
			return plan.guardWhy[i]
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("applying %d changes to OVSDB at %s: %w", len(plan.Changes), c.endpoint, err)
	}
	next, err := selectedNextCfg(res[len(ops)-1].Rows)
	if err != nil {
		return fmt.Errorf("applied %d changes to OVSDB at %s but %w", len(plan.Changes), c.endpoint, err)
	}
	c.log.Info("applied OVSDB changes", zap.Int("changes", len(plan.Changes)), zap.Int("next_cfg", next))
	if c.NoWait {
		return nil
	}
	if err := c.waitCfg(ctx, plan.root, next); err != nil {
		return fmt.Errorf("applied %d changes to OVSDB at %s but %w", len(plan.Changes), c.endpoint, err)
	}
	return nil
}

// Reconfigure makes ovs-vswitchd reconfigure every bridge without changing
// a row: it bumps next_cfg alone and waits, at most WaitTimeout, until
// ovs-vswitchd has caught up. A port that did not get its ofport_request
// (a port removed in the same transaction still held the number) then gets
// it, now that the number is free.
func (c *Client) Reconfigure(ctx context.Context) error {
	snap, err := c.read(ctx)
	if err != nil {
		return err
	}
	b := builder{api: c.ovs}
	b.bumpNextCfg(snap.root.UUID)
	if b.err != nil {
		return fmt.Errorf("building the next_cfg operations: %w", b.err)
	}
	res, err := c.transact(ctx, b.ops, nil)
	if err != nil {
		return fmt.Errorf("asking ovs-vswitchd at %s to reconfigure: %w", c.endpoint, err)
	}
	next, err := selectedNextCfg(res[len(b.ops)-1].Rows)
	if err != nil {
		return fmt.Errorf("asking ovs-vswitchd at %s to reconfigure: %w", c.endpoint, err)
	}
	if c.NoWait {
		return nil
	}
	if err := c.waitCfg(ctx, snap.root.UUID, next); err != nil {
		return fmt.Errorf("asked ovs-vswitchd at %s to reconfigure but %w", c.endpoint, err)
	}
	return nil
}

// selectedNextCfg reads next_cfg from the rows of bumpNextCfg's select.
func selectedNextCfg(rows []libovsdb.Row) (int, error) {
	if len(rows) != 1 {
		return 0, fmt.Errorf("reading next_cfg back gave %d rows, want 1", len(rows))
	}
	f, ok := rows[0]["next_cfg"].(float64)
	if !ok {
		return 0, fmt.Errorf("reading next_cfg back gave %v", rows[0]["next_cfg"])
	}
	return int(f), nil
}

// waitCfg waits until the cache shows cur_cfg >= next. The monitor delivers
// ovs-vswitchd's cur_cfg update after the updates of our own transaction,
// so the cache also holds our changes once it returns.
func (c *Client) waitCfg(ctx context.Context, root string, next int) error {
	timeout := c.WaitTimeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	cur := -1
	for {
		row := &vswitch.OpenvSwitch{UUID: root}
		if err := c.ovs.Get(ctx, row); err == nil {
			cur = row.CurCfg
			if cur >= next {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovs-vswitchd did not apply them within %s (next_cfg %d, cur_cfg %d): is ovs-vswitchd running? %w",
				timeout, next, cur, ctx.Err())
		case <-tick.C:
		}
	}
}
