package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// Write writes endpoints in one transaction on the leader: each replaces
// the row of its key or becomes a new one. Writer and Updated are filled in
// when empty. It retries across a failover until ctx ends.
func (c *Client) Write(ctx context.Context, eps ...Endpoint) error {
	if len(eps) == 0 {
		return nil
	}
	eps = slices.Clone(eps) // the caller's slice stays as it was
	now := time.UnixMilli(time.Now().UnixMilli())
	for i := range eps {
		if eps[i].Writer == "" {
			eps[i].Writer = c.o.Name
		}
		if eps[i].Updated.IsZero() {
			eps[i].Updated = now
		}
		eps[i].IPs = slices.Sorted(slices.Values(eps[i].IPs))
	}
	for {
		err := c.transact(ctx, eps)
		if err == nil {
			c.txns.Add(1)
			c.rows.Add(uint64(len(eps)))
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("writing %d endpoints to the directory: %w", len(eps), err)
		}
		c.log.Debug("directory write failed, retrying", zap.Int("rows", len(eps)), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("writing %d endpoints to the directory: %w", len(eps), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// transact sends one transaction for eps on the live session. A row the
// cache holds is updated by its index; others are inserted: if another
// replica inserted the same key meanwhile, the index refuses the
// transaction and the retry, by then seeing the row, updates it. A call
// that times out kills the session: the leader is hung.
func (c *Client) transact(ctx context.Context, eps []Endpoint) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	ops := make([]ovsdb.Operation, 0, len(eps))
	for _, e := range eps {
		row, err := e.row()
		if err != nil {
			return fmt.Errorf("endpoint %d/%s: %w", e.VNI, e.MAC, err)
		}
		if _, known := c.Endpoint(e.Key); known {
			ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: model.EndpointTable, Where: e.where(), Row: row})
			continue
		}
		row["vni"], row["mac"] = int(e.VNI), e.MAC
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: model.EndpointTable, Row: row})
	}
	_, err = c.commit(ctx, s, ops)
	return err
}

// refusal is a transaction the directory refused on its merits (a wait
// that did not hold, an index conflict): sending it again cannot help.
type refusal struct{ kind, details string }

func (r *refusal) Error() string { return "refused: " + r.kind + ": " + r.details }

// commit runs ops as one transaction on s within CallTimeout. A call that
// times out kills the session: the leader is hung. A failed wait or
// constraint comes back as a *refusal, anything else as a plain error.
func (c *Client) commit(ctx context.Context, s *session, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	tctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	defer cancel()
	res, err := s.cli.Transact(tctx, ops...)
	if err != nil {
		if errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			c.log.Warn("directory transaction stalled", zap.String("endpoint", s.endpoint))
			s.kill()
		}
		return nil, fmt.Errorf("transaction on %s: %w", s.endpoint, err)
	}
	// Read the results here rather than with CheckOperationResults: the
	// server stops at the first failed operation, and that one's error
	// says whether the transaction was refused or merely not committed.
	for _, r := range res {
		switch r.Error {
		case "":
			continue
		case "timed out", "constraint violation":
			return res, fmt.Errorf("transaction on %s: %w", s.endpoint, &refusal{kind: r.Error, details: r.Details})
		default:
			return res, fmt.Errorf("transaction on %s: %s: %s", s.endpoint, r.Error, r.Details)
		}
	}
	if len(res) < len(ops) {
		return res, fmt.Errorf("transaction on %s: %d results for %d operations", s.endpoint, len(res), len(ops))
	}
	return res, nil
}

// Learn queues a learned endpoint for the batching writer. It never
// blocks: on a full queue it drops e, counts it and reports false.
func (c *Client) Learn(e Endpoint) bool {
	e.Kind = KindLearned
	select {
	case c.queue <- e:
		return true
	default:
		c.dropped.Add(1)
		return false
	}
}

// writeLearned writes queued endpoints in batches: a batch goes when it
// holds FlushRows endpoints or its first one has waited FlushInterval, and
// takes everything queued by then, up to MaxBatch, coalesced by key (the
// last one wins), in one transaction.
func (c *Client) writeLearned(ctx context.Context) {
	for {
		var first Endpoint
		select {
		case <-ctx.Done():
			return
		case first = <-c.queue:
		}
		batch := map[Key]Endpoint{first.Key: first}
		order := []Key{first.Key}
		add := func(e Endpoint) {
			if _, dup := batch[e.Key]; !dup {
				order = append(order, e.Key)
			}
			batch[e.Key] = e
		}
		timer := time.NewTimer(c.o.FlushInterval)
	fill:
		for len(batch) < c.o.FlushRows {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case e := <-c.queue:
				add(e)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
	drain:
		for len(batch) < c.o.MaxBatch {
			select {
			case e := <-c.queue:
				add(e)
			default:
				break drain
			}
		}
		eps := make([]Endpoint, 0, len(order))
		for _, k := range order {
			eps = append(eps, batch[k])
		}
		if err := c.Write(ctx, eps...); err != nil && ctx.Err() == nil {
			c.log.Warn("learned endpoints not written", zap.Int("rows", len(eps)), zap.Error(err))
		}
	}
}
