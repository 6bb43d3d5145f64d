package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The GC workload, the same in app.js: rounds of building a map of small
// objects, of which the last `window` rounds stay alive.
const (
	rounds   = 60
	perRound = 5000
	window   = 8
)

type item struct {
	id   int
	name string
	tags []int
}

// gcPressure runs the allocation workload (after the hold, see hold) and prints
// "GO done rounds=<n> objects=<n> live=<n> gc=<n> t_us=<µs the work took>".
func gcPressure() {
	hold()
	begin := nowUs()
	live := make([]map[int]*item, window)
	objects := 0
	for r := 0; r < rounds; r++ {
		m := make(map[int]*item)
		for i := 0; i < perRound; i++ {
			m[i] = &item{id: r*perRound + i, name: "item-" + strconv.Itoa(i), tags: []int{r, i}}
		}
		objects += len(m)
		live[r%window] = m
	}
	kept := 0
	for _, m := range live {
		kept += len(m)
	}
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	fmt.Printf("GO done rounds=%d objects=%d live=%d gc=%d t_us=%d\n",
		rounds, objects, kept, stats.NumGC, nowUs()-begin)
}

// The seed's GC workload (3.2), the same in app.js: listeners closures on
// one dispatcher, each over its own state (a count, a running total and a
// ring of its last history readings). Each round emits emits events to
// every listener, and each call allocates a reading it keeps in its ring,
// so a reading lives history emits and then dies. After each round the
// churn oldest listeners are removed (their state becomes garbage) and as
// many new ones are added. The dispatcher works as Node's EventEmitter:
// emit calls a copy of the listener slice, off searches it from the end.
const (
	listenerCount  = 4000
	listenerRounds = 50
	emits          = 5
	churn          = 200
	history        = 16
)

type event struct {
	seq   int
	value float64
}

type reading struct {
	seq   int
	value float64
}

type listener struct {
	id int
	fn func(*event)
}

// dispatcher is an EventEmitter with one event.
type dispatcher struct {
	listeners []listener
}

func (d *dispatcher) on(id int, fn func(*event)) {
	d.listeners = append(d.listeners, listener{id, fn})
}

// off removes the listener with this id, searching from the newest. As
// EventEmitter does (Array.shift, which V8 does in place), the first one
// goes by moving the slice's start, any other by moving those after it.
func (d *dispatcher) off(id int) {
	for i := len(d.listeners) - 1; i >= 0; i-- {
		if d.listeners[i].id != id {
			continue
		}
		if i == 0 {
			d.listeners[0] = listener{}
			d.listeners = d.listeners[1:]
		} else {
			d.listeners = append(d.listeners[:i], d.listeners[i+1:]...)
		}
		return
	}
}

// emit calls every listener through a copy of the slice, as EventEmitter
// does, so a listener may remove listeners while the event is delivered.
func (d *dispatcher) emit(e *event) {
	for _, l := range append([]listener(nil), d.listeners...) {
		l.fn(e)
	}
}

type listenerState struct {
	count   int
	total   int
	history [history]*reading
}

// listeners runs the listener workload (after the hold, see hold) and prints
// "GO done mode=listeners listeners=<n> rounds=<n> calls=<n> churned=<n>
// checksum=<n> t_us=<µs the work took> since_exec_us=<µs from the exec to
// here>" (LAB_EXEC_US, stamped by the supervisor just before it ran the
// program: the whole life of the process, for a GC trace read from its
// start; 0 without it).
func listeners() {
	hold()
	begin := nowUs()
	var d dispatcher
	type registration struct {
		id    int
		state *listenerState
	}
	// The listeners in registration order, oldest first, to remove the oldest.
	var registered []registration
	nextID, calls, retired := 0, 0, 0
	add := func() {
		id := nextID
		nextID++
		state := &listenerState{}
		d.on(id, func(e *event) {
			state.history[state.count%history] = &reading{seq: e.seq, value: e.value + float64(id)}
			state.count++
			state.total += (id*31 + e.seq) % 1000
			calls++
		})
		registered = append(registered, registration{id, state})
	}
	for i := 0; i < listenerCount; i++ {
		add()
	}
	seq, churned := 0, 0
	for r := 0; r < listenerRounds; r++ {
		for e := 0; e < emits; e++ {
			d.emit(&event{seq: seq, value: float64(seq) * 0.5})
			seq++
		}
		for _, old := range registered[:churn] {
			d.off(old.id)
			retired += old.state.total
			churned++
		}
		registered = append([]registration(nil), registered[churn:]...)
		for i := 0; i < churn; i++ {
			add()
		}
	}
	checksum := retired
	for _, reg := range registered {
		checksum += reg.state.total
	}
	end := nowUs()
	exec, err := strconv.ParseInt(os.Getenv("LAB_EXEC_US"), 10, 64)
	if err != nil {
		exec = end
	}
	fmt.Printf("GO done mode=listeners listeners=%d rounds=%d calls=%d churned=%d checksum=%d t_us=%d since_exec_us=%d\n",
		len(d.listeners), listenerRounds, calls, churned, checksum, end-begin, end-exec)
}

// messages answers each "MSG <seq>" line on stdin with
// "ACK <seq> rss_kb=<VmRSS>", each in its own goroutine; VmRSS is sampled
// every 100 messages. It ends at "QUIT" or the end of input, after printing
// "GO done received=<n> t_us=<µs>".
func messages() {
	var rss atomic.Int64
	rss.Store(status("VmRSS"))
	var count atomic.Int64
	var pending sync.WaitGroup
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "QUIT" {
			break
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			seq, ok := strings.CutPrefix(line, "MSG ")
			if !ok {
				return
			}
			if count.Add(1)%100 == 0 {
				rss.Store(status("VmRSS"))
			}
			fmt.Printf("ACK %s rss_kb=%d\n", seq, rss.Load())
		}()
	}
	pending.Wait()
	fmt.Printf("GO done received=%d t_us=%d\n", count.Load(), nowUs())
}

// crash fails the way an unhandled Go error does, on the first start only:
// a panic in a request's goroutine ends the process with status 2 and a
// goroutine trace. After a restart (LAB_RESTARTS > 0) it exits cleanly.
func crash() {
	hold()
	if restarted() {
		fmt.Printf("GO done recovered t_us=%d\n", nowUs())
		return
	}
	done := make(chan struct{})
	go func() {
		handle(map[string]int{})
		close(done)
	}()
	<-done
}

// handle looks up a key that is not there and panics on it.
func handle(request map[string]int) {
	if _, ok := request["user"]; !ok {
		panic("lab crash: request without a user")
	}
}

// footprint prints "GO footprint app_bytes=<n> runtime_bytes=<n>
// rss_kb=<n> hwm_kb=<n>": the program's size, the size of every file
// mapped into the process (for a static Go binary, the binary itself) and
// the resident set at ready and its peak so far. It measures before the
// hold (see hold), so the figures are those at ready either way.
func footprint() {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
	app, err := os.Stat(self)
	if err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
	line := fmt.Sprintf("GO footprint app_bytes=%d runtime_bytes=%d rss_kb=%d hwm_kb=%d\n",
		app.Size(), mappedBytes(), status("VmRSS"), status("VmHWM"))
	hold()
	fmt.Print(line)
}

// mappedBytes adds up the sizes of the distinct files mapped into this
// process (/proc/self/maps).
func mappedBytes() int64 {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	total := int64(0)
	for _, line := range strings.Split(string(maps), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || !filepath.IsAbs(fields[5]) || seen[fields[5]] {
			continue
		}
		seen[fields[5]] = true
		if info, err := os.Stat(fields[5]); err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
	}
	return total
}

// status reads a "<key>: <n> kB" line of /proc/self/status.
func status(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
