//! Image manifests (`images/**/image.yaml`): inputs, build and output.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ImageError;
use crate::board::Arch;
use crate::catalog::LazyFiles;
use crate::deps::HostTool;

/// The manifest file name inside an image's folder.
pub const MANIFEST: &str = "image.yaml";

/// One guest image: how to build it from its inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageManifest {
    /// One line for `lab list`.
    pub description: String,
    /// The image is built once for every board of this architecture.
    pub arch: Arch,
    /// Host commands the build needs.
    #[serde(default)]
    pub requires: Vec<HostTool>,
    /// The firmware keeps data in the board's nonvolatile region (`kind:
    /// nvm`): boards without one cannot run it, and are skipped.
    #[serde(default)]
    pub needs_storage: bool,
    /// Globs relative to the image folder; their contents key the cache.
    pub inputs: Vec<String>,
    /// Argument vectors run in order in the image folder, never via a shell.
    pub build: Vec<Vec<String>>,
    /// The bootable file (firmware ELF), relative to the output folder.
    /// Exactly one of `output` and `outputs` is given.
    #[serde(default)]
    pub output: Option<String>,
    /// The files a Linux boot needs, relative to the output folder.
    #[serde(default)]
    pub outputs: Option<LinuxOutputs>,
    /// The image's name: its folder under `images/`.
    #[serde(skip)]
    pub name: String,
    /// The image's folder.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The manifest's own text (part of the cache key).
    #[serde(skip)]
    pub text: String,
}

impl ImageManifest {
    /// Parses the manifest at `path`, naming it after its folder under `images_dir`.
    pub fn load(images_dir: &Path, path: &Path) -> Result<Self, ImageError> {
        let text = std::fs::read_to_string(path).map_err(|source| ImageError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut manifest: ImageManifest =
            serde_saphyr::from_str(&text).map_err(|e| ImageError::Manifest {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        manifest.name = image_name(images_dir, path);
        manifest.dir = dir;
        manifest.text = text;
        let invalid = |message: &str| ImageError::Manifest {
            path: path.to_owned(),
            message: message.into(),
        };
        if manifest.build.iter().any(Vec::is_empty) {
            return Err(invalid("a `build` entry is an empty argument vector"));
        }
        match (&manifest.output, &manifest.outputs) {
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => {
                return Err(invalid(
                    "give `output` (a firmware file) or `outputs` (kernel, initrd, dtbs)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(invalid("give either `output` or `outputs`, not both"));
            }
        }
        Ok(manifest)
    }

    /// The built files inside the output folder `out`.
    pub fn built_files(&self, out: &Path) -> BuiltFiles {
        match (&self.output, &self.outputs) {
            (_, Some(linux)) => BuiltFiles::Linux {
                kernel: out.join(&linux.kernel),
                initrd: linux.initrd.as_ref().map(|p| out.join(p)),
                dtbs: linux.dtbs.as_ref().map(|p| out.join(p)),
                disk: linux.disk.as_ref().map(|p| out.join(p)),
            },
            (output, None) => BuiltFiles::Elf(out.join(output.as_deref().unwrap_or_default())),
        }
    }

    /// The input files, expanded from the globs, sorted and de-duplicated.
    /// A glob that matches nothing is an error: it is almost always a typo.
    pub fn input_files(&self) -> Result<Vec<PathBuf>, ImageError> {
        let mut files = Vec::new();
        for pattern in &self.inputs {
            let full = self.dir.join(pattern);
            let full = full.to_string_lossy();
            let bad = |message: String| ImageError::Manifest {
                path: self.dir.join(MANIFEST),
                message,
            };
            let before = files.len();
            for entry in glob::glob(&full).map_err(|e| bad(format!("input `{pattern}`: {e}")))? {
                let path = entry.map_err(|e| bad(format!("input `{pattern}`: {e}")))?;
                if path.is_file() {
                    files.push(path);
                }
            }
            if files.len() == before {
                return Err(bad(format!("input `{pattern}` matches no file")));
            }
        }
        files.sort();
        files.dedup();
        Ok(files)
    }
}

/// The files a build produced, as absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuiltFiles {
    /// A firmware ELF.
    Elf(PathBuf),
    /// A Linux kernel, its initramfs, a folder of device trees and a disk.
    Linux {
        /// The kernel Image.
        kernel: PathBuf,
        /// The initramfs.
        initrd: Option<PathBuf>,
        /// The device tree folder.
        dtbs: Option<PathBuf>,
        /// The disk image a scenario's `storage:` starts from.
        disk: Option<PathBuf>,
    },
}

impl BuiltFiles {
    /// The file to show in messages: the ELF or the kernel.
    pub fn primary(&self) -> &Path {
        match self {
            BuiltFiles::Elf(p) | BuiltFiles::Linux { kernel: p, .. } => p,
        }
    }

    /// The first output that does not exist (files, and the dtbs folder).
    pub fn missing(&self) -> Option<&Path> {
        match self {
            BuiltFiles::Elf(p) => (!p.is_file()).then_some(p.as_path()),
            BuiltFiles::Linux {
                kernel,
                initrd,
                dtbs,
                disk,
            } => std::iter::once(kernel)
                .chain(initrd)
                .chain(disk)
                .find(|p| !p.is_file())
                .or(dtbs.as_ref().filter(|d| !d.is_dir()))
                .map(PathBuf::as_path),
        }
    }
}

/// The files of a Linux image, relative to its output folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxOutputs {
    /// The kernel Image handed to `-kernel`.
    pub kernel: String,
    /// The initramfs handed to `-initrd`.
    #[serde(default)]
    pub initrd: Option<String>,
    /// A folder of device trees; the board profile's `linux.dtb` names the
    /// one to use, relative to it. Boards without one (QEMU `virt`) boot on
    /// QEMU's own device tree.
    #[serde(default)]
    pub dtbs: Option<String>,
    /// A raw disk image (an ext4 file system) for a scenario's `storage:`:
    /// every run gets its own copy, attached as the board profile's
    /// `linux.disk` says.
    #[serde(default)]
    pub disk: Option<String>,
}

/// The image manifests under `images/`, by name. A manifest is read and
/// checked the first time it is asked for, so that a run pays for the
/// images it uses, not for every image there is.
#[derive(Debug, Clone, Default)]
pub struct ImageCatalog {
    images_dir: PathBuf,
    images: LazyFiles<ImageManifest, PathBuf>,
}

impl ImageCatalog {
    /// Finds every `image.yaml` below `images_dir`, reading none of them yet.
    pub fn load(images_dir: &Path) -> Result<Self, ImageError> {
        let mut images = LazyFiles::default();
        let mut stack = vec![images_dir.to_owned()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| ImageError::Io {
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if path.file_name().is_some_and(|n| n == MANIFEST) {
                    images.insert(image_name(images_dir, &path), path);
                }
            }
        }
        Ok(ImageCatalog {
            images_dir: images_dir.to_owned(),
            images,
        })
    }

    /// The image with this name, read on first use; `None` when there is
    /// no such manifest.
    pub fn get(&self, name: &str) -> Result<Option<&ImageManifest>, ImageError> {
        self.images
            .get(name, |path| ImageManifest::load(&self.images_dir, path))
    }

    /// Every image, sorted by name; the first broken manifest is an error.
    pub fn all(&self) -> Result<Vec<&ImageManifest>, ImageError> {
        self.images
            .all(|_, path| ImageManifest::load(&self.images_dir, path))
    }

    /// Every image name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.images.names()
    }
}

/// An image's name: the folder of its manifest `path`, under `images_dir`.
fn image_name(images_dir: &Path, path: &Path) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.strip_prefix(images_dir)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<ImageManifest, ImageError> {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("raspi/x");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(MANIFEST), yaml).unwrap();
        ImageManifest::load(dir.path(), &folder.join(MANIFEST))
    }

    const HEAD: &str = "description: d\narch: aarch64\ninputs: [a]\nbuild: [[true]]\n";

    #[test]
    fn a_linux_image_names_kernel_initrd_and_dtbs() {
        let m = load(&format!(
            "{HEAD}outputs: {{kernel: Image, initrd: i.cpio.gz, dtbs: dtbs, disk: disk.img}}\n"
        ))
        .unwrap();
        assert_eq!(m.name, "raspi/x");
        assert_eq!(
            m.built_files(Path::new("/o")),
            BuiltFiles::Linux {
                kernel: "/o/Image".into(),
                initrd: Some("/o/i.cpio.gz".into()),
                dtbs: Some("/o/dtbs".into()),
                disk: Some("/o/disk.img".into()),
            }
        );
        let elf = load(&format!("{HEAD}output: a.elf\n")).unwrap();
        assert_eq!(
            elf.built_files(Path::new("/o")),
            BuiltFiles::Elf("/o/a.elf".into())
        );
    }

    #[test]
    fn exactly_one_of_output_and_outputs() {
        let none = load(HEAD).unwrap_err().to_string();
        assert!(none.contains("give `output`"), "{none}");
        let both = load(&format!("{HEAD}output: a\noutputs: {{kernel: Image}}\n"))
            .unwrap_err()
            .to_string();
        assert!(both.contains("not both"), "{both}");
    }

    #[test]
    fn a_missing_dtbs_folder_is_a_missing_output() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Image"), b"k").unwrap();
        let files = BuiltFiles::Linux {
            kernel: dir.path().join("Image"),
            initrd: None,
            dtbs: Some(dir.path().join("dtbs")),
            disk: None,
        };
        assert_eq!(files.missing(), Some(dir.path().join("dtbs").as_path()));
        std::fs::create_dir(dir.path().join("dtbs")).unwrap();
        assert_eq!(files.missing(), None);
    }
}
