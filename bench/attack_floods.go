package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// The floods of the attacks section. Each runs until ctx ends (the
// attack's duration) from loopback addresses of its own (127.0.N.x), so
// that no flood runs short of ephemeral ports left behind by another.

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// closeOnDone closes c when ctx ends, which ends a write blocked on it; the
// returned func stops that.
func closeOnDone(ctx context.Context, c net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// --- (a) 64 KiB echo requests, replies never read ---

// echoPeers is how many peers flood echo requests, half of them with the
// datapath IDs of absent hosts (served as those hosts' switches), half with
// datapath IDs of no switch of the topology (refused once identified).
const echoPeers = 30

// echoStats is what the echo flood counted.
type echoStats struct {
	requests, conns, dialFails atomic.Uint64
	mu                         sync.Mutex
	ended                      []float64 // seconds: known-ID connections the controller ended
	survived                   int       // known-ID connections still open at the end
}

func floodEcho(ctx context.Context, e *attackEnv, r *attackResult) {
	known := append(slices.Clone(e.absentTun), e.absentInt...)
	var st echoStats
	var wg sync.WaitGroup
	for i := 0; i < echoPeers; i++ {
		dpid, isKnown := uint64(0xbad0000000+i), false
		if i%2 == 0 && i/2 < len(known) {
			dpid, isKnown = known[i/2], true
		}
		src := net.IPv4(127, 0, 1, byte(i+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			echoPeer(ctx, e.addr, src, dpid, isKnown, &st)
		}()
	}
	wg.Wait()
	r.Counts["echo_requests"] = float64(st.requests.Load())
	r.Counts["mb_sent"] = float64(st.requests.Load()) * maxFrameLen / 1e6
	r.Counts["connections"] = float64(st.conns.Load())
	r.Counts["dial_failures"] = float64(st.dialFails.Load())
	r.Counts["sessions_ended_by_controller"] = float64(len(st.ended))
	r.Counts["sessions_open_at_end"] = float64(st.survived)
	r.Counts["session_max_s"] = 0
	if len(st.ended) > 0 {
		r.Counts["session_max_s"] = slices.Max(st.ended)
	}
}

// echoPeer identifies as dpid and writes 64 KiB echo requests without ever
// reading, again whenever the controller ends the connection.
func echoPeer(ctx context.Context, addr string, src net.IP, dpid uint64, known bool, st *echoStats) {
	req := bigEchoRequest()
	for ctx.Err() == nil {
		p, err := dialPeer(ctx, addr, src, dpid)
		if err != nil {
			st.dialFails.Add(1)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		st.conns.Add(1)
		start := time.Now()
		stop := closeOnDone(ctx, p.nc)
		for {
			if _, err := p.nc.Write(req); err != nil {
				break
			}
			st.requests.Add(1)
		}
		stop()
		p.nc.Close()
		if known {
			st.mu.Lock()
			if ctx.Err() != nil {
				st.survived++
			} else {
				st.ended = append(st.ended, time.Since(start).Seconds())
			}
			st.mu.Unlock()
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

func reportEcho(b *bench, sec *Section, r *attackResult) {
	b.r.add(sec, "attack_echo_requests", r.Counts["echo_requests"], "count", nil,
		fmt.Sprintf("64 KiB echo requests written by %d peers (%s MB) over %s connections, no reply read", echoPeers, num(r.Counts["mb_sent"]), num(r.Counts["connections"])))
	b.r.add(sec, "attack_echo_dropped", r.delta(ctlMetric("echo_requests_dropped_total")), "count", nil,
		"echo requests the controller left unanswered (its bounded reply queue was full)")
	b.r.add(sec, "attack_echo_sessions_ended", r.Counts["sessions_ended_by_controller"], "count", nil,
		fmt.Sprintf("connections claiming absent hosts' switches that the controller ended (longest lasted %s s; %s still open at the end)",
			num(r.Counts["session_max_s"]), num(r.Counts["sessions_open_at_end"])))
}

// --- (b) claims of connected switches' datapath IDs ---

// hijackers is how many peers claim real switches' datapath IDs at once.
const hijackers = 4

func floodHijack(ctx context.Context, e *attackEnv, r *attackResult) {
	var ids []uint64
	for i := range e.tun {
		ids = append(ids, e.tun[i].DatapathID(), e.brint[i].DatapathID())
	}
	var mu sync.Mutex
	outcomes := map[string]float64{}
	var wg sync.WaitGroup
	for i := 0; i < hijackers; i++ {
		src := net.IPv4(127, 0, 2, byte(i+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := i; ctx.Err() == nil; k += hijackers {
				out := "dial_failed"
				if p, err := dialPeer(ctx, e.addr, src, ids[k%len(ids)]); err == nil {
					out = p.claimOutcome(3 * time.Second)
					p.nc.Close()
				}
				mu.Lock()
				outcomes[out]++
				mu.Unlock()
				sleepCtx(ctx, 20*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for k, v := range outcomes {
		r.Counts["claims_"+k] = v
	}
	r.Counts["claims"] = outcomes[claimRefused] + outcomes[claimServed] + outcomes[claimPending]
}

func reportHijack(b *bench, sec *Section, r *attackResult) {
	b.r.add(sec, "attack_hijack_claims", r.Counts["claims"], "count", nil,
		fmt.Sprintf("handshakes by %d peers claiming the datapath IDs of the 6 connected real switches (%s refused as the peers saw it, %s undecided after 3 s)",
			hijackers, num(r.Counts["claims_"+claimRefused]), num(r.Counts["claims_"+claimPending])))
	b.r.add(sec, "attack_hijack_refused", r.delta(refusedSeries("claimed")), "count", nil, "switches_refused_total{reason=claimed}")
	b.r.add(sec, "attack_hijack_served", r.Counts["claims_"+claimServed], "count", &Target{"==", 0},
		"claims the controller served as the switch (sent it a request)")
	b.r.add(sec, "attack_hijack_displaced", r.delta(displacedSeries), "count", &Target{"==", 0}, "switches_displaced_total")
}

// --- (c) a flow dump reply that never ends ---

// repliers is how many peers, each as an absent host's br-tun, answer the
// controller's first multipart request with parts that never end: more
// than one, so that the budget shared by all replies is tried too.
const repliers = 4

// replyStats is what the endless replies counted.
type replyStats struct {
	bytes, conns, dropped, noRequest atomic.Uint64
	maxPerConn                       atomic.Uint64
}

func floodMultipart(ctx context.Context, e *attackEnv, r *attackResult) {
	var st replyStats
	var wg sync.WaitGroup
	for i := 0; i < repliers; i++ {
		src, dpid := net.IPv4(127, 0, 3, byte(i+1)), e.absentTun[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			endlessReplier(ctx, e.addr, src, dpid, &st)
		}()
	}
	wg.Wait()
	r.Counts["mb_sent"] = float64(st.bytes.Load()) / 1e6
	r.Counts["connections"] = float64(st.conns.Load())
	r.Counts["dropped_by_controller"] = float64(st.dropped.Load())
	r.Counts["max_mb_per_connection"] = float64(st.maxPerConn.Load()) / 1e6
	r.Counts["no_request"] = float64(st.noRequest.Load())
}

// endlessReplier answers the first multipart request with 64 KiB parts,
// each saying more follow, until the controller ends the connection; then
// again.
func endlessReplier(ctx context.Context, addr string, src net.IP, dpid uint64, st *replyStats) {
	for ctx.Err() == nil {
		p, err := dialPeer(ctx, addr, src, dpid)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		st.conns.Add(1)
		req := p.firstMultipart(5 * time.Second)
		if req == nil {
			st.noRequest.Add(1)
			p.nc.Close()
			continue
		}
		go p.drain()
		part := endlessPart(req)
		stop := closeOnDone(ctx, p.nc)
		var sent uint64
		for {
			if _, err := p.nc.Write(part); err != nil {
				break
			}
			sent += uint64(len(part))
		}
		stop()
		p.nc.Close()
		st.bytes.Add(sent)
		if ctx.Err() == nil {
			st.dropped.Add(1)
			for old := st.maxPerConn.Load(); sent > old && !st.maxPerConn.CompareAndSwap(old, sent); old = st.maxPerConn.Load() {
			}
		}
	}
}

func reportMultipart(b *bench, sec *Section, r *attackResult) {
	b.r.add(sec, "attack_multipart_mb_sent", r.Counts["mb_sent"], "MB", nil,
		fmt.Sprintf("endless flow-stats reply parts written by %d peers as absent hosts' br-tun, over %s connections", repliers, num(r.Counts["connections"])))
	b.r.add(sec, "attack_multipart_dropped", r.Counts["dropped_by_controller"], "count", nil, "endless replies the controller cut off by closing the connection")
	b.r.add(sec, "attack_multipart_max_mb_per_conn", r.Counts["max_mb_per_connection"], "MB", nil,
		"most one connection wrote before it was cut off (what the controller read, plus what the sockets held)")
}

// --- (d) connections that never say hello ---

// stalledConns is how many connections are opened and left silent.
const stalledConns = 10000

// stalledStats is what the stalled connections counted.
type stalledStats struct {
	opened, dialFails, closedAtOnce, closedLater atomic.Int64
	mu                                           sync.Mutex
	conns                                        []net.Conn
}

func floodStalled(ctx context.Context, e *attackEnv, r *attackResult) {
	var st stalledStats
	var readers sync.WaitGroup
	start := time.Now()
	dialStalled(ctx, e.addr, &st, &readers)
	r.Counts["dial_s"] = time.Since(start).Seconds()
	// A switch the controller has not met yet connects once the flood is
	// in place: how long until it is served? It redials as OVS does, so
	// it may get in only after the flood.
	served := make(chan float64, 1)
	go func() { served <- newSwitchServed(e, newSwitchLimit) }()
	<-ctx.Done()
	st.mu.Lock()
	for _, c := range st.conns {
		c.Close()
	}
	st.mu.Unlock()
	readers.Wait()
	r.Counts["new_switch_s"] = <-served
	r.Counts["held_s"] = time.Since(start).Seconds() - r.Counts["dial_s"]
	r.Counts["opened"] = float64(st.opened.Load())
	r.Counts["dial_failures"] = float64(st.dialFails.Load())
	r.Counts["closed_at_once"] = float64(st.closedAtOnce.Load())
	r.Counts["closed_later"] = float64(st.closedLater.Load())
}

// dialStalled opens stalledConns connections from four loopback addresses,
// 50 at a time, each with a reader that notes when the controller closes it.
func dialStalled(ctx context.Context, addr string, st *stalledStats, readers *sync.WaitGroup) {
	next := make(chan int)
	var dialers sync.WaitGroup
	for w := 0; w < 50; w++ {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for i := range next {
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 4, byte(1+i%4))}}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					st.dialFails.Add(1)
					continue
				}
				st.opened.Add(1)
				st.mu.Lock()
				st.conns = append(st.conns, c)
				st.mu.Unlock()
				readers.Add(1)
				go func(at time.Time) {
					defer readers.Done()
					io.Copy(io.Discard, c) // the controller's hello, then its close
					switch {
					case ctx.Err() != nil:
					case time.Since(at) < time.Second:
						st.closedAtOnce.Add(1)
					default:
						st.closedLater.Add(1)
					}
				}(time.Now())
			}
		}()
	}
	for i := 0; i < stalledConns && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	dialers.Wait()
}

// newSwitchLimit bounds how long a new switch may take to be served during
// and after the stalled connections.
const newSwitchLimit = 20 * time.Second

// newSwitchServed connects the br-int of an absent host and returns how
// long until it got its flow, in seconds (-1: not within limit).
func newSwitchServed(e *attackEnv, limit time.Duration) float64 {
	sw, err := openflowtest.New(openflowtest.IntegrationBridge(e.t, e.t.Hosts[attackRealHosts]))
	if err != nil {
		return -1
	}
	defer sw.Close()
	start := time.Now()
	if err := sw.Connect(e.addr); err != nil {
		return -1
	}
	for sw.FlowCount() == 0 {
		if time.Since(start) > limit {
			return -1
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start).Seconds()
}

func reportStalled(b *bench, sec *Section, r *attackResult) {
	b.r.add(sec, "attack_stalled_opened", r.Counts["opened"], "count", nil,
		fmt.Sprintf("silent TCP connections opened in %.1f s (%s failed)", r.Counts["dial_s"], num(r.Counts["dial_failures"])))
	b.r.add(sec, "attack_stalled_refused_at_once", r.delta(refusedSeries("pending-limit")), "count", nil,
		fmt.Sprintf("refused by the cap on connections not yet identified (the peers saw %s closed within 1 s)", num(r.Counts["closed_at_once"])))
	b.r.add(sec, "attack_stalled_timed_out", r.delta(refusedSeries("handshake")), "count", nil,
		fmt.Sprintf("admitted, then dropped when the handshake timed out (the peers saw %s closed later)", num(r.Counts["closed_later"])))
	b.r.add(sec, "attack_stalled_fds", r.PeakFDs, "count", nil, "controller's peak process_open_fds, limit "+r.MaxOpenFiles)
	b.r.add(sec, "attack_stalled_new_switch_s", r.Counts["new_switch_s"], "s", nil,
		fmt.Sprintf("a switch connecting for the first time once the connections are open (held %.1f s more): until it has its flow, redialling as OVS does (-1: not within %v)",
			r.Counts["held_s"], newSwitchLimit))
}

// --- (e) one MAC flapping between two hosts ---

// flapMoves is the controller's --mac-flap-moves in the flap attack (with
// a 10 s window, the attack's length): the moves it may apply.
const flapMoves = 4

func floodFlap(ctx context.Context, e *attackEnv, r *attackResult) {
	mac := net.HardwareAddr{0x52, 0x54, 0x0c, 0, 0, 1}
	ip, target := netip.AddrFrom4([4]byte{10, 252, 0, 1}), netip.AddrFrom4([4]byte{10, 252, 255, 254})
	from := func(i int) openflowtest.PacketIn {
		return openflowtest.UnknownSource(openflowtest.ARPRequest(mac, ip, target, e.vlans[i]))
	}
	e.tun[0].SendPacketIn(from(0)) // learned on the first host
	time.Sleep(300 * time.Millisecond)
	mods0, bundles0 := flowMods(e.tun), e.tun[2].Counters().Bundles
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	for i := 1; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
			e.tun[i%2].SendPacketIn(from(i % 2))
			sent++
		}
	}
	time.Sleep(time.Second) // the last moves reach the switches
	r.Counts["packet_ins_sent"] = float64(sent)
	r.Counts["flow_mods"] = float64(flowMods(e.tun) - mods0)
	r.Counts["bundles_to_third"] = float64(e.tun[2].Counters().Bundles - bundles0)
}

// flowMods adds up the flow-mods the switches applied.
func flowMods(sw []*openflowtest.Switch) uint64 {
	var n uint64
	for _, s := range sw {
		n += s.Counters().FlowMods
	}
	return n
}

func reportFlap(b *bench, sec *Section, r *attackResult) {
	b.r.add(sec, "attack_flap_packet_ins", r.Counts["packet_ins_sent"], "count", nil,
		"packet-ins reporting one learned MAC alternately on two hosts, one a millisecond")
	b.r.add(sec, "attack_flap_moves", r.delta(ctlMetric(`mac_events_total{kind="moved"}`)), "count", &Target{"<=", flapMoves},
		fmt.Sprintf("moves applied (--mac-flap-moves %d in 10 s; damped %s, rate-limited %s packet-ins)", flapMoves,
			num(packetInSeries(r.m1, "damped")-packetInSeries(r.m0, "damped")), num(packetInSeries(r.m1, "rate_limited")-packetInSeries(r.m0, "rate_limited"))))
	b.r.add(sec, "attack_flap_flow_mods", r.Counts["flow_mods"], "count", nil,
		fmt.Sprintf("flow-mods the 3 br-tun applied meanwhile (the probe's included); %s bundles to the third host", num(r.Counts["bundles_to_third"])))
}
