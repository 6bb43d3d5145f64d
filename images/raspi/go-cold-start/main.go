// Command app is the go-cold-start guest program: it reports how long the Go
// runtime took to reach main, does a little allocation work so the garbage
// collector runs, reports the collector's counters and exits 0.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// start is set while the package initialises, before main runs.
var start = time.Now()

type point struct {
	x, y int64
	name string
}

func sinceStart() int64 { return time.Since(start).Microseconds() }

func main() {
	fmt.Printf("GO ready t_us=%d\n", sinceStart())

	// 20 rounds of 50k small heap objects: enough garbage for a few cycles.
	var keep []*point
	total := int64(0)
	for round := 0; round < 20; round++ {
		keep = nil
		for i := 0; i < 50000; i++ {
			keep = append(keep, &point{x: int64(i), y: int64(round)})
		}
		total += int64(len(keep))
	}

	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Printf("GO done gc=%d heap_alloc=%d t_us=%d\n", m.NumGC, m.HeapAlloc, sinceStart())
	if total != 20*50000 {
		os.Exit(1)
	}
}
