package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// The peripheral-access workload (issue 15, 4.4), the seed's Go path: the
// board's GPIO registers mapped into the process through /dev/mem and an
// output pin toggled by plain stores into the mapping, as Go GPIO libraries
// (go-rpio) drive a Pi. `app devmem N` makes N writes, alternately driving
// the pin high and low, and times them on CLOCK_MONOTONIC (guest time under
// clock: virtual). The node image's /app/gpio.js is Node's nearest path.
//
// Debian's kernel has CONFIG_IO_STRICT_DEVMEM: /dev/mem refuses a region a
// driver has claimed (pinctrl-bcm2835, pl061) unless the kernel runs with
// iomem=relaxed, which the scenario passes.

// gpioBlock is how one board's GPIO block drives one pin: the block's
// physical address, the word written to drive the pin high (set) and low
// (clear) with their values, the word that reads its level back, and the
// setup that makes it an output.
type gpioBlock struct {
	name           string
	base           int64
	pin            uint32
	setReg, setVal uint32
	clrReg, clrVal uint32
	levReg         uint32
	output         func(regs []uint32)
}

// bcm2835 is the BCM2835/BCM2837 GPIO block (raspi3b, raspi3ap) at
// 0x3f200000 (bus address 0x7e200000), pin 17: GPSET0 and GPCLR0 set and
// clear, GPLEV0 reads the level, GPFSEL1 bits 21-23 = 001 make it an output.
var bcm2835 = gpioBlock{
	name: "bcm2835", base: 0x3f200000, pin: 17,
	setReg: 0x1c / 4, setVal: 1 << 17,
	clrReg: 0x28 / 4, clrVal: 1 << 17,
	levReg: 0x34 / 4,
	output: func(regs []uint32) {
		regs[0x04/4] = regs[0x04/4]&^(7<<21) | 1<<21
	},
}

// pl061 is QEMU virt's PL061 GPIO block at 0x09030000, pin 0 (line 3 is
// the power button): GPIODATA at offset (1<<pin)<<2 writes and reads only
// that pin; GPIODIR (0x400) bit 0 makes it an output.
var pl061 = gpioBlock{
	name: "pl061", base: 0x09030000, pin: 0,
	setReg: 1, setVal: 1,
	clrReg: 1, clrVal: 0,
	levReg: 1,
	output: func(regs []uint32) {
		regs[0x400/4] |= 1
	},
}

// boardGPIO picks the block from the device tree's compatible string.
func boardGPIO() gpioBlock {
	compatible, err := os.ReadFile("/proc/device-tree/compatible")
	if err != nil {
		fmt.Fprintln(os.Stderr, "devmem:", err)
		os.Exit(1)
	}
	if strings.Contains(string(compatible), "brcm,bcm2837") {
		return bcm2835
	}
	return pl061
}

func devmem(writes int) {
	gpio := boardGPIO()
	// O_SYNC: the mapping is uncached device memory.
	f, err := os.OpenFile("/dev/mem", os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devmem:", err)
		os.Exit(1)
	}
	mem, err := syscall.Mmap(int(f.Fd()), gpio.base, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devmem: mmap /dev/mem at %#x: %v (the kernel needs iomem=relaxed)\n", gpio.base, err)
		os.Exit(1)
	}
	regs := unsafe.Slice((*uint32)(unsafe.Pointer(&mem[0])), len(mem)/4)
	gpio.output(regs)

	// What is measured: the writes alone, one store each.
	begin := time.Now()
	for i := 0; i < writes; i++ {
		if i&1 == 0 {
			regs[gpio.setReg] = gpio.setVal
		} else {
			regs[gpio.clrReg] = gpio.clrVal
		}
	}
	elapsed := time.Since(begin).Nanoseconds()

	// The writes reached the device: the pin reads back as driven.
	regs[gpio.setReg] = gpio.setVal
	high := regs[gpio.levReg]>>gpio.pin&1 == 1
	regs[gpio.clrReg] = gpio.clrVal
	low := regs[gpio.levReg]>>gpio.pin&1 == 0
	if !high || !low {
		fmt.Fprintf(os.Stderr, "devmem: pin %d of %s does not follow its writes\n", gpio.pin, gpio.name)
		os.Exit(1)
	}
	fmt.Printf("GO gpio path=devmem block=%s pin=%d writes=%d total_us=%d ns_per_access=%d t_us=%d\n",
		gpio.name, gpio.pin, writes, elapsed/1000, (elapsed+int64(writes)/2)/int64(writes), nowUs())
}
