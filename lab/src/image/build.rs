//! Builds images into `build/images/<board>/<image>/`, cached by the hash of
//! their inputs: the manifest, the board profile and every input file.
//!
//! A build never writes into the output folder that readers use. It runs in
//! a hidden folder of its own next to it (`.<image>.XXXXXXXX.build`); once
//! every output is complete, synced and recorded in the stamp (see
//! [`Stamp`]), that folder takes the old one's place in one atomic rename.
//! So a reader sees the previous build or the new one, whole, never a
//! half-written file, and a build that fails (a command, a timeout, a full
//! disk) leaves the previous build as it was and removes its own folder.
//! Builds of one image take turns through a lock file next to the output
//! folder (`<image>.lock`): two `lab` processes build it once, and the
//! second finds the first one's build in the cache.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::stamp::{STAMP, Stamp, hex};
use super::{BuildFailure, BuiltFiles, ImageError, ImageManifest, NoSpace};
use crate::board::BoardProfile;
use crate::durable::{self, Removal};

/// Name of the build log inside the output folder.
const LOG: &str = "build.log";
/// The suffix of a build's own folder, next to the output folder.
const STAGING: &str = ".build";
/// A build command that runs longer than this is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a command that ended may take to close its output (something it
/// left running may hold it open; the build does not wait for that).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of the commands' output is kept in memory, for error messages.
const TAIL_BYTES: usize = 16 * 1024;
/// The placeholder that expands to the board's compiler flags.
const CFLAGS: &str = "{board.cflags}";
/// The placeholder for the download cache that every build shares.
const DOWNLOADS: &str = "{downloads}";

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The bootable files.
    pub files: BuiltFiles,
    /// True when the cache was up to date and nothing ran.
    pub cached: bool,
    /// Why the cached build of these same inputs could not be used, when it
    /// was damaged (an output deleted, truncated or changed since, a stamp
    /// that does not read): it was built again.
    pub damaged: Option<String>,
    /// Time spent (hashing, and building when not cached).
    pub duration: Duration,
}

/// Builds images into a cache folder.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    root: PathBuf,
    downloads: PathBuf,
}

impl ImageBuilder {
    /// A builder whose outputs live below `root` (`build/images`). Builds
    /// share a download cache next to it (`build/downloads`), named in
    /// build commands by `{downloads}`; it is not part of the cache key.
    pub fn new(root: PathBuf) -> Self {
        let downloads = root.with_file_name("downloads");
        ImageBuilder { root, downloads }
    }

    /// The folder that holds `image` built for `board`.
    pub fn out_dir(&self, image: &ImageManifest, board: &BoardProfile) -> PathBuf {
        self.root.join(&board.name).join(&image.name)
    }

    /// The cache key of `image` built for `board`: the hash of everything
    /// the build reads (manifest, board profile, input files). An error when
    /// the image does not build for the board.
    pub fn cache_key(
        &self,
        image: &ImageManifest,
        board: &BoardProfile,
    ) -> Result<String, ImageError> {
        let firmware = Self::firmware(image, board)?;
        self.input_hash(image, board, firmware.as_ref().map(|(_, ld)| ld.as_str()))
    }

    /// The board's compiler flags and memory map, for firmware; `None` for
    /// a Linux image; an error when `image` cannot build for `board`.
    fn firmware(
        image: &ImageManifest,
        board: &BoardProfile,
    ) -> Result<Option<(Vec<String>, String)>, ImageError> {
        let unsupported = |reason: String| ImageError::Unsupported {
            image: image.name.clone(),
            board: board.name.clone(),
            reason,
        };
        if image.arch != board.arch {
            return Err(unsupported(format!(
                "the image is for {} and the board is {}",
                image.arch.as_str(),
                board.arch.as_str()
            )));
        }
        if image.needs_storage && board.nonvolatile().is_none() {
            return Err(unsupported(
                "the image keeps data in a nonvolatile region (`needs_storage`), and the board \
                 profile has no `kind: nvm` region"
                    .into(),
            ));
        }
        // Only firmware builds need the board's compiler flags and memory
        // map; a Linux image builds for any board of its architecture.
        match (board.firmware_cflags(), board.memory_ld()) {
            (Some(cflags), Some(memory_ld)) => Ok(Some((cflags, memory_ld))),
            _ if image.build.iter().flatten().any(|a| a == CFLAGS) => Err(unsupported(format!(
                "the build uses `{CFLAGS}` and the board profile has no `firmware` layout"
            ))),
            _ => Ok(None),
        }
    }

    /// Builds `image` for `board` unless the cached build has the same inputs
    /// and is intact.
    pub fn build(
        &self,
        image: &ImageManifest,
        board: &BoardProfile,
    ) -> Result<BuildOutcome, ImageError> {
        let started = Instant::now();
        let firmware = Self::firmware(image, board)?;
        let (cflags, memory_ld) = match &firmware {
            Some((cflags, memory_ld)) => (cflags.as_slice(), Some(memory_ld.as_str())),
            None => (&[][..], None),
        };

        let require = |files: bool| {
            image
                .requires
                .iter()
                .filter(|tool| tool.file.is_some() == files)
                .try_for_each(|tool| {
                    tool.locate()
                        .map(drop)
                        .map_err(|source| ImageError::MissingTool {
                            image: image.name.clone(),
                            source,
                        })
                })
        };
        // Required files may be inputs: check them before hashing, so a
        // missing package is named as such and not as an unmatched glob.
        require(true)?;
        let out = self.out_dir(image, board);
        let files = image.built_files(&out);
        let hash = self.input_hash(image, board, memory_ld)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ImageError::Io { path, source }
        };
        let folder = out.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(folder).map_err(io(folder))?;
        // Concurrent lab processes building the same image take turns; the
        // second one then finds the first one's build in the cache.
        let lock_path = sibling(&out, ".lock");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let damaged = match Stamp::read(&out) {
            Ok(Some(stamp)) if stamp.inputs == hash => match stamp.check(&out, &files) {
                Ok(()) => {
                    return Ok(BuildOutcome {
                        files,
                        cached: true,
                        damaged: None,
                        duration: started.elapsed(),
                    });
                }
                Err(reason) => Some(reason),
            },
            // No build yet, one that never finished, or one of other inputs.
            Ok(_) => None,
            Err(reason) => Some(reason),
        };

        // Build commands are needed only when something is to be built.
        require(false)?;
        let attempt = Attempt::start(image, board, &out)?;
        self.build_in(&attempt, &hash, cflags, memory_ld)?;
        attempt.publish()?;
        Ok(BuildOutcome {
            files,
            cached: false,
            damaged,
            duration: started.elapsed(),
        })
    }

    /// Runs the build in the attempt's own folder and stamps it.
    fn build_in(
        &self,
        attempt: &Attempt,
        hash: &str,
        cflags: &[String],
        memory_ld: Option<&str>,
    ) -> Result<(), ImageError> {
        let (image, dir) = (attempt.image, attempt.dir());
        if let Some(memory_ld) = memory_ld {
            let path = dir.join("memory.ld");
            fs::write(&path, memory_ld).map_err(|e| attempt.io(&path, e))?;
        }
        if image.build.iter().flatten().any(|a| a.contains(DOWNLOADS)) {
            fs::create_dir_all(&self.downloads).map_err(|e| attempt.io(&self.downloads, e))?;
        }
        let output =
            Output::create(attempt.log.clone()).map_err(|e| attempt.io(&attempt.log, e))?;
        let output = Arc::new(Mutex::new(output));
        for argv in &image.build {
            let args = expand(argv, dir, &attempt.out, &self.downloads, cflags);
            run(attempt, &args, &output)?;
        }
        let mut output = Arc::try_unwrap(output)
            .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
            // A process a command left running still writes to it: leave it
            // that copy and carry on with what arrived.
            .unwrap_or_else(|shared| lock(&shared).take());
        let built = image.built_files(dir);
        if let Some(missing) = built.missing() {
            return Err(ImageError::BuildFailed(Box::new(BuildFailure {
                image: image.name.clone(),
                board: attempt.board.name.clone(),
                command: image.build.last().map(|a| a[0].clone()).unwrap_or_default(),
                status: format!(
                    "succeeded but did not produce {}",
                    attempt.shown(missing).display()
                ),
                output: String::new(),
                log: attempt.log.clone(),
            })));
        }
        // Every command succeeded, yet the disk filled up under them: one
        // that ignored a failed write would leave a short file behind.
        if output.log_hit_full_disk() {
            return Err(attempt.no_space(attempt.log.clone(), None));
        }
        let stamp = Stamp::seal(hash, dir, &built).map_err(|e| attempt.rebase(e))?;
        // The log goes with the build. It is no output: it need not be synced.
        output.close();
        let _ = fs::rename(&attempt.log, dir.join(LOG));
        let stamp_path = dir.join(STAMP);
        write_synced(&stamp_path, stamp.to_text().as_bytes())
            .and_then(|()| durable::sync_dir(dir))
            .map_err(|e| attempt.io(&stamp_path, e))
    }

    /// The cache key: manifest, board profile, linker memory map and every
    /// input file's relative path and contents.
    fn input_hash(
        &self,
        image: &ImageManifest,
        board: &BoardProfile,
        memory_ld: Option<&str>,
    ) -> Result<String, ImageError> {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"lab-image-v1");
        field(image.text.as_bytes());
        field(board.yaml.as_bytes());
        field(memory_ld.unwrap_or_default().as_bytes());
        for file in image.input_files()? {
            let rel = file.strip_prefix(&image.dir).unwrap_or(&file);
            field(rel.to_string_lossy().as_bytes());
            let bytes = std::fs::read(&file).map_err(|source| ImageError::Io {
                path: file.clone(),
                source,
            })?;
            field(&bytes);
        }
        Ok(hex(&h.finalize()))
    }
}

/// One build of an image for a board: its own folder next to the output
/// folder, removed unless it is published, and its log.
struct Attempt<'a> {
    image: &'a ImageManifest,
    board: &'a BoardProfile,
    /// The output folder readers use.
    out: PathBuf,
    /// The folder that holds `out`.
    folder: PathBuf,
    /// This build's own folder, `{out}` in build commands.
    staging: Removal,
    /// The build log while the build runs (it moves into the build when it
    /// succeeds, and stays here for the error message when it fails).
    log: PathBuf,
}

impl<'a> Attempt<'a> {
    /// Creates the build's own folder next to `out`, first removing any that
    /// crashed builds left (the caller holds the image's lock).
    fn start(
        image: &'a ImageManifest,
        board: &'a BoardProfile,
        out: &Path,
    ) -> Result<Self, ImageError> {
        let folder = out.parent().unwrap_or(Path::new(".")).to_owned();
        let name = out.file_name().unwrap_or(OsStr::new("image"));
        remove_leftovers(&folder, name);
        let created = durable::create_unique(&folder, name, STAGING, |p| fs::create_dir(p));
        let (staging, ()) = created.map_err(|source| match source.kind() {
            io::ErrorKind::StorageFull => no_space(image, board, &folder, folder.clone(), None),
            _ => ImageError::Io {
                path: folder.clone(),
                source,
            },
        })?;
        Ok(Attempt {
            image,
            board,
            out: out.to_owned(),
            log: sibling(out, ".log"),
            staging: Removal::new(staging),
            folder,
        })
    }

    /// The build's own folder.
    fn dir(&self) -> &Path {
        self.staging.path()
    }

    /// Where `path`, inside the build's own folder, ends up: what the user
    /// is shown.
    fn shown(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(self.dir()) {
            Ok(rel) => self.out.join(rel),
            Err(_) => path.to_owned(),
        }
    }

    /// An I/O error on `path`: [`NoSpace`] when the disk is full.
    fn io(&self, path: &Path, source: io::Error) -> ImageError {
        if source.kind() == io::ErrorKind::StorageFull {
            return self.no_space(self.shown(path), None);
        }
        ImageError::Io {
            path: self.shown(path),
            source,
        }
    }

    /// [`Attempt::io`] for an error made elsewhere.
    fn rebase(&self, error: ImageError) -> ImageError {
        match error {
            ImageError::Io { path, source } => self.io(&path, source),
            other => other,
        }
    }

    /// The disk filled up writing `file` (shown to the user as is).
    fn no_space(&self, file: PathBuf, said: Option<String>) -> ImageError {
        no_space(self.image, self.board, &self.folder, file, said)
    }

    /// Puts the finished build where the output folder is, in one step
    /// (an atomic exchange on Linux): readers find the old build or the new
    /// one. The old one ends up under this build's name and goes with it.
    fn publish(self) -> Result<(), ImageError> {
        let Attempt {
            out,
            folder,
            staging,
            ..
        } = &self;
        let swapped = match fs::symlink_metadata(out) {
            Ok(_) => exchange(staging.path(), out),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(staging.path(), out),
            Err(e) => Err(e),
        };
        swapped.map_err(|e| self.io(out, e))?;
        // The rename is done; syncing the folder only hurries it to disk.
        let _ = durable::sync_dir(folder);
        Ok(())
    }
}

/// The disk that holds `folder` filled up while `file` was written.
fn no_space(
    image: &ImageManifest,
    board: &BoardProfile,
    folder: &Path,
    file: PathBuf,
    said: Option<String>,
) -> ImageError {
    ImageError::NoSpace(Box::new(NoSpace {
        image: image.name.clone(),
        board: board.name.clone(),
        file,
        said,
        free: NoSpace::free_in(folder),
        folder: folder.to_owned(),
    }))
}

/// Swaps the build in `new` with the one in `out` atomically
/// (`renameat2(RENAME_EXCHANGE)`), or in two renames where the file system
/// cannot.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exchange(new: &Path, out: &Path) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, new, AT_FDCWD, out, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => replace(new, out),
        Err(e) => Err(e.into()),
    }
}

/// Swaps the build in `new` with the one in `out` (see [`replace`]).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(new: &Path, out: &Path) -> io::Result<()> {
    replace(new, out)
}

/// The exchange in two renames, where there is no atomic one: the old build
/// moves aside, `new` takes its place, and the old one moves to `new`'s name.
/// In between there is no output folder at all, for a moment: a reader finds
/// nothing, never a mix of two builds.
fn replace(new: &Path, out: &Path) -> io::Result<()> {
    let mut aside = new.as_os_str().to_owned();
    aside.push(".old");
    let aside = PathBuf::from(aside);
    fs::rename(out, &aside)?;
    if let Err(e) = fs::rename(new, out) {
        // The old build back where it was, whole.
        let _ = fs::rename(&aside, out);
        return Err(e);
    }
    fs::rename(&aside, new)
}

/// Removes the folders of builds of this image that never finished (a
/// killed `lab`): hidden `.<name>.XXXXXXXX.build` (and `.build.old`) next to
/// the output folder.
fn remove_leftovers(folder: &Path, name: &OsStr) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    for entry in entries.flatten() {
        let file = entry.file_name();
        let leftover = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".old").or(Some(rest)))
            .and_then(|rest| rest.strip_suffix(STAGING))
            .is_some_and(|id| id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        if leftover {
            drop(Removal::new(entry.path()));
        }
    }
}

/// `out` with `suffix` added to its name: `hello` -> `hello.lock`.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.file_name().unwrap_or(OsStr::new("image")).to_owned();
    name.push(suffix);
    out.with_file_name(name)
}

/// Creates `path` with `contents` and syncs it.
fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Runs one build command in the image folder, its output going to `output`.
fn run(attempt: &Attempt, args: &[String], output: &Arc<Mutex<Output>>) -> Result<(), ImageError> {
    let failed = |status: String| {
        let output = lock(output);
        // A full disk is said as such, whatever the command made of it.
        let said = output.no_space_line();
        if said.is_some() || output.log_hit_full_disk() {
            let built = attempt.image.built_files(attempt.dir());
            let file = attempt.shown(built.missing().unwrap_or(built.primary()));
            let said = said.unwrap_or_else(|| status.clone());
            return attempt.no_space(file, Some(format!("`{}`: {said}", args[0])));
        }
        ImageError::BuildFailed(Box::new(BuildFailure {
            image: attempt.image.name.clone(),
            board: attempt.board.name.clone(),
            command: args[0].clone(),
            status,
            output: output.last_lines(20),
            log: attempt.log.clone(),
        }))
    };
    let (reader, writer) = io::pipe().map_err(|e| failed(format!("could not start: {e}")))?;
    let stderr = writer
        .try_clone()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    // The command (and with it this process's copies of the pipe's writing
    // end) is dropped at once: the output ends when the command's do.
    // In a process group of its own, so that a timeout ends the compilers
    // and linkers it started too; forked by the lab's spawner, so that it
    // dies with the lab process, whatever thread asked for it.
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(&args[0]);
    command
        .args(&args[1..])
        .current_dir(&attempt.image.dir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .process_group(0);
    let spawned = crate::child::spawn_std(command);
    let mut child = spawned.map_err(|e| failed(format!("could not start: {e}")))?;
    let ended = drain(reader, Arc::clone(output));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) if Instant::now() >= deadline => {
                let group = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                let _ = ended.recv_timeout(DRAIN_TIMEOUT);
                return Err(failed(format!("timed out after {COMMAND_TIMEOUT:?}")));
            }
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(failed(format!("could not be waited for: {e}"))),
        };
        let _ = ended.recv_timeout(DRAIN_TIMEOUT);
        return match status.success() {
            true => Ok(()),
            false => Err(failed(status.to_string())),
        };
    }
}

/// Copies what a command writes into `output`, on a thread of its own. The
/// receiver hears when the command's output has ended.
fn drain(mut reader: io::PipeReader, output: Arc<Mutex<Output>>) -> mpsc::Receiver<()> {
    let (done, ended) = mpsc::channel();
    let copy = move || {
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lock(&output).push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // Let go of the output before saying so: the builder takes it back.
        drop(output);
        let _ = done.send(());
    };
    if let Err(e) = std::thread::Builder::new()
        .name("image-build-output".into())
        .spawn(copy)
    {
        tracing::warn!("cannot read a build command's output: {e}");
    }
    ended
}

fn lock(output: &Mutex<Output>) -> std::sync::MutexGuard<'_, Output> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the build commands print: appended to the build log, with its end
/// kept in memory, so that an error can quote it even when the disk is too
/// full for the log.
#[derive(Debug, Default)]
struct Output {
    log: Option<File>,
    /// The first error writing the log, which then stops where it got to.
    log_error: Option<io::Error>,
    tail: Vec<u8>,
}

impl Output {
    fn create(path: PathBuf) -> io::Result<Self> {
        Ok(Output {
            log: Some(File::create(path)?),
            ..Output::default()
        })
    }

    fn push(&mut self, bytes: &[u8]) {
        if let Some(log) = &mut self.log
            && let Err(e) = log.write_all(bytes)
        {
            self.log_error = Some(e);
            self.log = None;
        }
        self.tail.extend_from_slice(bytes);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }

    /// Everything but the log file, which a straggling writer may still use.
    fn take(&mut self) -> Self {
        Output {
            log: None,
            log_error: self.log_error.take(),
            tail: std::mem::take(&mut self.tail),
        }
    }

    /// Closes the log file.
    fn close(&mut self) {
        self.log = None;
    }

    /// The last `n` lines of output.
    fn last_lines(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(&self.tail);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The last line that reports a full disk, as C (`strerror`), Python and
    /// Go programs word it.
    fn no_space_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.tail)
            .lines()
            .rev()
            .find(|l| l.to_ascii_lowercase().contains("no space left on device"))
            .map(|l| l.trim().to_owned())
    }

    /// True when the log itself could not be written for want of space.
    fn log_hit_full_disk(&self) -> bool {
        self.log_error
            .as_ref()
            .is_some_and(|e| e.kind() == io::ErrorKind::StorageFull)
    }
}

/// Substitutes `{out}` (the build's own folder) and `{downloads}`, and
/// expands a lone `{board.cflags}` into several arguments: the board's flags
/// and a `-ffile-prefix-map` that names `staging` as `out` in debug
/// information and `__FILE__`, so the ELF points at the files where they end
/// up and the same inputs give the same bytes.
fn expand(
    argv: &[String],
    staging: &Path,
    out: &Path,
    downloads: &Path,
    cflags: &[String],
) -> Vec<String> {
    let staging = staging.to_string_lossy();
    let downloads = downloads.to_string_lossy();
    let prefix_map = format!("-ffile-prefix-map={staging}={}", out.display());
    argv.iter()
        .flat_map(|arg| {
            if arg == CFLAGS {
                cflags.iter().cloned().chain([prefix_map.clone()]).collect()
            } else {
                vec![
                    arg.replace("{out}", &staging)
                        .replace(DOWNLOADS, &downloads),
                ]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::BoardCatalog;

    fn board(name: &str) -> BoardProfile {
        BoardCatalog::builtin().get(name).unwrap().unwrap().clone()
    }

    fn image(root: &Path, build: &str) -> ImageManifest {
        let dir = root.join("images/linux");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("init"), "#!/bin/sh\n").unwrap();
        let yaml = format!(
            "description: d\narch: aarch64\ninputs: [init]\nbuild: {build}\n\
             outputs: {{kernel: Image, dtbs: dtbs}}\n"
        );
        std::fs::write(dir.join("image.yaml"), yaml).unwrap();
        ImageManifest::load(&root.join("images"), &dir.join("image.yaml")).unwrap()
    }

    #[test]
    fn firmware_that_needs_storage_is_refused_on_a_board_without_a_nonvolatile_region() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("images/fw");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.c"), "int main(void) { return 0; }\n").unwrap();
        std::fs::write(
            dir.join("image.yaml"),
            "description: d\narch: armv7m\nneeds_storage: true\ninputs: [main.c]\n\
             build: [[touch, '{out}/fw.elf']]\noutput: fw.elf\n",
        )
        .unwrap();
        let image =
            ImageManifest::load(&root.path().join("images"), &dir.join("image.yaml")).unwrap();
        let builder = ImageBuilder::new(root.path().join("build/images"));
        let err = builder.build(&image, &board("netduinoplus2")).unwrap_err();
        assert!(
            matches!(err, ImageError::Unsupported { .. }) && err.to_string().contains("kind: nvm"),
            "{err}"
        );
        assert!(builder.build(&image, &board("mps2-an385")).is_ok());
    }

    #[test]
    fn a_linux_image_builds_for_a_board_without_firmware_and_then_is_cached() {
        let root = tempfile::tempdir().unwrap();
        let image = image(
            root.path(),
            "[[touch, '{out}/Image'], [mkdir, -p, '{out}/dtbs', '{downloads}/debs']]",
        );
        let builder = ImageBuilder::new(root.path().join("build/images"));
        let board = board("raspi3b");
        let first = builder.build(&image, &board).unwrap();
        assert!(!first.cached);
        let out = root.path().join("build/images/raspi3b/linux");
        assert_eq!(first.files.primary(), out.join("Image"));
        assert!(
            !out.join("memory.ld").exists(),
            "no firmware, no memory map"
        );
        assert!(root.path().join("build/downloads/debs").is_dir());
        assert!(builder.build(&image, &board).unwrap().cached);
    }

    #[test]
    fn a_failed_build_keeps_the_previous_one_and_its_log_stays_beside_it() {
        let root = tempfile::tempdir().unwrap();
        let builder = ImageBuilder::new(root.path().join("build/images"));
        let board = board("virt-a53");
        let good = image(
            root.path(),
            "[[touch, '{out}/Image'], [mkdir, '{out}/dtbs']]",
        );
        builder.build(&good, &board).unwrap();
        let out = builder.out_dir(&good, &board);
        let stamp = fs::read(out.join(STAMP)).unwrap();

        let bad = image(
            root.path(),
            "[[sh, -c, 'echo half > {out}/Image; echo oops; exit 3']]",
        );
        let err = builder.build(&bad, &board).unwrap_err();
        let ImageError::BuildFailed(failure) = &err else {
            panic!("{err}");
        };
        assert_eq!(failure.output, "oops");
        assert_eq!(failure.log, out.with_file_name("linux.log"));
        assert_eq!(fs::read_to_string(&failure.log).unwrap(), "oops\n");
        // The previous build, stamp and all, and nothing of the failed one.
        assert_eq!(fs::read(out.join(STAMP)).unwrap(), stamp);
        assert_eq!(fs::read(out.join("Image")).unwrap(), b"");
        let mut names: Vec<_> = fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["linux", "linux.lock", "linux.log"]);
        assert!(builder.build(&good, &board).unwrap().cached);
    }

    #[test]
    fn the_exchange_in_two_renames_swaps_the_builds() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join(".x.0000abcd.build");
        let out = dir.path().join("x");
        for (folder, text) in [(&new, "new"), (&out, "old")] {
            fs::create_dir(folder).unwrap();
            fs::write(folder.join("a"), text).unwrap();
            fs::write(folder.join(STAMP), text).unwrap();
        }
        replace(&new, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("a")).unwrap(), "new");
        assert_eq!(fs::read_to_string(out.join(STAMP)).unwrap(), "new");
        // The old build is under the new one's name, to be removed with it.
        assert_eq!(fs::read_to_string(new.join("a")).unwrap(), "old");
        assert_eq!(fs::read_to_string(new.join(STAMP)).unwrap(), "old");
    }

    #[test]
    fn only_this_images_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            ".x.0000abcd.build",
            ".x.0000abcd.build.old",
            ".x.y.0000abcd.build",
            ".x.0000abcz.build",
            "x",
            "x.lock",
        ];
        for name in names {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        remove_leftovers(dir.path(), OsStr::new("x"));
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".x.0000abcz.build", ".x.y.0000abcd.build", "x", "x.lock"]
        );
    }

    #[test]
    fn board_cflags_need_a_firmware_layout() {
        let root = tempfile::tempdir().unwrap();
        let image = image(root.path(), "[[cc, '{board.cflags}']]");
        let builder = ImageBuilder::new(root.path().join("build/images"));
        let err = builder.build(&image, &board("virt-a53")).unwrap_err();
        assert!(err.to_string().contains("no `firmware` layout"), "{err}");
    }

    #[test]
    fn cflags_expand_in_place_and_out_is_substituted() {
        let argv: Vec<String> = [
            "cc",
            "{board.cflags}",
            "-o",
            "{out}/a.elf",
            "-L{out}",
            "--cache={downloads}/debs",
        ]
        .map(String::from)
        .to_vec();
        let got = expand(
            &argv,
            Path::new("/b/.x.0000abcd.build"),
            Path::new("/b/x"),
            Path::new("/d"),
            &["-mthumb".into(), "-DX=1".into()],
        );
        assert_eq!(
            got,
            [
                "cc",
                "-mthumb",
                "-DX=1",
                "-ffile-prefix-map=/b/.x.0000abcd.build=/b/x",
                "-o",
                "/b/.x.0000abcd.build/a.elf",
                "-L/b/.x.0000abcd.build",
                "--cache=/d/debs"
            ]
        );
    }
}
