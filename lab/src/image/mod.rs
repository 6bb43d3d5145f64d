//! Guest images: manifests, builds and the content-hash cache.

mod build;
mod manifest;

use std::path::PathBuf;

pub use build::{BuildOutcome, ImageBuilder};
pub use manifest::{BuiltFiles, ImageCatalog, ImageManifest, LinuxOutputs, MANIFEST};

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
