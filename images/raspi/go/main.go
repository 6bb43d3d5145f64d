// Command app is the Go side of the Go against Node.js experiments
// (images/raspi/node/app.js is the same program in JavaScript): one static
// binary, one mode per experiment, chosen by the first argument.
//
// Every mode first prints "GO start t_us=<µs>", the time at which the first
// line of this package ran, then "GO ready mode=<mode> t_ms=<ms> t_us=<µs>"
// once that first output is written. All times are CLOCK_MONOTONIC in µs since the kernel
// started (the clock /proc/timer_list and Node's process.hrtime read).
//
// With LAB_HOLD=1 in the environment, the gc, listeners, crash, footprint
// and escape modes wait after the ready line, on the first start only, until a line arrives
// on stdin, print "GO resumed t_us=<µs>" and only then do their work: the
// lab saves a snapshot while the program waits (warm-up:), and every run
// restored from it sends the line.
//
// Mode escape (escape.go) is the escape-analysis experiment: `app escape
// pointer|value`.
//
// Mode serve (recover.go) is the recover experiment: `app serve
// recover|panic FAULT`.
//
// Mode devmem (devmem.go) is the peripheral-access experiment: `app devmem
// N`, N writes to a GPIO register through an mmap of /dev/mem; it holds too.
//
// Mode ota (ota.go) is the A/B update of the power-loss experiment: it
// prints "READY version=V" instead of the ready line above.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// startUs is taken while the package initialises: the first user code that
// runs, after the Go runtime's own start-up.
var startUs = nowUs()

// nowUs reads CLOCK_MONOTONIC through a raw system call, in µs.
func nowUs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano() / 1000
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: app cold|gc|listeners|msg|crash|footprint|escape pointer|value|serve recover|panic FAULT|devmem N|ota")
	os.Exit(64)
}

func main() {
	fmt.Printf("GO start t_us=%d\n", startUs)
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	switch mode {
	case "cold":
		phases(ready(mode))
	case "gc":
		ready(mode)
		gcPressure()
	case "listeners":
		ready(mode)
		listeners()
	case "msg":
		ready(mode)
		messages()
	case "crash":
		ready(mode)
		crash()
	case "footprint":
		ready(mode)
		footprint()
	case "escape":
		if len(os.Args) < 3 {
			usage()
		}
		ready(mode)
		escape(os.Args[2])
	case "serve":
		if len(os.Args) < 4 {
			usage()
		}
		fault, err := strconv.ParseInt(os.Args[3], 10, 64)
		if err != nil {
			usage()
		}
		serve(os.Args[2], fault, ready(mode))
	case "devmem":
		if len(os.Args) < 3 {
			usage()
		}
		writes, err := strconv.Atoi(os.Args[2])
		if err != nil || writes < 1 {
			usage()
		}
		ready(mode)
		hold()
		devmem(writes)
	case "ota":
		// The power-loss update (ota.go): its own READY line, after
		// checking its storage.
		ota()
	default:
		usage()
	}
}

// ready prints the ready line: the first output has been written. It
// returns the time it printed.
func ready(mode string) int64 {
	t := nowUs()
	fmt.Printf("GO ready mode=%s t_ms=%d t_us=%d\n", mode, t/1000, t)
	return t
}

// restarted tells whether the supervisor has restarted the program
// (LAB_RESTARTS above 0).
func restarted() bool {
	n := os.Getenv("LAB_RESTARTS")
	return n != "" && n != "0"
}

// hold waits for the lab when LAB_HOLD=1 and this is the first start: it
// reads stdin up to the first newline (or its end), one byte at a time so
// nothing past the line is consumed, then prints "GO resumed t_us=<µs>".
func hold() {
	if os.Getenv("LAB_HOLD") != "1" || restarted() {
		return
	}
	var b [1]byte
	for {
		n, err := os.Stdin.Read(b[:])
		if err != nil || (n == 1 && b[0] == '\n') {
			break
		}
	}
	fmt.Printf("GO resumed t_us=%d\n", nowUs())
}

// phases prints the cold start in phases, in µs: kernel start to /init, /init
// to the supervisor's exec (LAB_INIT_US and LAB_EXEC_US, stamped by the
// guest's /init and /bin/supervise), exec to the first line of user code
// (the runtime's own start-up), from there to the first output written, and
// the total.
func phases(readyUs int64) {
	initUs, err1 := strconv.ParseInt(os.Getenv("LAB_INIT_US"), 10, 64)
	execUs, err2 := strconv.ParseInt(os.Getenv("LAB_EXEC_US"), 10, 64)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "phases: LAB_INIT_US and LAB_EXEC_US are set by /init and /bin/supervise")
		os.Exit(1)
	}
	fmt.Printf("GO phases kernel_us=%d init_us=%d runtime_us=%d first_output_us=%d total_us=%d\n",
		initUs, execUs-initUs, startUs-execUs, readyUs-startUs, readyUs)
}
