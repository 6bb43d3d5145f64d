package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// The escape-analysis workload (issue 15, 3.1): `parses` sensor lines
// parsed by a parseSensor that returns a pointer (its Reading escapes to the
// heap: one allocation per call) or a value (the Reading is copied into the
// caller's frame: no allocation). Both are kept out of line
// (go:noinline), so the caller's use of the result cannot change what the
// compiler decides for the function itself.
const parses = 200000

// escapeSummary is the build's -gcflags='-m -m' verdict on this file,
// written by escape-summary.py and installed into the initramfs.
const escapeSummary = "/lib/lab/escape-analysis.txt"

// sensorLines are what a sensor sends, one reading a line; the workload
// cycles through them.
var sensorLines = []string{
	"id=greenhouse-3 temp=21.47 hum=48.2 ts=1732712400",
	"id=greenhouse-3 temp=21.51 hum=48.0 ts=1732712401",
	"id=cellar-1 temp=11.08 hum=71.9 ts=1732712401",
	"id=roof-2 temp=-3.25 hum=88.4 ts=1732712402",
}

// Reading is one parsed sensor line. ID shares the line's bytes.
type Reading struct {
	ID   string
	Temp float64
	Hum  float64
	TS   int64
}

// field returns the value of "key=value" at the start of s and the rest of
// s after the following space.
func field(s, key string) (value, rest string) {
	s, _ = strings.CutPrefix(s, key+"=")
	value, rest, _ = strings.Cut(s, " ")
	return value, rest
}

// parseInto fills r from line; it allocates nothing.
func parseInto(line string, r *Reading) {
	var v string
	v, line = field(line, "id")
	r.ID = v
	v, line = field(line, "temp")
	r.Temp, _ = strconv.ParseFloat(v, 64)
	v, line = field(line, "hum")
	r.Hum, _ = strconv.ParseFloat(v, 64)
	v, _ = field(line, "ts")
	r.TS, _ = strconv.ParseInt(v, 10, 64)
}

// parseSensorPtr returns a pointer: the Reading outlives the call, so the
// compiler moves it to the heap.
//
//go:noinline
func parseSensorPtr(line string) *Reading {
	r := &Reading{}
	parseInto(line, r)
	return r
}

// parseSensorValue builds its Reading the same way but returns a copy:
// nothing outlives the call, so the Reading stays on the stack.
//
//go:noinline
func parseSensorValue(line string) Reading {
	r := &Reading{}
	parseInto(line, r)
	return *r
}

// escape prints the build's verdict on the variant's parseSensor
// ("GO escape build func=<name> heap=<0|1>: <compiler's words>"), then, after the hold,
// parses `parses` lines with it and prints "GO escape variant=<v>
// parses=<n> mallocs=<n> mallocs_per_s=<n> ns_per_parse=<n> t_us=<µs>":
// the MemStats.Mallocs delta over the parses and its rate per second of
// the time they took, and their mean latency.
func escape(variant string) {
	var name string
	switch variant {
	case "pointer":
		name = "parseSensorPtr"
	case "value":
		name = "parseSensorValue"
	default:
		fmt.Fprintln(os.Stderr, "usage: app escape pointer|value")
		os.Exit(64)
	}
	hold()
	summary, err := os.ReadFile(escapeSummary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "escape:", err)
		os.Exit(1)
	}
	for _, line := range strings.Split(string(summary), "\n") {
		if strings.HasPrefix(line, "func="+name+" ") {
			fmt.Printf("GO escape build %s\n", line)
		}
	}

	var before, after runtime.MemStats
	sum := 0.0
	runtime.GC()
	runtime.ReadMemStats(&before)
	begin := nowUs()
	if variant == "pointer" {
		for i := 0; i < parses; i++ {
			sum += parseSensorPtr(sensorLines[i%len(sensorLines)]).Temp
		}
	} else {
		for i := 0; i < parses; i++ {
			sum += parseSensorValue(sensorLines[i%len(sensorLines)]).Temp
		}
	}
	elapsed := nowUs() - begin
	runtime.ReadMemStats(&after)
	mallocs := after.Mallocs - before.Mallocs
	fmt.Printf("GO escape variant=%s parses=%d mallocs=%d mallocs_per_s=%d ns_per_parse=%d checksum=%d t_us=%d\n",
		variant, parses, mallocs, int64(float64(mallocs)*1e6/float64(elapsed)),
		elapsed*1000/parses, int64(sum), elapsed)
}
