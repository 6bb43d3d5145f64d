//! Helpers shared by the integration tests: run the real `lab` binary
//! against this repository's workspace.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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

/// Builds a workspace image for a board once per test binary and returns its path.
pub fn built_image(image: &str, board: &str) -> PathBuf {
    static LOCK: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _guard = LOCK
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = run(&["images", "build", image, "--board", board]);
    assert!(out.status.success(), "{}", text(&out));
    let file = match image {
        "cortex-m/hello" => "hello.elf",
        "cortex-m/echo" => "echo.elf",
        "cortex-m/fault" => "fault.elf",
        "cortex-m/debuggee" => "debuggee.elf",
        "cortex-m/user-fault" => "user-fault.elf",
        other => panic!("no known output for {other}"),
    };
    repo()
        .join("build/images")
        .join(board)
        .join(image)
        .join(file)
}

/// Writes `yaml` as a scenario file in `dir` and returns its path.
pub fn scenario(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Reads a JSON report.
pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).unwrap()
}

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

/// Waits up to `timeout` for `child` to end; `None` if it still runs.
pub fn wait_timeout(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends SIGINT (what Ctrl-C sends) to `child`.
pub fn ctrl_c(child: &std::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT is delivered");
}

/// QEMU paused at reset (`-S`) running the `debuggee` firmware, with its
/// gdbstub on a unix socket in a folder of its own; killed on drop.
pub struct HaltedQemu {
    /// The QEMU process.
    pub child: std::process::Child,
    /// QEMU's gdbstub socket.
    pub sock: PathBuf,
    /// The debuggee ELF.
    pub elf: PathBuf,
    _dir: tempfile::TempDir,
}

impl HaltedQemu {
    /// Starts QEMU on `board` with the debuggee's semihosting `args`.
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
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("qemu-system-arm runs");
        HaltedQemu {
            child,
            sock,
            elf,
            _dir: dir,
        }
    }

    /// QEMU's exit status, waiting up to `timeout`.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }
}

impl Drop for HaltedQemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `yaml` as scenario `name` in `dir`, runs it with a JSON report
/// and returns the exit code and the first result.
pub fn run_scenario(dir: &Path, name: &str, yaml: &str) -> (Option<i32>, serde_json::Value) {
    let file = scenario(dir, name, yaml);
    let json = dir.join(format!("{name}.json"));
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(json.exists(), "no report: {}", text(&out));
    (out.status.code(), report(&json)["results"][0].clone())
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
