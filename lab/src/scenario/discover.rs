//! Finding scenario files: expanding folders into the YAML files they hold.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::loader::{ErrorKind, ScenarioError};

/// Expands `paths` into scenario files: files are kept as given, folders
/// are searched recursively for `*.yaml`, `*.yml` and `*.rhai` files, sorted by path
/// (without following symbolic links to folders).
/// A path that does not exist is an error naming it.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut found = Vec::new();
    for path in paths {
        let metadata = fs::metadata(path).map_err(|error| read_error(path, error))?;
        if metadata.is_dir() {
            let mut in_folder = Vec::new();
            walk(path, &mut in_folder)?;
            in_folder.sort();
            found.extend(in_folder);
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

/// Collects the YAML files under `folder`.
fn walk(folder: &Path, found: &mut Vec<PathBuf>) -> Result<(), ScenarioError> {
    let entries = fs::read_dir(folder).map_err(|error| read_error(folder, error))?;
    for entry in entries {
        let entry = entry.map_err(|error| read_error(folder, error))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|error| read_error(&path, error))?;
        // Symbolic links to folders are not followed: they could form a loop.
        if file_type.is_dir() {
            walk(&path, found)?;
        } else if is_scenario(&path) {
            found.push(path);
        }
    }
    Ok(())
}

fn is_scenario(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "rhai")
}

fn read_error(path: &Path, error: io::Error) -> ScenarioError {
    let kind = match error.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Read(error),
    };
    ScenarioError::whole(path, kind)
}
