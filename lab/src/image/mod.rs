//! Guest images: manifests, builds and the content-hash cache.

mod build;
mod manifest;
mod stamp;

use std::path::{Path, PathBuf};

pub use build::{BuildOutcome, ImageBuilder};
pub use manifest::{BuiltFiles, ImageCatalog, ImageManifest, LinuxOutputs, MANIFEST};
pub(crate) use stamp::{hash_reader, hex};

use crate::deps::MissingTool;

/// Errors while reading manifests or building images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Could not read or write a file.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest is not valid.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The image cannot be built for the board.
    #[error("image `{image}` cannot be built for board `{board}`: {reason}")]
    Unsupported {
        /// The image.
        image: String,
        /// The board.
        board: String,
        /// Why not.
        reason: String,
    },
    /// A build tool is missing.
    #[error("image `{image}` needs a build tool: {source}")]
    MissingTool {
        /// The image.
        image: String,
        /// The missing tool.
        source: MissingTool,
    },
    /// A build command failed.
    #[error(transparent)]
    BuildFailed(Box<BuildFailure>),
    /// The disk filled up during a build.
    #[error(transparent)]
    NoSpace(Box<NoSpace>),
}

/// A build command that failed, with the end of its output.
#[derive(Debug, thiserror::Error)]
#[error(
    "building image `{image}` for `{board}` failed: `{command}` {status}; \
     last output:\n{output}\n(full log: {log})"
)]
pub struct BuildFailure {
    /// The image.
    pub image: String,
    /// The board.
    pub board: String,
    /// The program that failed.
    pub command: String,
    /// How it ended.
    pub status: String,
    /// Its last lines of output.
    pub output: String,
    /// The build log.
    pub log: PathBuf,
}

/// A build that ran out of disk space. The build is thrown away; the
/// previous build of the image, if any, is left as it was.
#[derive(Debug, thiserror::Error)]
#[error(
    "building image `{image}` for `{board}` failed: no space left on device writing {}{}; \
     {} free in {}. Any previous build is kept as it was: free some space there and run \
     `lab images build {image} --board {board}` again",
    .file.display(),
    .said.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(),
    .free.map_or("unknown space".to_owned(), bytes),
    .folder.display()
)]
pub struct NoSpace {
    /// The image.
    pub image: String,
    /// The board.
    pub board: String,
    /// The file that could not be written: the output a build command was
    /// to produce, or the file the lab itself was writing.
    pub file: PathBuf,
    /// The build command that hit the full disk and what it said about it.
    pub said: Option<String>,
    /// The folder whose file system is full.
    pub folder: PathBuf,
    /// Bytes still free there, when they could be measured.
    pub free: Option<u64>,
}

impl NoSpace {
    /// Bytes an unprivileged writer can still put on the file system of `folder`.
    pub(crate) fn free_in(folder: &Path) -> Option<u64> {
        let stat = nix::sys::statvfs::statvfs(folder).ok()?;
        Some((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
    }
}

/// `n` bytes for people: `0 bytes`, `12 KiB`, `3.4 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_df() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(12 * 1024), "12 KiB");
        assert_eq!(bytes(3_565_158), "3.4 MiB");
    }

    #[test]
    fn the_no_space_error_names_image_board_file_and_what_to_do() {
        let e = NoSpace {
            image: "cortex-m/hello".into(),
            board: "mps2-an385".into(),
            file: "/b/mps2-an385/cortex-m/hello/hello.elf".into(),
            said: Some("`ld`: final link failed: No space left on device".into()),
            folder: "/b/mps2-an385/cortex-m".into(),
            free: Some(0),
        };
        assert_eq!(
            e.to_string(),
            "building image `cortex-m/hello` for `mps2-an385` failed: no space left on device \
             writing /b/mps2-an385/cortex-m/hello/hello.elf (`ld`: final link failed: No space \
             left on device); 0 bytes free in /b/mps2-an385/cortex-m. Any previous build is kept \
             as it was: free some space there and run `lab images build cortex-m/hello --board \
             mps2-an385` again"
        );
    }
}
