package openflow

import (
	"context"
	"testing"
	"time"

	"github.com/contiv/libOpenflow/openflow13"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// BenchmarkNoopReconcileOVS: a no-op reconcile of 100,000 flows against a
// real ovs-vswitchd, beside OVS's own dump of them (nothing decoded): the
// limit. On a busy machine compare the minimum of each (min_ms).
func BenchmarkNoopReconcileOVS(b *testing.B) {
	env := ovstest.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fl := controllerFlows(benchFlows)
	sw, err := Dial(ctx, env.Target, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sw.Close()
	if _, err := sw.Reconcile(ctx, fl, flows.CookieController, flows.CookieOwnerMask); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, f func() error) {
		best := time.Duration(1 << 62)
		for b.Loop() {
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		b.ReportMetric(float64(best)/float64(time.Millisecond), "min_ms")
	}
	b.Run("reconcile", func(b *testing.B) {
		run(b, func() error {
			res, err := sw.Reconcile(ctx, fl, flows.CookieController, flows.CookieOwnerMask)
			if err == nil && res.FlowMods != 0 {
				b.Fatalf("%d flow-mods", res.FlowMods)
			}
			return err
		})
	})
	b.Run("dump", func(b *testing.B) {
		run(b, func() error {
			_, err := sw.conn.RequestMultipart(ctx, flowStatsRequest(flows.CookieController, flows.CookieOwnerMask))
			return err
		})
	})
}

// BenchmarkInstallOVS: 10,000 flows into an empty bridge by a reconcile on
// an open connection, beside the same flows as one bundle encoded
// beforehand and written in one go (the limit), and a connection's
// set-up.
func BenchmarkInstallOVS(b *testing.B) {
	env := ovstest.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fl := controllerFlows(10000)
	sw, err := Dial(ctx, env.Target, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sw.Close()
	timed := func(b *testing.B, f func() error) {
		best := time.Duration(1 << 62)
		for range b.N {
			env.MustOfctl(b, "del-flows")
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		b.ReportMetric(float64(best)/float64(time.Millisecond), "min_ms")
	}
	b.Run("reconcile", func(b *testing.B) {
		timed(b, func() error {
			_, err := sw.Reconcile(ctx, fl, flows.CookieController, flows.CookieOwnerMask)
			return err
		})
	})
	b.Run("limit", func(b *testing.B) {
		timed(b, func() error {
			enc := encodeSide(fl, true)
			first := sw.conn.ReserveXids(len(fl))
			var buf []byte
			for i, f := range fl {
				w := &enc.bin[i]
				buf, _ = ofcodec.AppendBundleAddMod(buf, first+uint32(i), 99, ofcodec.BundleAtomic, ofcodec.ModOf(f, ofcodec.CommandAdd, w.match, w.instr))
			}
			start := time.Now()
			defer func() { b.ReportMetric(float64(time.Since(start))/float64(time.Millisecond), "last_ms") }()
			if err := sw.bundleControl(ctx, 99, openflow13.OFPBCT_OPEN_REQUEST, openflow13.OFPBCT_OPEN_REPLY); err != nil {
				return err
			}
			if _, err := sw.conn.SendPreEncoded(ctx, first, len(fl), buf); err != nil {
				return err
			}
			return sw.bundleControl(ctx, 99, openflow13.OFPBCT_COMMIT_REQUEST, openflow13.OFPBCT_COMMIT_REPLY)
		})
	})
	b.Run("dial", func(b *testing.B) {
		timed(b, func() error {
			s, err := Dial(ctx, env.Target, nil)
			if err == nil {
				s.Close()
			}
			return err
		})
	})
}
