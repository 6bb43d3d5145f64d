//! Record and replay end to end: `lab run --record` against real QEMU and
//! the project's firmware, then the recording replayed by `lab debug
//! --replay` under real gdb-multiarch and by `lab run --replay` with the
//! reverse steps, each in a process of its own.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ScenarioYaml, copy_elf, find_step_detail, lab, lab_run, qemu_processes_with};

/// Records `yaml` (a scenario written in `dir`) with `record` (`--record`
/// or `--record=failed`); returns the run's exit code and its result.
fn record(
    dir: &Path,
    scenario: &ScenarioYaml,
    name: &str,
    flag: &str,
) -> (Option<i32>, serde_json::Value) {
    let file = scenario.write(dir, name);
    let ran = lab_run(dir, &file, &[flag]);
    (ran.code(), ran.first().clone())
}

/// The recording a result names; it must be a folder with a manifest.
fn recording_of(result: &serde_json::Value) -> PathBuf {
    let folder = PathBuf::from(result["recording"].as_str().unwrap_or_else(|| {
        panic!("the result names no recording: {result}");
    }));
    assert!(
        folder.join("manifest.json").is_file(),
        "{}",
        folder.display()
    );
    folder
}

/// `lab debug --replay FOLDER`, killed on drop.
struct Replay {
    lab: Child,
    addr: String,
}

impl Replay {
    /// Starts it and reads the gdb line it prints.
    fn start(folder: &Path) -> Self {
        let mut lab = lab()
            .args(["debug", "--replay"])
            .arg(folder)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(lab.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if Instant::now() > deadline || stdout.read_line(&mut line).unwrap() == 0 {
                let _ = lab.kill();
                panic!("lab debug --replay printed no gdb line");
            }
            if let Some(rest) = line.trim().strip_prefix("gdb-multiarch ") {
                break rest
                    .split("target remote ")
                    .nth(1)
                    .unwrap()
                    .trim_end_matches('\'')
                    .to_owned();
            }
        };
        // The rest of its output (the replayed console) is not read.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Replay { lab, addr }
    }

    /// Runs gdb-multiarch in batch mode with `elf` against the replay.
    fn gdb(&self, elf: &Path, commands: &[&str]) -> String {
        let mut gdb = Command::new("gdb-multiarch");
        gdb.args([
            "-nx",
            "-batch",
            "-ex",
            &format!("target remote {}", self.addr),
        ]);
        for command in commands {
            gdb.args(["-ex", command]);
        }
        let out = gdb.arg(elf).output().expect("gdb-multiarch runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        common::ctrl_c(&self.lab);
        if common::wait_timeout(&mut self.lab, Duration::from_secs(10)).is_none() {
            let _ = self.lab.kill();
        }
    }
}

/// What gdb printed for each `info registers pc`, in order: `<fault_undef>`.
fn pcs(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("pc "))
        .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn a_replayed_fault_steps_back_to_the_instruction_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let elf = copy_elf(dir.path(), "cortex-m/fault", "mps2-an385");
    let scenario = ScenarioYaml::elf("mps2-an385", &elf)
        .with("args: [undef]")
        .with("clock: virtual")
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step("expect-exit: {code: 70, timeout: 5s}");
    let (code, r) = record(dir.path(), &scenario, "undef.yaml", "--record");
    assert_eq!(code, Some(0), "{r}");
    let folder = recording_of(&r);
    let recorded_elf = folder.join(&elf);

    let replay = Replay::start(&folder);
    let out = replay.gdb(
        &recorded_elf,
        &[
            "break HardFault_Handler",
            "continue",
            "info registers pc",
            "reverse-stepi",
            "info registers pc",
            "reverse-stepi",
            "info registers pc",
            "x/i $pc",
        ],
    );
    assert!(out.contains("Breakpoint 1, HardFault_Handler"), "{out}");
    let pcs = pcs(&out);
    assert_eq!(pcs.len(), 3, "{out}");
    assert_eq!(pcs[0], "<HardFault_Handler>", "{out}");
    // One instruction back: the faulting `udf` itself; one more: the call
    // in main that led to it.
    assert_eq!(pcs[1], "<fault_undef>", "{out}");
    assert!(pcs[2].starts_with("<main+"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("=> ") && l.contains("bl") && l.contains("<fault_undef>")),
        "{out}"
    );
    drop(replay);
    assert!(qemu_processes_with(recorded_elf.to_str().unwrap()).is_empty());
}

#[test]
fn a_watchpoint_and_reverse_continue_find_the_last_write() {
    let dir = tempfile::tempdir().unwrap();
    let elf = copy_elf(dir.path(), "cortex-m/debuggee", "mps2-an385");
    let scenario = ScenarioYaml::elf("mps2-an385", &elf)
        .with("clock: virtual")
        .step("boot: {}")
        .step("wait-serial: {match: 'DONE code=0', timeout: 5s}")
        .step("expect-exit: {code: 0, timeout: 5s}");
    let (code, r) = record(dir.path(), &scenario, "debuggee.yaml", "--record");
    assert_eq!(code, Some(0), "{r}");
    let folder = recording_of(&r);

    let replay = Replay::start(&folder);
    let out = replay.gdb(
        &folder.join(&elf),
        &[
            // After the work: main prints DONE.
            "break rt_printf",
            "continue",
            "print lab_counter",
            "watch lab_counter",
            "reverse-continue",
            "info registers pc",
            "print lab_counter",
            "bt 1",
        ],
    );
    // work(1..3) adds 1, 5 and 12: the last write leaves 18, in work(3).
    assert!(out.contains("$1 = 18"), "{out}");
    let pcs = pcs(&out);
    assert_eq!(pcs.len(), 1, "{out}");
    assert!(pcs[0].starts_with("<work+"), "{out}");
    assert!(out.contains("$2 = 18"), "{out}");
    assert!(out.contains("#0  work (n=n@entry=3)"), "{out}");
}

#[test]
fn a_failed_run_recorded_in_one_process_replays_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let elf = copy_elf(dir.path(), "cortex-m/fault", "mps2-an385");
    // A run that fails (the fault exits 70) and one that passes, both under
    // --record=failed: only the failure keeps its recording.
    let fails = ScenarioYaml::elf("mps2-an385", &elf)
        .with("name: undef-fails")
        .with("args: [undef]")
        .with("clock: virtual")
        .step("boot: {}")
        .step("expect-exit: {code: 0, timeout: 5s}");
    let (code, r) = record(dir.path(), &fails, "fails.yaml", "--record=failed");
    assert_eq!(code, Some(1), "{r}");
    let folder = recording_of(&r);
    assert!(
        folder.starts_with(dir.path().join("fails.yaml.recordings")),
        "{}",
        folder.display()
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["status"], "failed", "{manifest}");
    assert_eq!(manifest["board"], "mps2-an385");
    assert_eq!(manifest["args"], serde_json::json!(["undef"]));
    assert!(
        manifest["image"].as_str().unwrap().ends_with("fault.elf"),
        "{manifest}"
    );
    assert_eq!(manifest["files"][0]["path"], "fault.elf", "{manifest}");
    let command = std::fs::read_to_string(folder.join("qemu-command.json")).unwrap();
    assert!(command.contains("rr=record"), "{command}");

    let passes = ScenarioYaml::elf("mps2-an385", &elf)
        .with("name: undef-passes")
        .with("args: [undef]")
        .with("clock: virtual")
        .step("boot: {}")
        .step("expect-exit: {code: 70, timeout: 5s}");
    let (code, r) = record(dir.path(), &passes, "passes.yaml", "--record=failed");
    assert_eq!(code, Some(0), "{r}");
    assert!(r.get("recording").is_none(), "{r}");
    assert!(
        !dir.path()
            .join("passes.yaml.recordings/undef-passes-1")
            .exists()
    );

    // Another process replays it, the reverse steps on the lab's debugger.
    let steps = ScenarioYaml::elf("mps2-an385", &elf)
        .with("clock: virtual")
        .step("boot: {halted: true}")
        .step("attach-debugger: {timeout: 5s}")
        .step("break: HardFault_Handler")
        .step("continue: {timeout: 5s, stop-at: HardFault_Handler}")
        .step("reverse-step: {}")
        .step("reverse-step: {count: 1}")
        .step("reverse-continue: {timeout: 5s}");
    let file = steps.write(dir.path(), "back.yaml");
    let ran = lab_run(dir.path(), &file, &["--replay", folder.to_str().unwrap()]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let r = ran.first();
    let steps = r["steps"].as_array().unwrap();
    let detail = |i: usize| &steps[i]["detail"];
    assert_eq!(detail(4)["function"], "fault_undef", "{r}");
    assert_eq!(detail(5)["function"], "main", "{r}");
    // Back to the start of the recording: no breakpoint before the fault.
    assert_eq!(detail(6)["function"], "Reset_Handler", "{r}");
    assert_eq!(
        find_step_detail(r, "continue")["function"],
        "HardFault_Handler"
    );
}

#[test]
fn what_cannot_be_recorded_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let elf = copy_elf(dir.path(), "cortex-m/hello", "mps2-an385");
    // The scenario's key: refused where it is written.
    let file = ScenarioYaml::elf("mps2-an385", &elf)
        .with("record: failed")
        .step("boot: {}")
        .write(dir.path(), "wall.yaml");
    let out = lab().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wall.yaml:"), "{stderr}");
    assert!(
        stderr.contains("recording needs `clock: virtual`"),
        "{stderr}"
    );
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("record:"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("wall.yaml:{line}:")), "{stderr}");
    // The flag: refused naming the flag and the job.
    let file = ScenarioYaml::elf("mps2-an385", &elf)
        .step("boot: {}")
        .write(dir.path(), "flag.yaml");
    let out = lab()
        .arg("run")
        .arg(&file)
        .arg("--record")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--record: flag#1"), "{stderr}");
    assert!(stderr.contains("clock: virtual"), "{stderr}");
}
