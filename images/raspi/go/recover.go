package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// faultFile holds the guest time of the fault (µs), written as the faulty
// request is dispatched, so that a restarted program can tell how long the
// service was out. /tmp is the initramfs's: it outlives the process.
const faultFile = "/tmp/lab-fault-us"

// serve is the service of the recover experiment (issue 15, 2.5 on Linux):
// it answers each "REQ <seq>" line on stdin with "OK <seq>", each request in
// its own goroutine. Request <fault> has no user, and handle (work.go)
// panics on it. With handling "recover" the request's goroutine recovers
// the panic, logs "GO error request=<seq> recovered: <panic>" on stderr,
// answers "ERR <seq>" and the program goes on serving; with "panic" the
// panic ends the process (status 2) and the supervisor restarts it.
//
// At "QUIT" or the end of input it prints "GO done served=<n> errors=<n>
// after_fault=<n> restarts=<n> ready_again_us=<µs> serve_again_us=<µs>
// t_us=<µs>": the requests this process answered OK, the panics it
// recovered, the OK answers to requests after the fault, the supervisor's
// restarts so far, and the time from the fault to being able to serve
// again (the recover done, or the restarted program ready) and to the
// first OK answer after it (0 and 0 when no fault was seen).
func serve(handling string, fault int64, readyUs int64) {
	if handling != "recover" && handling != "panic" {
		fmt.Fprintln(os.Stderr, "usage: app serve recover|panic FAULT")
		os.Exit(64)
	}
	var faultUs, readyAgainUs, serveAgainUs atomic.Int64
	if data, err := os.ReadFile(faultFile); err == nil {
		// Restarted after the fault: ready again since the ready line.
		t, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		faultUs.Store(t)
		readyAgainUs.Store(readyUs - t)
	}
	var served, errors, afterFault atomic.Int64
	var pending sync.WaitGroup
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "QUIT" {
			break
		}
		seq, err := strconv.ParseInt(strings.TrimPrefix(line, "REQ "), 10, 64)
		if err != nil {
			continue
		}
		request := map[string]int{"user": 1}
		if seq == fault {
			request = map[string]int{}
			t := nowUs()
			faultUs.Store(t)
			os.WriteFile(faultFile, []byte(strconv.FormatInt(t, 10)), 0o644)
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			if handling == "recover" {
				// The panic becomes a logged error and an error answer;
				// this goroutine ends, the program goes on.
				defer func() {
					if p := recover(); p != nil {
						fmt.Fprintf(os.Stderr, "GO error request=%d recovered: %v\n", seq, p)
						fmt.Printf("ERR %d\n", seq)
						errors.Add(1)
						readyAgainUs.Store(nowUs() - faultUs.Load())
					}
				}()
			}
			handle(request)
			fmt.Printf("OK %d\n", seq)
			served.Add(1)
			if f := faultUs.Load(); f != 0 && seq > fault {
				afterFault.Add(1)
				serveAgainUs.CompareAndSwap(0, nowUs()-f)
			}
		}()
	}
	pending.Wait()
	fmt.Printf("GO done served=%d errors=%d after_fault=%d restarts=%s ready_again_us=%d serve_again_us=%d t_us=%d\n",
		served.Load(), errors.Load(), afterFault.Load(), restartsSoFar(), readyAgainUs.Load(), serveAgainUs.Load(), nowUs())
}

// restartsSoFar is LAB_RESTARTS, "0" when unset.
func restartsSoFar() string {
	if n := os.Getenv("LAB_RESTARTS"); n != "" {
		return n
	}
	return "0"
}
