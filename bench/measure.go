package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is one timed run with the CPU it cost: wall time, the client's
// CPU (this process, or ovs-ofctl) and ovs-vswitchd's, in milliseconds. On
// a busy machine CPU is steadier than wall time.
type sample struct{ wall, client, ovs float64 }

// selfCPU is this process's CPU time (user and system, every thread).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux ABI.
const clockTick = 10 * time.Millisecond

// procCPU is a process's CPU time (utime + stime of every thread) from
// /proc/<pid>/stat, in clock ticks of 10 ms.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields count from after
	// its closing parenthesis, where field 3 (state) is the first.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("process %d: malformed /proc/%d/stat", pid, pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("process %d: malformed times in /proc/%d/stat", pid, pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// vswitchdPid is the pid of the environment's ovs-vswitchd.
func (e *ovsEnv) vswitchdPid() (int, error) {
	b, err := os.ReadFile(filepath.Join(e.inst.Dir, "ovs-vswitchd.pid"))
	if err != nil {
		return 0, fmt.Errorf("finding ovs-vswitchd: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("ovs-vswitchd pid file: %w", err)
	}
	return pid, nil
}

// measure runs f, timing it and the CPU this process and ovs-vswitchd
// spend meanwhile, from a collected heap. f may report CPU spent by a child process of its own
// (ovs-ofctl); it then counts as the client's instead of this process's.
func (e *ovsEnv) measure(f func() (child time.Duration, err error)) (sample, error) {
	// The garbage of the side before (a decoded dump of 100,000 flows is
	// 100 MB) is collected first, not on this side's clock.
	runtime.GC()
	pid, err := e.vswitchdPid()
	if err != nil {
		return sample{}, err
	}
	ovs0, err := procCPU(pid)
	if err != nil {
		return sample{}, err
	}
	self0, start := selfCPU(), time.Now()
	child, err := f()
	wall, self := time.Since(start), selfCPU()-self0
	if err != nil {
		return sample{}, err
	}
	ovs1, err := procCPU(pid)
	if err != nil {
		return sample{}, err
	}
	client := self
	if child > 0 {
		client = child
	}
	return sample{wall: ms(wall), client: ms(client), ovs: ms(ovs1 - ovs0)}, nil
}

// sampled is one side of a comparison measured with its CPU.
type sampled func() (sample, error)

// Noise control: a comparison whose wall times spread (interquartile range
// over median) more than noisySpread on some side gets more rounds, up to
// maxRunsFactor times -runs.
const (
	noisySpread   = 0.15
	maxRunsFactor = 3
)

// alternateSampled is alternate for sampled sides, with more rounds while
// the machine is noisy.
func alternateSampled(ctx context.Context, runs int, sides ...sampled) ([][]sample, error) {
	out := make([][]sample, len(sides))
	wrapped := make([]side, len(sides))
	for i, s := range sides {
		wrapped[i] = func() (float64, error) {
			v, err := s()
			if err == nil {
				out[i] = append(out[i], v)
			}
			return v.wall, err
		}
	}
	walls, err := alternate(ctx, runs, wrapped...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = out[i][1:] // the warm-up
	}
	for extra := 0; noisy(walls) && runs+extra < maxRunsFactor*runs; extra += 2 {
		// Two rounds at a time, so that neither side always goes first.
		more, err := alternateRounds(ctx, 2, wrapped...)
		if err != nil {
			return nil, err
		}
		for i := range walls {
			walls[i] = append(walls[i], more[i]...)
		}
	}
	return out, nil
}

// noisy reports whether some side's runs spread more than noisySpread.
func noisy(runs [][]float64) bool {
	for _, r := range runs {
		if m := median(r); m > 0 && (percentile(r, 75)-percentile(r, 25))/m > noisySpread {
			return true
		}
	}
	return false
}

// medianSample is the median of each of a sample's figures on its own.
func medianSample(s []sample) sample {
	var w, c, o []float64
	for _, x := range s {
		w, c, o = append(w, x.wall), append(c, x.client), append(o, x.ovs)
	}
	return sample{wall: median(w), client: median(c), ovs: median(o)}
}
