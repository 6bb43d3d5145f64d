//! Helpers shared by the integration tests and the benches: run the real
//! `lab` binary against this repository's workspace, write scenarios, read
//! reports, and watch the QEMU processes a run leaves.
//!
//! A test states what its scenario does and what must come back; the
//! helpers here do the rest:
//!
//! ```ignore
//! let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/hello")
//!     .step("boot: {}")
//!     .step("expect-exit: {code: 3, timeout: 5s}")
//!     .run(dir.path(), "wrong-exit.yaml");
//! assert_eq!(code, Some(1), "{r}");
//! ```

#![allow(dead_code)] // each test binary uses a different subset

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

// --- The workspace and the `lab` binary -------------------------------------

/// The repository root (the lab workspace).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// A `lab` command with the workspace set.
pub fn lab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.env("LAB_ROOT", repo()).env_remove("LAB_LOG");
    cmd
}

/// Runs `lab` with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    lab().args(args).output().expect("lab runs")
}

/// Output as text, stdout then stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `lab check` on `file`, which must refuse it (exit code 2), and
/// returns what it printed on stderr.
pub fn refused_by_check(file: &Path) -> String {
    let out = run(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// --- Images -----------------------------------------------------------------

/// Builds a workspace image for a board (or finds it in the image cache)
/// and returns its output folder. Builds within a test binary take turns.
pub fn built_image_dir(image: &str, board: &str) -> PathBuf {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    let _turn = LOCK
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let out = run(&["images", "build", image, "--board", board]);
    assert!(out.status.success(), "{}", text(&out));
    repo().join("build/images").join(board).join(image)
}

/// Builds a Cortex-M workspace image for a board and returns its ELF
/// (`cortex-m/NAME` builds `NAME.elf`).
pub fn built_image(image: &str, board: &str) -> PathBuf {
    let name = image
        .strip_prefix("cortex-m/")
        .unwrap_or_else(|| panic!("{image} is not a Cortex-M image with an ELF"));
    built_image_dir(image, board).join(format!("{name}.elf"))
}

/// Copies the ELF of Cortex-M image `image` for `board` into `dir` and
/// returns the copy's file name, for a scenario in `dir` to name: a QEMU
/// booting the copy is told apart from other tests' by its path.
pub fn copy_elf(dir: &Path, image: &str, board: &str) -> String {
    let elf = built_image(image, board);
    let name = elf.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(&elf, dir.join(&name)).unwrap();
    name
}

/// Builds `image` for `board`, builds it again and checks that the second
/// build came from the image cache; returns the image's output folder.
pub fn built_and_cached(image: &str, board: &str) -> PathBuf {
    let build = || run(&["images", "build", image, "--board", board]);
    let first = build();
    assert!(first.status.success(), "{}", text(&first));
    let second = build();
    assert!(second.status.success(), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.starts_with(&format!("cached {image}@{board}")),
        "{stdout}"
    );
    repo().join("build/images").join(board).join(image)
}

/// Builds the silent test firmware (never prints, never exits) into `dir`.
pub fn silent_elf(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/firmware");
    let elf = dir.join("silent.elf");
    let cc = Command::new("arm-none-eabi-gcc")
        .args(["-mcpu=cortex-m3", "-mthumb", "-nostdlib", "-O1", "-T"])
        .arg(fixtures.join("silent.ld"))
        .arg(fixtures.join("silent.c"))
        .arg("-o")
        .arg(&elf)
        .output()
        .expect("arm-none-eabi-gcc runs");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    elf
}

// --- Scenarios --------------------------------------------------------------

/// Writes `yaml` as a scenario file in `dir` and returns its path.
pub fn scenario(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A scenario's YAML, written a line at a time: `version`, `board` and
/// `image` first, then the settings given with [`with`](Self::with) in
/// order, then the steps.
#[derive(Debug, Clone)]
pub struct ScenarioYaml {
    board: String,
    image: String,
    settings: Vec<String>,
    steps: Vec<String>,
}

impl ScenarioYaml {
    /// A scenario on `board` booting the ELF at `elf` (a path relative to
    /// the scenario's folder or an absolute one).
    pub fn elf(board: &str, elf: impl AsRef<Path>) -> Self {
        Self::image(board, &format!("{{elf: {}}}", elf.as_ref().display()))
    }

    /// A scenario on `board` booting Cortex-M image `image`, built first
    /// and named by its ELF's path.
    pub fn built(board: &str, image: &str) -> Self {
        Self::elf(board, built_image(image, board))
    }

    /// A scenario on `board` naming workspace image `image` (the lab
    /// builds it if need be).
    pub fn image(board: &str, image: &str) -> Self {
        Self {
            board: board.to_owned(),
            image: image.to_owned(),
            settings: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Adds a top-level setting, YAML as written: `timeout: 2s`.
    pub fn with(mut self, setting: impl Into<String>) -> Self {
        self.settings.push(setting.into());
        self
    }

    /// Adds a step, YAML as written without its dash: `boot: {}`.
    pub fn step(mut self, step: impl Into<String>) -> Self {
        self.steps.push(step.into());
        self
    }

    /// Writes the scenario as `name` in `dir` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        scenario(dir, name, &self.to_string())
    }

    /// Writes the scenario as `name` in `dir`, runs it, and returns the exit
    /// code and the first result (see [`run_scenario`]).
    pub fn run(&self, dir: &Path, name: &str) -> (Option<i32>, Value) {
        run_scenario(dir, name, &self.to_string())
    }
}

impl fmt::Display for ScenarioYaml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "version: 1\nboard: {}\nimage: {}",
            self.board, self.image
        )?;
        for setting in &self.settings {
            writeln!(f, "{setting}")?;
        }
        writeln!(f, "steps:")?;
        for step in &self.steps {
            writeln!(f, "  - {step}")?;
        }
        Ok(())
    }
}

// --- Runs and their reports -------------------------------------------------

/// Reads a JSON report.
pub fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).unwrap()
}

/// A finished `lab run`: what it printed and the JSON report it wrote.
/// Displayed, it is the output, for assertion messages.
pub struct RunReport {
    /// The lab's exit status and output.
    pub out: Output,
    /// The whole JSON report.
    pub json: Value,
}

impl RunReport {
    /// The lab's exit code.
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// Every result, in the report's order.
    pub fn results(&self) -> &[Value] {
        self.json["results"].as_array().expect("a results array")
    }

    /// The first result.
    pub fn first(&self) -> &Value {
        &self.json["results"][0]
    }

    /// The result whose `key` is `value`, such as a scenario's or a
    /// variant's; panics showing the report if there is none.
    pub fn result_with(&self, key: &str, value: &str) -> &Value {
        self.results()
            .iter()
            .find(|r| r[key] == value)
            .unwrap_or_else(|| panic!("no result with {key} {value}: {}", self.json))
    }

    /// The `key` of every result, in order: `each("board")`.
    pub fn each(&self, key: &str) -> Vec<&str> {
        self.results()
            .iter()
            .map(|r| r[key].as_str().unwrap_or_else(|| panic!("no {key} in {r}")))
            .collect()
    }

    /// What the lab printed on stdout.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text(&self.out))
    }
}

/// Runs `lab run FILE ARGS` with a JSON report in `dir` (named after the
/// file) and returns the finished run; the report must have been written.
pub fn lab_run(dir: &Path, file: &Path, args: &[&str]) -> RunReport {
    lab_run_with(&mut lab(), dir, file, args)
}

/// [`lab_run`] with a `lab` command prepared by the caller, such as one
/// with an environment of its own.
pub fn lab_run_with(cmd: &mut Command, dir: &Path, file: &Path, args: &[&str]) -> RunReport {
    let name = file.file_name().expect("a scenario file").to_string_lossy();
    let json = dir.join(format!("{name}.json"));
    // A report left by an earlier run of the same file must not pass for this one's.
    let _ = std::fs::remove_file(&json);
    let out = cmd
        .arg("run")
        .arg(file)
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("lab runs");
    assert!(json.exists(), "no report: {}", text(&out));
    RunReport {
        json: report(&json),
        out,
    }
}

/// Writes `yaml` as scenario `name` in `dir`, runs it with a JSON report
/// and returns the exit code and the first result.
pub fn run_scenario(dir: &Path, name: &str, yaml: &str) -> (Option<i32>, Value) {
    let file = scenario(dir, name, yaml);
    let run = lab_run(dir, &file, &[]);
    (run.code(), run.first().clone())
}

/// Metric `name` of result `r`; panics showing the result if it has none.
pub fn metric(r: &Value, name: &str) -> f64 {
    r["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("metric {name} in {r}"))
}

/// The names of result `r`'s steps, in order.
pub fn step_names(r: &Value) -> Vec<&str> {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect()
}

/// The detail of step `index` (from 0) of result `r`, after checking that
/// the step is a `name` step.
pub fn step_detail<'r>(r: &'r Value, index: usize, name: &str) -> &'r Value {
    let step = &r["steps"][index];
    assert_eq!(step["step"], name, "{r}");
    &step["detail"]
}

/// The detail of the first `name` step of result `r`; panics showing the
/// result if it has none.
pub fn find_step_detail<'r>(r: &'r Value, name: &str) -> &'r Value {
    let step = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("a {name} step in {r}"));
    &step["detail"]
}

// --- Processes --------------------------------------------------------------

/// PIDs of live QEMU processes whose command line mentions `needle`.
pub fn qemu_processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        let zombie =
            std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        let qemu = cmdline.starts_with("qemu-system") || cmdline.contains("/qemu-system");
        if qemu && cmdline.contains(needle) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// The lab scratch folders (`lab-*`) in `tmp`, a lab's `TMPDIR`.
pub fn scratch_folders(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("lab-"))
        .collect()
}

/// Waits up to `timeout` for `child` to end; `None` if it still runs.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for `ready`; panics with `what` if it never holds.
pub fn wait_until(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT (what Ctrl-C sends) to `child`.
pub fn ctrl_c(child: &Child) {
    signal(child, nix::sys::signal::Signal::SIGINT);
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    use nix::unistd::Pid;
    nix::sys::signal::kill(Pid::from_raw(child.id() as i32), signal)
        .unwrap_or_else(|e| panic!("{signal} is not delivered: {e}"));
}

// --- A halted QEMU ----------------------------------------------------------

/// QEMU paused at reset (`-S`) running the `debuggee` firmware, with its
/// gdbstub on a unix socket in a folder of its own; killed on drop.
pub struct HaltedQemu {
    /// The QEMU process.
    pub child: Child,
    /// QEMU's gdbstub socket.
    pub sock: PathBuf,
    /// The debuggee ELF.
    pub elf: PathBuf,
    _dir: tempfile::TempDir,
}

impl HaltedQemu {
    /// Starts QEMU on `board` with the debuggee's semihosting `args`, and
    /// returns once its gdbstub socket is there.
    pub fn start(board: &str, args: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;
        let elf = built_image("cortex-m/debuggee", board);
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gdb.sock");
        let mut semihosting = String::from("enable=on,target=native,arg=debuggee.elf");
        for a in args {
            semihosting.push_str(",arg=");
            semihosting.push_str(a);
        }
        let child = Command::new("qemu-system-arm")
            .args([
                "-M",
                board,
                "-nodefaults",
                "-display",
                "none",
                "-monitor",
                "none",
            ])
            .arg("-kernel")
            .arg(&elf)
            .args(["-semihosting-config", &semihosting, "-S", "-chardev"])
            .arg(format!(
                "socket,id=gdb0,path={},server=on,wait=off",
                sock.display()
            ))
            .args(["-gdb", "chardev:gdb0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("qemu-system-arm runs");
        let qemu = HaltedQemu {
            child,
            sock,
            elf,
            _dir: dir,
        };
        wait_until(Duration::from_secs(5), "QEMU's gdb socket appears", || {
            qemu.sock.exists()
        });
        qemu
    }

    /// QEMU's exit status, waiting up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }
}

impl Drop for HaltedQemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tells the person running the tests that a test did not run and why.
/// Written to stderr directly, past the test harness's capture of `eprintln!`,
/// so that a skip is seen and never passes for a pass.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\nskipped {test}: {reason}");
}

/// A tmpfs mounted on a folder for the length of a test: a real file system
/// that fills up (ENOSPC) or refuses writes (`ro`, EROFS even for root).
/// Unmounted on drop.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on `dir` with `mount(8)`, `ro` if
    /// `read_only`. The error says why it cannot (not root, no mount
    /// permission in a container) for [`skip`].
    pub fn mount(dir: &Path, size: u64, read_only: bool) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut options = format!("size={size},mode=0755");
        if read_only {
            options.push_str(",ro");
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "lab-test"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount(8): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (root and CAP_SYS_ADMIN are needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_owned(),
        })
    }

    /// Bytes that can still be written.
    pub fn free(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.dir).expect("statvfs on the tmpfs");
        stat.blocks_available() as u64 * stat.fragment_size() as u64
    }

    /// Writes a file `name` of zeros that leaves only `leave` bytes free (to
    /// the page) and returns its path.
    pub fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let path = self.dir.join(name);
        let size = self.free().saturating_sub(leave);
        std::fs::write(&path, vec![0u8; size as usize]).expect("the filler fits");
        assert!(
            self.free() <= leave,
            "{} bytes free, wanted {leave}",
            self.free()
        );
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process of a failed test may still have a file open there.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The names in `dir`, sorted, hidden ones included.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A lab workspace of its own in a temporary folder, for tests that damage
/// the build cache or fill its disk: this repository's board profiles, and
/// copies of the image folders a test asks for (so it may edit their inputs).
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// A workspace with copies of `images` (paths below `images/`).
    pub fn with_images(images: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(repo().join("qemu-configs"), dir.path().join("qemu-configs"))
            .unwrap();
        for image in images {
            copy_tree(
                &repo().join("images").join(image),
                &dir.path().join("images").join(image),
            );
        }
        Workspace { dir }
    }

    /// The workspace folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `yaml` as the manifest of image `name` (a folder below `images/`).
    pub fn add_image(&self, name: &str, yaml: &str) {
        let dir = self.root().join("images").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("image.yaml"), yaml).unwrap();
    }

    /// A `lab` command in this workspace.
    pub fn lab(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
        cmd.env("LAB_ROOT", self.root()).env_remove("LAB_LOG");
        cmd
    }

    /// Runs `lab` with `args` in this workspace.
    pub fn run(&self, args: &[&str]) -> Output {
        self.lab().args(args).output().expect("lab runs")
    }

    /// The folder that holds `image` built for `board`.
    pub fn out(&self, board: &str, image: &str) -> PathBuf {
        self.root().join("build/images").join(board).join(image)
    }
}

/// Copies the folder `from` to `to`, recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
