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
	res, err := c.commit(ctx, s, ops)
	if err != nil {
		return err
	}
	// An update that found no row: the row was deleted (a Forget, just
	// before) and the cache has not heard yet. Insert it instead.
	var gone []Endpoint
	for i, op := range ops {
		if op.Op == ovsdb.OperationUpdate && i < len(res) && res[i].Count == 0 {
			gone = append(gone, eps[i])
		}
	}
	if len(gone) == 0 {
		return nil
	}
	ins := make([]ovsdb.Operation, 0, len(gone))
	for _, e := range gone {
		row, _ := e.row() // it converted above
		row["vni"], row["mac"] = int(e.VNI), e.MAC
		ins = append(ins, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: model.EndpointTable, Row: row})
	}
	_, err = c.commit(ctx, s, ins)
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

// queued is an entry of the batching writer's queue: an endpoint to write,
// or (forget) one whose row to delete.
type queued struct {
	e      Endpoint
	forget bool
}

// Learn queues a learned endpoint for the batching writer. It never
// blocks: on a full queue it drops e, counts it and reports false.
func (c *Client) Learn(e Endpoint) bool {
	e.Kind = KindLearned
	return c.enqueue(queued{e: e})
}

// Forget queues the deletion of k's learned row, batched like Learn (same
// queue, same bounds): a MAC this replica forgot (aged out, or a reload
// removed its host or network) on host. The delete is conditional: only
// the row as this client's cache holds it when the batch goes, and only if
// it is learned and on host; so a fresher write by another replica (a move,
// or learned again) is never deleted, and nor is a key the cache does not
// hold. false: the queue was full.
func (c *Client) Forget(k Key, host string) bool {
	return c.enqueue(queued{e: Endpoint{Key: k, Host: host, Kind: KindLearned}, forget: true})
}

func (c *Client) enqueue(q queued) bool {
	select {
	case c.queue <- q:
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
		var first queued
		select {
		case <-ctx.Done():
			return
		case first = <-c.queue:
		}
		batch := map[Key]queued{first.e.Key: first}
		order := []Key{first.e.Key}
		add := func(q queued) {
			if _, dup := batch[q.e.Key]; !dup {
				order = append(order, q.e.Key)
			}
			batch[q.e.Key] = q
		}
		timer := time.NewTimer(c.o.FlushInterval)
	fill:
		for len(batch) < c.o.FlushRows {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case q := <-c.queue:
				add(q)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
	drain:
		for len(batch) < c.o.MaxBatch {
			select {
			case q := <-c.queue:
				add(q)
			default:
				break drain
			}
		}
		var eps, gone []Endpoint
		for _, k := range order {
			if q := batch[k]; q.forget {
				gone = append(gone, q.e)
			} else {
				eps = append(eps, q.e)
			}
		}
		if err := c.Write(ctx, eps...); err != nil && ctx.Err() == nil {
			c.log.Warn("learned endpoints not written", zap.Int("rows", len(eps)), zap.Error(err))
		}
		if err := c.deleteForgotten(ctx, gone); err != nil && ctx.Err() == nil {
			c.log.Warn("forgotten endpoints not deleted", zap.Int("rows", len(gone)), zap.Error(err))
		}
	}
}

// deleteForgotten deletes, in one transaction, the rows of gone that the
// cache holds as learned on the same host, each only if the row is still
// exactly the one cached (writer and time of writing too). It retries
// across a failover until ctx ends; a row changed meanwhile is left alone.
func (c *Client) deleteForgotten(ctx context.Context, gone []Endpoint) error {
	for {
		var ops []ovsdb.Operation
		for _, g := range gone {
			cur, ok := c.Endpoint(g.Key)
			if !ok || cur.Kind != KindLearned || cur.Host != g.Host {
				continue
			}
			where := append(g.Key.where(),
				ovsdb.Condition{Column: "host", Function: ovsdb.ConditionEqual, Value: cur.Host},
				ovsdb.Condition{Column: "kind", Function: ovsdb.ConditionEqual, Value: string(KindLearned)},
				ovsdb.Condition{Column: "writer", Function: ovsdb.ConditionEqual, Value: cur.Writer},
				ovsdb.Condition{Column: "updated", Function: ovsdb.ConditionEqual, Value: int(cur.Updated.UnixMilli())})
			ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationDelete, Table: model.EndpointTable, Where: where})
		}
		if len(ops) == 0 {
			return nil
		}
		s, err := c.session(ctx)
		if err == nil {
			var res []ovsdb.OperationResult
			if res, err = c.commit(ctx, s, ops); err == nil {
				for _, r := range res {
					c.forgotten.Add(uint64(r.Count))
				}
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("deleting %d forgotten endpoints from the directory: %w", len(ops), err)
		}
		c.log.Debug("directory delete failed, retrying", zap.Int("rows", len(ops)), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("deleting %d forgotten endpoints from the directory: %w", len(ops), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
