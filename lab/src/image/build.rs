//! Builds images into `build/images/<board>/<image>/`, cached by the hash of
//! their inputs: the manifest, the board profile and every input file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{BuildFailure, BuiltFiles, ImageError, ImageManifest};
use crate::board::BoardProfile;

/// Name of the file that records the inputs' hash next to a built image.
const STAMP: &str = ".inputs-sha256";
/// Name of the build log inside the output folder.
const LOG: &str = "build.log";
/// A build command that runs longer than this is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
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

    /// Builds `image` for `board` unless the cached build has the same inputs.
    pub fn build(
        &self,
        image: &ImageManifest,
        board: &BoardProfile,
    ) -> Result<BuildOutcome, ImageError> {
        let started = Instant::now();
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
        // Only firmware builds need the board's compiler flags and memory
        // map; a Linux image builds for any board of its architecture.
        let firmware = match (board.firmware_cflags(), board.memory_ld()) {
            (Some(cflags), Some(memory_ld)) => Some((cflags, memory_ld)),
            _ if image.build.iter().flatten().any(|a| a == CFLAGS) => {
                return Err(unsupported(format!(
                    "the build uses `{CFLAGS}` and the board profile has no `firmware` layout"
                )));
            }
            _ => None,
        };
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
        // Concurrent lab processes building the same image take turns; the
        // second one then finds the first one's build in the cache.
        let lock_path = out.with_extension("lock");
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let stamp = out.join(STAMP);
        if files.missing().is_none()
            && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == hash)
        {
            return Ok(BuildOutcome {
                files,
                cached: true,
                duration: started.elapsed(),
            });
        }

        // Build commands are needed only when something is to be built.
        require(false)?;
        // A stale or half-written build must never be mistaken for a good one.
        let _ = std::fs::remove_file(&stamp);
        std::fs::create_dir_all(&out).map_err(io(&out))?;
        if let Some(memory_ld) = memory_ld {
            std::fs::write(out.join("memory.ld"), memory_ld).map_err(io(&out))?;
        }
        if image.build.iter().flatten().any(|a| a.contains(DOWNLOADS)) {
            std::fs::create_dir_all(&self.downloads).map_err(io(&self.downloads))?;
        }
        let log_path = out.join(LOG);
        let log = File::create(&log_path).map_err(io(&log_path))?;
        for argv in &image.build {
            let args = expand(argv, &out, &self.downloads, cflags);
            self.run(image, board, &args, &log, &log_path)?;
        }
        if let Some(missing) = files.missing() {
            return Err(ImageError::BuildFailed(Box::new(BuildFailure {
                image: image.name.clone(),
                board: board.name.clone(),
                command: image.build.last().map(|a| a[0].clone()).unwrap_or_default(),
                status: format!("succeeded but did not produce {}", missing.display()),
                output: String::new(),
                log: log_path,
            })));
        }
        std::fs::write(&stamp, &hash).map_err(io(&stamp))?;
        Ok(BuildOutcome {
            files,
            cached: false,
            duration: started.elapsed(),
        })
    }

    fn run(
        &self,
        image: &ImageManifest,
        board: &BoardProfile,
        args: &[String],
        log: &File,
        log_path: &Path,
    ) -> Result<(), ImageError> {
        let failed = |status: String| {
            ImageError::BuildFailed(Box::new(BuildFailure {
                image: image.name.clone(),
                board: board.name.clone(),
                command: args[0].clone(),
                status,
                output: tail(log_path, 20),
                log: log_path.to_owned(),
            }))
        };
        let clone = |f: &File| {
            f.try_clone().map_err(|source| ImageError::Io {
                path: log_path.to_owned(),
                source,
            })
        };
        let mut child = Command::new(&args[0])
            .args(&args[1..])
            .current_dir(&image.dir)
            .stdin(Stdio::null())
            .stdout(clone(log)?)
            .stderr(clone(log)?)
            .spawn()
            .map_err(|e| failed(format!("could not start: {e}")))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(failed(status.to_string())),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(failed(format!("timed out after {COMMAND_TIMEOUT:?}")));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(failed(format!("could not be waited for: {e}"))),
            }
        }
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
        let profile = std::fs::read(&board.source).map_err(|source| ImageError::Io {
            path: board.source.clone(),
            source,
        })?;
        field(&profile);
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
        Ok(h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>())
    }
}

/// Substitutes `{out}` and `{downloads}` and expands a lone `{board.cflags}`
/// into several arguments.
fn expand(argv: &[String], out: &Path, downloads: &Path, cflags: &[String]) -> Vec<String> {
    let out = out.to_string_lossy();
    let downloads = downloads.to_string_lossy();
    argv.iter()
        .flat_map(|arg| {
            if arg == CFLAGS {
                cflags.to_vec()
            } else {
                vec![arg.replace("{out}", &out).replace(DOWNLOADS, &downloads)]
            }
        })
        .collect()
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::BoardCatalog;

    fn board(name: &str) -> BoardProfile {
        BoardCatalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs"))
            .unwrap()
            .get(name)
            .unwrap()
            .clone()
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
            Path::new("/b"),
            Path::new("/d"),
            &["-mthumb".into(), "-DX=1".into()],
        );
        assert_eq!(
            got,
            [
                "cc",
                "-mthumb",
                "-DX=1",
                "-o",
                "/b/a.elf",
                "-L/b",
                "--cache=/d/debs"
            ]
        );
    }
}
