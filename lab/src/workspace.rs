//! The lab's workspace: the folder that holds `qemu-configs/` and `images/`.

use std::path::{Path, PathBuf};

use crate::board::{BoardCatalog, BoardError};
use crate::image::{ImageBuilder, ImageCatalog, ImageError};

/// The environment variable that names the workspace explicitly.
pub const ROOT_ENV: &str = "LAB_ROOT";

/// Errors while locating or reading the workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// No workspace above the current folder.
    #[error(
        "no lab workspace found from {start}: run lab inside a checkout (a folder with \
         `qemu-configs/`), or set {ROOT_ENV}"
    )]
    NotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// A board profile is broken.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// An image manifest is broken.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Boards, images and the build cache of one checkout.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace folder.
    pub root: PathBuf,
    /// Board profiles from `qemu-configs/`.
    pub boards: BoardCatalog,
    /// Image manifests from `images/`.
    pub images: ImageCatalog,
    /// Builds images into `build/images/`.
    pub builder: ImageBuilder,
}

impl Workspace {
    /// Finds the workspace: `$LAB_ROOT`, or the nearest folder at or above
    /// `start` that has `qemu-configs/`.
    pub fn discover(start: &Path) -> Result<Self, WorkspaceError> {
        if let Some(root) = std::env::var_os(ROOT_ENV) {
            return Self::open(PathBuf::from(root));
        }
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
        start
            .ancestors()
            .find(|dir| dir.join("qemu-configs").is_dir())
            .map(|dir| Self::open(dir.to_owned()))
            .unwrap_or(Err(WorkspaceError::NotFound { start }))
    }

    /// Opens the workspace at `root`.
    pub fn open(root: PathBuf) -> Result<Self, WorkspaceError> {
        if !root.join("qemu-configs").is_dir() {
            return Err(WorkspaceError::NotFound { start: root });
        }
        let boards = BoardCatalog::load(&root.join("qemu-configs"))?;
        let images_dir = root.join("images");
        let images = if images_dir.is_dir() {
            ImageCatalog::load(&images_dir)?
        } else {
            ImageCatalog::default()
        };
        let builder = ImageBuilder::new(root.join("build").join("images"));
        Ok(Workspace {
            root,
            boards,
            images,
            builder,
        })
    }
}
