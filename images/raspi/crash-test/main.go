// Command app is the crash-test guest program, a test fixture for the lab's
// `expect-crash` step. It prints "APP ready t_ms=<ms since the kernel
// started>" and then ends as its argument says, one comma-separated mode per
// attempt of the supervisor (LAB_ATTEMPT, from 1): "panic" panics in a
// nested call (exit 2 with a goroutine trace), "kill" sends itself SIGKILL,
// "exit" exits with status 3; past the list it exits 0.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// uptimeMs is guest time since the kernel started, from /proc/uptime.
func uptimeMs() int64 {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	seconds, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		return 0
	}
	return int64(seconds * 1000)
}

type service struct{ handled int }

// handle fails on the third message.
func (s *service) handle(msg int) {
	if msg == 3 {
		panic(fmt.Sprintf("sensor %d returned no data", msg))
	}
	s.handled++
}

func main() {
	fmt.Printf("APP ready t_ms=%d\n", uptimeMs())
	attempt, _ := strconv.Atoi(os.Getenv("LAB_ATTEMPT"))
	modes := []string{}
	if len(os.Args) > 1 {
		modes = strings.Split(os.Args[1], ",")
	}
	if attempt < 1 || attempt > len(modes) {
		return
	}
	switch modes[attempt-1] {
	case "panic":
		s := &service{}
		for msg := 0; msg < 5; msg++ {
			s.handle(msg)
		}
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "exit":
		fmt.Println("config missing")
		os.Exit(3)
	}
}
