//! Guest images: manifests, builds and the content-hash cache.

mod build;
mod manifest;

use std::path::PathBuf;

pub use build::{BuildOutcome, ImageBuilder};
pub use manifest::{ImageCatalog, ImageManifest, MANIFEST};

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
    #[error(
        "building image `{image}` for `{board}` failed: `{command}` {status}; \
         last output:\n{output}\n(full log: {log})"
    )]
    BuildFailed {
        /// The image.
        image: String,
        /// The board.
        board: String,
        /// The program that failed.
        command: String,
        /// How it ended.
        status: String,
        /// Its last lines of output.
        output: String,
        /// The build log.
        log: PathBuf,
    },
}
