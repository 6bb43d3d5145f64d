//! The lab's workspace: the folder that holds `qemu-configs/` and `images/`.
//!
//! The board profiles of the lab's own `qemu-configs/` are built into it. A
//! workspace adds to them: boards of its own or in place of built-in ones
//! (`qemu-configs/`), images built from recipes (`images/`), and the
//! `build/` folder that caches builds and warm-up snapshots. Outside any
//! workspace the lab runs with its built-in boards, firmware given as a
//! file (`image: {elf: ...}`) and a build cache in the user's cache folder.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::board::{BoardCatalog, BoardError};
use crate::image::{ImageBuilder, ImageCatalog, ImageError, hex};

/// The environment variable that names the workspace explicitly.
pub const ROOT_ENV: &str = "LAB_ROOT";

/// The folders that make a folder a workspace: either is enough.
const MARKERS: [&str; 2] = ["qemu-configs", "images"];

/// Errors while locating or reading the workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The folder named as the workspace is not one.
    #[error(
        "{root} is not a lab workspace: it has neither `qemu-configs/` nor `images/` (check \
         {ROOT_ENV}, or unset it to use the lab's built-in boards)"
    )]
    NotAWorkspace {
        /// The folder.
        root: PathBuf,
    },
    /// A board profile is broken.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// An image manifest is broken.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Boards, images and the build cache the lab works with.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace folder; `None` outside any workspace.
    pub root: Option<PathBuf>,
    /// The built-in board profiles with the workspace's `qemu-configs/`.
    pub boards: BoardCatalog,
    /// Image manifests from the workspace's `images/`.
    pub images: ImageCatalog,
    /// Builds images into `build/images/`.
    pub builder: ImageBuilder,
    /// Where builds and warm-up snapshots are kept: the workspace's
    /// `build/`, or `lab/` in the user's cache folder outside a workspace.
    pub build_dir: PathBuf,
}

impl Workspace {
    /// Finds the workspace: `$LAB_ROOT`, or the nearest folder at or above
    /// `start` that has `qemu-configs/` or `images/`; with neither, the
    /// lab's built-in boards alone ([`Workspace::builtin`]).
    pub fn discover(start: &Path) -> Result<Self, WorkspaceError> {
        Self::find(start, std::env::var_os(ROOT_ENV).map(PathBuf::from))
    }

    /// Opens `named`, or the nearest workspace at or above `start`, or none.
    fn find(start: &Path, named: Option<PathBuf>) -> Result<Self, WorkspaceError> {
        if let Some(root) = named {
            return Self::open(root);
        }
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
        match start.ancestors().find(|dir| is_workspace(dir)) {
            Some(root) => Self::open(root.to_owned()),
            None => Ok(Self::builtin()),
        }
    }

    /// Opens the workspace at `root`.
    pub fn open(root: PathBuf) -> Result<Self, WorkspaceError> {
        if !is_workspace(&root) {
            return Err(WorkspaceError::NotAWorkspace { root });
        }
        let configs = root.join("qemu-configs");
        let boards = if configs.is_dir() {
            BoardCatalog::builtin().with_folder(&configs)?
        } else {
            BoardCatalog::builtin()
        };
        let images_dir = root.join("images");
        let images = if images_dir.is_dir() {
            ImageCatalog::load(&images_dir)?
        } else {
            ImageCatalog::default()
        };
        let build_dir = root.join("build");
        Ok(Workspace {
            builder: ImageBuilder::new(build_dir.join("images")),
            root: Some(root),
            boards,
            images,
            build_dir,
        })
    }

    /// No workspace: the lab's built-in boards, no images to build, and the
    /// build cache in `$XDG_CACHE_HOME/lab` (`~/.cache/lab`; the system's
    /// temporary folder when there is no home).
    pub fn builtin() -> Self {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        let build_dir = cache.join("lab");
        Workspace {
            root: None,
            boards: BoardCatalog::builtin(),
            images: ImageCatalog::default(),
            builder: ImageBuilder::new(build_dir.join("images")),
            build_dir,
        }
    }

    /// The key CI caches `build/` under (`lab images key`): a hash over
    /// every image x board pair that builds and its build's input hash, so
    /// that it changes exactly when some image would build anew.
    pub fn images_key(&self) -> Result<String, WorkspaceError> {
        let mut lines = Vec::new();
        for image in self.images.all()? {
            for board in self.boards.all()? {
                match self.builder.cache_key(image, board) {
                    Ok(key) => lines.push(format!("{}@{} {key}\n", image.name, board.name)),
                    Err(ImageError::Unsupported { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        lines.sort();
        let digest = Sha256::digest(lines.concat().as_bytes());
        Ok(format!("lab-images-{}", hex(&digest)))
    }
}

/// Whether `dir` is a workspace: it has one of the [`MARKERS`] folders.
fn is_workspace(dir: &Path) -> bool {
    MARKERS.iter().any(|marker| dir.join(marker).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_images_or_boards_is_a_workspace_and_none_is_the_builtin_lab() {
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("src/deep");
        std::fs::create_dir_all(&nested).unwrap();
        let bare = Workspace::find(&nested, None).unwrap();
        assert_eq!(bare.root, None);
        assert!(bare.boards.names().contains(&"mps2-an385"));
        assert!(bare.images.names().is_empty());
        assert!(bare.build_dir.ends_with("lab"));

        std::fs::create_dir(tmp.path().join("images")).unwrap();
        let ws = Workspace::find(&nested, None).unwrap();
        assert_eq!(ws.root.as_deref(), Some(tmp.path()));
        assert_eq!(ws.build_dir, tmp.path().join("build"));
        assert!(
            ws.boards.names().contains(&"virt-a53"),
            "built-in boards stay"
        );

        let named = Workspace::find(Path::new("/"), Some(tmp.path().to_owned())).unwrap();
        assert_eq!(named.root.as_deref(), Some(tmp.path()));
        let err = Workspace::find(tmp.path(), Some(nested)).unwrap_err();
        assert!(matches!(err, WorkspaceError::NotAWorkspace { .. }), "{err}");
    }
}
