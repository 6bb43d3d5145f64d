package main

// Mode ota: the A/B update of the seed's power-loss experiment (issue 14),
// the Linux counterpart of images/cortex-m/ota's `ab` strategy, with the
// same protocol lines so that one campaign script sorts both.
//
// The "application image" is a payload standing in for a Go binary
// (payload, below): a header line "LABAPP version=V" and a stream anyone
// can regenerate. It lives in /data/ota (the lab's disk, `storage: {}`):
//
//	app, app.sha256          the current image and its SHA-256 (hex)
//	app.bak, app.bak.sha256  the one before it (hard links of the old pair)
//	trial                    "version=V boots=N" while version V is on trial
//	app.new, app.new.sha256  an update being written (never started from)
//
// Version 1 (app, app.sha256) is put on the disk at image build time by
// ota-payload.py, which writes the same bytes as payload().
//
// Update (`UPDATE V` on stdin): generate V in memory and hash it, print
// "UPDATE writing bytes=N t_us=T", write app.new in 64 KiB chunks, fsync,
// read it back and check its hash, write app.new.sha256 and fsync; link the
// current pair to app.bak(.sha256) (through a temporary name and a rename);
// write trial for V; then the commit point: rename app.new.sha256 to
// app.sha256; then rename app.new to app; fsync the folder after each
// step; print "UPDATE done version=V" and start again on the new version
// (exec of /proc/self/exe with the same arguments).
//
// A cut between any two steps leaves a version that starts:
//   - before the commit point app and app.sha256 are the old pair: the old
//     version starts (a trial left for another version is stale and
//     removed, app.new* are removed);
//   - between the two renames app.sha256 is the new hash while app is the
//     old image, and app.new matches it: the start finishes the rename
//     (roll forward, "RECOVER rename version=V");
//   - after the renames the new version starts on trial.
//
// Start: finish or clean up an interrupted update; if trial names the
// current version, count the boot (write, fsync) and roll back after
// trialBoots boots without a commit; check app against app.sha256 and its
// header. A bad app with a good app.bak rolls back ("ROLLBACK from=V to=W
// reason=R": the pair is linked back from app.bak, which stays). A healthy
// start prints "READY version=V" and, on trial, removes trial, fsyncs the
// folder and prints "COMMIT version=V". Nothing valid left: "BRICKED
// reason=R" and exit status 1.
//
// While it runs it appends a telemetry line to /data/telemetry.log every
// second, without fsync (telemetry): as on a device that logs, the disk
// always has unsynced writes, so an ext4 journal transaction is usually
// open when an update begins.
//
// Then it reads lines on stdin: `UPDATE V` as above, `UPDATE V faulty`
// writes a version whose health check fails (it prints "HEALTH fail
// version=V" and restarts, as a watchdog reset would, until the trial runs
// out and it rolls back), `STATUS` prints "STATUS version=V trial=T bak=W".

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// otaDir is where the images live: /data/ota, or $LAB_OTA_DIR (to try the
// mode on a host).
var otaDir = func() string {
	if dir := os.Getenv("LAB_OTA_DIR"); dir != "" {
		return dir
	}
	return "/data/ota"
}()

// telemetryPath is the log the running version appends to every second.
var telemetryPath = filepath.Join(otaDir, "..", "telemetry.log")

const (
	// payloadSize is the size of an application image, header included.
	payloadSize = 4 << 20
	// chunkSize is how much one write(2) puts into app.new.
	chunkSize = 64 << 10
	// trialBoots is how many boots a version on trial gets to commit.
	trialBoots = 3
	// telemetryEvery is the period of the telemetry line.
	telemetryEvery = time.Second
)

func otaPath(name string) string { return filepath.Join(otaDir, name) }

// payload returns version v's application image: "LABAPP version=V\n"
// (with " faulty" before the newline for a faulty one), then
// SHA-256("LABAPP V 0") SHA-256("LABAPP V 1") ... (counter in decimal),
// the whole cut to payloadSize bytes. ota-payload.py writes the same.
func payload(v int, faulty bool) []byte {
	header := fmt.Sprintf("LABAPP version=%d", v)
	if faulty {
		header += " faulty"
	}
	b := make([]byte, 0, payloadSize+sha256.Size)
	b = append(b, header+"\n"...)
	for i := 0; len(b) < payloadSize; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("LABAPP %d %d", v, i)))
		b = append(b, sum[:]...)
	}
	return b[:payloadSize]
}

// header parses an image's first line: its version and whether it is faulty.
func header(image []byte) (int, bool, error) {
	end := bytes.IndexByte(image, '\n')
	if end < 0 || end > 64 {
		return 0, false, errors.New("no-header")
	}
	fields := strings.Fields(string(image[:end]))
	if len(fields) < 2 || fields[0] != "LABAPP" || !strings.HasPrefix(fields[1], "version=") {
		return 0, false, errors.New("bad-header")
	}
	v, err := strconv.Atoi(strings.TrimPrefix(fields[1], "version="))
	if err != nil {
		return 0, false, errors.New("bad-header")
	}
	return v, len(fields) > 2 && fields[2] == "faulty", nil
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checked reads image `name` and its hash file `sumName` and returns the
// image's version, whether it is faulty, or why it is not valid.
func checked(name, sumName string) (int, bool, error) {
	image, err := os.ReadFile(otaPath(name))
	if err != nil {
		return 0, false, errors.New("missing")
	}
	want, err := os.ReadFile(otaPath(sumName))
	if err != nil {
		return 0, false, errors.New("no-hash")
	}
	if len(image) != payloadSize {
		return 0, false, errors.New("size")
	}
	if strings.TrimSpace(string(want)) != hexSum(image) {
		return 0, false, errors.New("hash")
	}
	return header(image)
}

// syncDir makes the folder's entries (renames, links, removals) durable.
func syncDir() error {
	d, err := os.Open(otaDir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeSynced writes a whole file in chunks of chunkSize and fsyncs it.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(otaPath(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += chunkSize {
		end := min(off+chunkSize, len(data))
		if _, err := f.Write(data[off:end]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// linkOver makes `to` a hard link of `from`, replacing `to` atomically
// (a link under a temporary name, renamed over it).
func linkOver(from, to string) error {
	tmp := otaPath(to + ".tmp")
	os.Remove(tmp)
	if err := os.Link(otaPath(from), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, otaPath(to))
}

// otaFail prints "BRICKED reason=R" and exits 1.
func otaFail(reason string) {
	fmt.Printf("BRICKED reason=%s\n", reason)
	os.Exit(1)
}

// trialState reads trial: the version on trial and its boots so far
// (ok false without a readable trial file).
func trialState() (version, boots int, ok bool) {
	text, err := os.ReadFile(otaPath("trial"))
	if err != nil {
		return 0, 0, false
	}
	_, err = fmt.Sscanf(string(text), "version=%d boots=%d", &version, &boots)
	if err != nil {
		// Unreadable (trial is replaced whole, so only damage does this):
		// the version that runs is on its last trial boot.
		return -1, trialBoots - 1, true
	}
	return version, boots, true
}

// writeTrial replaces trial whole: written and fsynced under trial.tmp,
// renamed over it, the folder fsynced.
func writeTrial(version, boots int) error {
	if err := writeSynced("trial.tmp", []byte(fmt.Sprintf("version=%d boots=%d\n", version, boots))); err != nil {
		return err
	}
	if err := os.Rename(otaPath("trial.tmp"), otaPath("trial")); err != nil {
		return err
	}
	return syncDir()
}

// recoverUpdate finishes or cleans up an update a cut interrupted: between
// the two renames (app.sha256 new, app old, app.new the new image) it
// renames app.new to app; otherwise it removes app.new, app.new.sha256 and
// temporary links.
func recoverUpdate() {
	if _, err := os.Stat(otaPath("app.new")); err == nil {
		if _, _, err := checked("app", "app.sha256"); err != nil {
			if v, _, err := checked("app.new", "app.sha256"); err == nil {
				if os.Rename(otaPath("app.new"), otaPath("app")) == nil && syncDir() == nil {
					fmt.Printf("RECOVER rename version=%d\n", v)
				}
			}
		}
	}
	for _, stale := range []string{"app.new", "app.new.sha256", "app.tmp", "app.sha256.tmp", "app.bak.tmp", "app.bak.sha256.tmp", "trial.tmp"} {
		os.Remove(otaPath(stale))
	}
}

// rollback links the pair back from app.bak (the hash first: a cut in
// between leaves a mismatched app, which rolls back again) and removes
// trial; it returns the version restored.
func rollback(from int, reason string) int {
	to, _, err := checked("app.bak", "app.bak.sha256")
	if err != nil {
		otaFail(fmt.Sprintf("%s,bak-%s", reason, err))
	}
	if linkOver("app.bak.sha256", "app.sha256") != nil || linkOver("app.bak", "app") != nil || syncDir() != nil {
		otaFail("rollback-io")
	}
	os.Remove(otaPath("trial"))
	if syncDir() != nil {
		otaFail("rollback-io")
	}
	fmt.Printf("ROLLBACK from=%d to=%d reason=%s\n", from, to, reason)
	return to
}

// otaStart checks the storage and returns the version that runs, whether
// it is on trial and whether it is faulty.
func otaStart() (version int, onTrial, faulty bool) {
	recoverUpdate()
	current, faulty, bad := checked("app", "app.sha256")
	if tv, boots, ok := trialState(); ok {
		if tv == -1 {
			tv = current
		}
		switch {
		case bad != nil || tv != current:
			// Stale (a cut before the commit point) or the app is bad anyway.
			os.Remove(otaPath("trial"))
			syncDir()
		case boots+1 > trialBoots:
			current = rollback(current, "trial")
			_, faulty, _ = checked("app", "app.sha256")
			return current, false, faulty
		default:
			if writeTrial(current, boots+1) != nil {
				otaFail("trial-io")
			}
			fmt.Printf("TRIAL version=%d boot=%d of=%d\n", current, boots+1, trialBoots)
			onTrial = true
		}
	}
	if bad != nil {
		current = rollback(current, "app-"+bad.Error())
		_, faulty, _ = checked("app", "app.sha256")
		return current, false, faulty
	}
	return current, onTrial, faulty
}

// restart starts this program again, as the board's reboot into the new
// version: the same arguments and environment.
func restart() {
	err := syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	fmt.Printf("BRICKED reason=exec-%v\n", err)
	os.Exit(1)
}

// update writes version v (see the file's comment) and restarts.
func update(v int, faulty bool) {
	current, _, _ := checked("app", "app.sha256")
	image := payload(v, faulty)
	sum := hexSum(image)
	fail := func(reason string) {
		fmt.Printf("UPDATE failed version=%d reason=%s\n", v, reason)
	}
	fmt.Printf("UPDATE writing bytes=%d t_us=%d\n", len(image), nowUs())
	if writeSynced("app.new", image) != nil {
		fail("write")
		return
	}
	back, err := os.ReadFile(otaPath("app.new"))
	if err != nil || hexSum(back) != sum {
		fail("verify")
		return
	}
	fmt.Printf("VERIFY ok bytes=%d t_us=%d\n", len(back), nowUs())
	if writeSynced("app.new.sha256", []byte(sum+"\n")) != nil ||
		linkOver("app", "app.bak") != nil || linkOver("app.sha256", "app.bak.sha256") != nil ||
		syncDir() != nil || writeTrial(v, 0) != nil {
		fail("io")
		return
	}
	// The commit point: from here a start finds the new hash.
	if os.Rename(otaPath("app.new.sha256"), otaPath("app.sha256")) != nil || syncDir() != nil ||
		os.Rename(otaPath("app.new"), otaPath("app")) != nil || syncDir() != nil {
		fail("rename")
		return
	}
	fmt.Printf("UPDATE done version=%d from=%d t_us=%d\n", v, current, nowUs())
	restart()
}

// telemetry appends "t_us=T version=V seq=N" to telemetryPath every
// telemetryEvery, never fsynced; a failed write is dropped, as a logger
// would.
func telemetry(version int) {
	for seq := 0; ; seq++ {
		time.Sleep(telemetryEvery)
		f, err := os.OpenFile(telemetryPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			continue
		}
		fmt.Fprintf(f, "t_us=%d version=%d seq=%d\n", nowUs(), version, seq)
		f.Close()
	}
}

// ota is the mode: start, then commands on stdin until its end.
func ota() {
	version, onTrial, faulty := otaStart()
	if faulty {
		// The health check of a faulty version: it never gets to READY.
		fmt.Printf("HEALTH fail version=%d\n", version)
		restart()
	}
	t := nowUs()
	fmt.Printf("READY version=%d t_ms=%d t_us=%d\n", version, t/1000, t)
	if onTrial {
		if os.Remove(otaPath("trial")) != nil || syncDir() != nil {
			otaFail("commit-io")
		}
		fmt.Printf("COMMIT version=%d\n", version)
	}
	go telemetry(version)
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadString('\n')
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case fields[0] == "UPDATE" && len(fields) >= 2:
			v, perr := strconv.Atoi(fields[1])
			if perr != nil || v < 1 || (len(fields) > 2 && fields[2] != "faulty") {
				fmt.Println("ERR usage: UPDATE <version> [faulty]")
				break
			}
			update(v, len(fields) > 2)
		case fields[0] == "STATUS":
			bak, _, berr := checked("app.bak", "app.bak.sha256")
			bakText := strconv.Itoa(bak)
			if berr != nil {
				bakText = "-"
			}
			trial := "-"
			if tv, boots, ok := trialState(); ok {
				trial = fmt.Sprintf("%d:%d", tv, boots)
			}
			fmt.Printf("STATUS version=%d trial=%s bak=%s\n", version, trial, bakText)
		default:
			fmt.Printf("ERR unknown command: %s\n", strings.TrimSpace(line))
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			otaFail("stdin")
		}
	}
}
