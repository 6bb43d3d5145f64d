//! The stamp of a finished build (`.inputs-sha256` in its output folder):
//! the inputs' hash, then each output file's size, modification time and
//! SHA-256.
//!
//! A build writes its stamp last, once every output is complete and synced,
//! so a folder with a valid stamp holds a complete build. Checking the stamp
//! before a cached build is used finds an output deleted, truncated or
//! rewritten since: sizes and modification times cost one `stat` per file;
//! a file whose time changed (a `touch`, a cache restored from an archive)
//! is hashed again and passes if its contents are the same.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::{BuiltFiles, ImageError};

/// The stamp's file name inside the output folder.
pub(super) const STAMP: &str = ".inputs-sha256";
/// The first line of a stamp in this format.
const HEADER: &str = "lab-image-stamp 2";

/// What a finished build recorded about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    /// The cache key the build was made from.
    pub inputs: String,
    /// Every output file, by its path relative to the output folder.
    files: Vec<Record>,
}

/// One output file as the build left it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    /// Relative to the output folder, with `/` between components.
    path: String,
    size: u64,
    /// Nanoseconds since the Unix epoch (0 for earlier times).
    mtime_ns: u128,
    sha256: String,
}

impl Stamp {
    /// Records every output of the build in `out`: hashes each file, syncs
    /// it and the folders that hold it, so that the stamp written after
    /// this describes files that are on disk.
    pub(super) fn seal(inputs: &str, out: &Path, outputs: &BuiltFiles) -> Result<Self, ImageError> {
        let mut files = Vec::new();
        for path in output_files(outputs)? {
            let io = |source| ImageError::Io {
                path: path.clone(),
                source,
            };
            let mut file = File::open(&path).map_err(io)?;
            let sha256 = hash_reader(&mut file).map_err(io)?;
            file.sync_all().map_err(io)?;
            let meta = file.metadata().map_err(io)?;
            files.push(Record {
                path: relative(&path, out),
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                sha256,
            });
            // The file's own name, in every folder between it and `out`.
            for dir in path.ancestors().skip(1).take_while(|d| d.starts_with(out)) {
                crate::durable::sync_dir(dir).map_err(|source| ImageError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
        }
        Ok(Stamp {
            inputs: inputs.to_owned(),
            files,
        })
    }

    /// Reads the stamp in `out`: `Ok(None)` when there is none (no build,
    /// one that never finished, or one by an older lab that recorded only the
    /// inputs' hash), `Err` with the reason when it is damaged.
    pub(super) fn read(out: &Path) -> Result<Option<Self>, String> {
        match std::fs::read(out.join(STAMP)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) if is_sha256(text.trim_end()) => Ok(None),
                Ok(text) => Self::parse(&text).map(Some),
                Err(_) => Err("its stamp is not text".to_owned()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("its stamp cannot be read: {e}")),
        }
    }

    /// The stamp's text: the header, `inputs HASH`, then one line
    /// `SIZE MTIME_NS SHA256 PATH` per file.
    pub(super) fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\ninputs {}\n", self.inputs);
        for r in &self.files {
            text.push_str(&format!(
                "{} {} {} {}\n",
                r.size, r.mtime_ns, r.sha256, r.path
            ));
        }
        text
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("its stamp is damaged".to_owned());
        }
        let damaged = |n: usize| format!("its stamp is damaged (line {n})");
        let inputs = lines
            .next()
            .and_then(|l| l.strip_prefix("inputs "))
            .filter(|h| is_sha256(h))
            .ok_or_else(|| damaged(2))?
            .to_owned();
        let mut files = Vec::new();
        for (n, line) in lines.enumerate() {
            let mut fields = line.splitn(4, ' ');
            let mut next = || fields.next().ok_or_else(|| damaged(n + 3));
            let size = next()?.parse().map_err(|_| damaged(n + 3))?;
            let mtime_ns = next()?.parse().map_err(|_| damaged(n + 3))?;
            let sha256 = next()?.to_owned();
            let path = next()?.to_owned();
            if !is_sha256(&sha256) || path.is_empty() {
                return Err(damaged(n + 3));
            }
            files.push(Record {
                path,
                size,
                mtime_ns,
                sha256,
            });
        }
        if files.is_empty() {
            return Err("its stamp lists no output".to_owned());
        }
        Ok(Stamp { inputs, files })
    }

    /// Whether the build in `out` is still the one this stamp describes:
    /// every output it names exists with its recorded size, and with its
    /// recorded time or, failing that, its recorded contents. The error says
    /// what is wrong, in a few words, for the user.
    pub(super) fn check(&self, out: &Path, outputs: &BuiltFiles) -> Result<(), String> {
        let listed = |p: &Path| self.files.iter().any(|r| r.path == relative(p, out));
        match outputs {
            BuiltFiles::Elf(elf) if !listed(elf) => {
                return Err(format!("its stamp does not list {}", relative(elf, out)));
            }
            BuiltFiles::Linux {
                kernel,
                initrd,
                dtbs,
                disk,
            } => {
                let files = std::iter::once(kernel).chain(initrd).chain(disk);
                if let Some(p) = files.into_iter().find(|p| !listed(p)) {
                    return Err(format!("its stamp does not list {}", relative(p, out)));
                }
                if let Some(d) = dtbs.as_ref().filter(|d| !d.is_dir()) {
                    return Err(format!("{} is missing", relative(d, out)));
                }
            }
            BuiltFiles::Elf(_) => {}
        }
        self.files.iter().try_for_each(|r| r.check(out))
    }
}

impl Record {
    fn check(&self, out: &Path) -> Result<(), String> {
        let path = out.join(&self.path);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Err(format!("{} is not a file", self.path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(format!("{} is missing", self.path));
            }
            Err(e) => return Err(format!("{} cannot be read: {e}", self.path)),
        };
        if meta.len() != self.size {
            return Err(format!(
                "{} has {} bytes, the build wrote {}",
                self.path,
                meta.len(),
                self.size
            ));
        }
        if mtime_ns(&meta) == self.mtime_ns {
            return Ok(());
        }
        match File::open(&path).and_then(|mut f| hash_reader(&mut f)) {
            Ok(sha256) if sha256 == self.sha256 => Ok(()),
            Ok(_) => Err(format!("{} changed since the build", self.path)),
            Err(e) => Err(format!("{} cannot be read: {e}", self.path)),
        }
    }
}

/// Every file of `outputs`: the ELF, or the kernel, the initramfs, the disk
/// and each file below the device tree folder, in a stable order.
fn output_files(outputs: &BuiltFiles) -> Result<Vec<PathBuf>, ImageError> {
    match outputs {
        BuiltFiles::Elf(elf) => Ok(vec![elf.clone()]),
        BuiltFiles::Linux {
            kernel,
            initrd,
            dtbs,
            disk,
        } => {
            let mut files: Vec<PathBuf> = std::iter::once(kernel)
                .chain(initrd)
                .chain(disk)
                .cloned()
                .collect();
            if let Some(dtbs) = dtbs {
                walk(dtbs, &mut files)?;
            }
            Ok(files)
        }
    }
}

/// Appends the files below `dir` to `files`, sorted by name in each folder.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ImageError> {
    let io = |source| ImageError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `out`, with `/` separators.
fn relative(path: &Path, out: &Path) -> String {
    let rel = path.strip_prefix(out).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The SHA-256 of everything `reader` yields, in lower-case hex.
pub(crate) fn hash_reader(reader: &mut impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&h.finalize()))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn linux(out: &Path) -> BuiltFiles {
        BuiltFiles::Linux {
            kernel: out.join("Image"),
            initrd: Some(out.join("initrd.cpio.gz")),
            dtbs: Some(out.join("dtbs")),
            disk: None,
        }
    }

    fn built(out: &Path) -> Stamp {
        std::fs::create_dir_all(out.join("dtbs/broadcom")).unwrap();
        std::fs::write(out.join("Image"), vec![7u8; 5000]).unwrap();
        std::fs::write(out.join("initrd.cpio.gz"), b"initrd").unwrap();
        std::fs::write(out.join("dtbs/broadcom/rpi.dtb"), b"dtb").unwrap();
        Stamp::seal(KEY, out, &linux(out)).unwrap()
    }

    #[test]
    fn a_stamp_lists_every_output_file_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = built(dir.path());
        let paths: Vec<&str> = stamp.files.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["Image", "initrd.cpio.gz", "dtbs/broadcom/rpi.dtb"]);
        assert_eq!(Stamp::parse(&stamp.to_text()), Ok(stamp.clone()));
        assert_eq!(stamp.check(dir.path(), &linux(dir.path())), Ok(()));
    }

    #[test]
    fn damage_is_found_and_said_in_a_few_words() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let stamp = built(out);
        let check = || stamp.check(out, &linux(out)).unwrap_err();

        std::fs::write(out.join("Image"), vec![7u8; 100]).unwrap();
        assert_eq!(check(), "Image has 100 bytes, the build wrote 5000");
        // Same size, other bytes: the time changed, so it is hashed again.
        // (Set explicitly: two writes may fall in one tick of the clock.)
        let rewrite = |byte: u8| {
            std::fs::write(out.join("Image"), vec![byte; 5000]).unwrap();
            let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
            File::options()
                .write(true)
                .open(out.join("Image"))
                .and_then(|f| f.set_modified(later))
                .unwrap();
        };
        rewrite(8);
        assert_eq!(check(), "Image changed since the build");
        // Same bytes with a new time are still the build.
        rewrite(7);
        assert_eq!(stamp.check(out, &linux(out)), Ok(()));

        std::fs::remove_file(out.join("dtbs/broadcom/rpi.dtb")).unwrap();
        assert_eq!(check(), "dtbs/broadcom/rpi.dtb is missing");
        std::fs::remove_dir_all(out.join("dtbs")).unwrap();
        assert_eq!(check(), "dtbs is missing");
    }

    #[test]
    fn an_older_labs_stamp_is_no_build_and_no_damage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STAMP), format!("{KEY}\n")).unwrap();
        assert_eq!(Stamp::read(dir.path()), Ok(None));
        std::fs::write(dir.path().join(STAMP), "lab-image-stamp 9\n").unwrap();
        assert_eq!(Stamp::read(dir.path()).unwrap_err(), "its stamp is damaged");
    }

    #[test]
    fn a_stamp_that_is_not_ours_is_refused() {
        let no_files = format!("{HEADER}\ninputs {KEY}\n");
        assert_eq!(
            Stamp::parse(&no_files).unwrap_err(),
            "its stamp lists no output"
        );
        let cut = format!("{HEADER}\ninputs {KEY}\n12 34 {}", &KEY[..20]);
        assert_eq!(
            Stamp::parse(&cut).unwrap_err(),
            "its stamp is damaged (line 3)"
        );
        assert_eq!(
            Stamp::parse(&format!("{HEADER}\ninputs xyz\n")).unwrap_err(),
            "its stamp is damaged (line 2)"
        );
    }

    #[test]
    fn an_elf_missing_from_the_stamp_is_not_a_build_of_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.elf"), b"elf").unwrap();
        let a = BuiltFiles::Elf(dir.path().join("a.elf"));
        let stamp = Stamp::seal(KEY, dir.path(), &a).unwrap();
        let b = BuiltFiles::Elf(dir.path().join("b.elf"));
        assert_eq!(
            stamp.check(dir.path(), &b).unwrap_err(),
            "its stamp does not list b.elf"
        );
    }
}
