// Command app is the go-cold-start guest program: it reports how long it
// took from /init's stamp to its main function (the Go runtime's own
// start-up included), does a little allocation work so the garbage
// collector runs, reports the collector's counters and exits 0.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

type point struct {
	x, y int64
	name string
}

// monotonicUs reads CLOCK_MONOTONIC (µs since the kernel started, the clock
// of /init's LAB_INIT_US stamp) through a raw system call.
func monotonicUs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano() / 1000
}

// origin is /init's stamp (LAB_INIT_US, taken just before it runs this
// program), or, outside the lab's image, the time this package initialised.
var origin = func() int64 {
	if us, err := strconv.ParseInt(os.Getenv("LAB_INIT_US"), 10, 64); err == nil {
		return us
	}
	return monotonicUs()
}()

func sinceStart() int64 { return monotonicUs() - origin }

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
