//! Named files read on first use: the shape of the board and image
//! catalogs, which list their files at start and parse only those a run
//! asks for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Entries by name, each a file parsed the first time it is asked for.
#[derive(Debug, Clone)]
pub(crate) struct LazyFiles<T> {
    entries: BTreeMap<String, Entry<T>>,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    path: PathBuf,
    value: OnceLock<T>,
}

impl<T> Default for LazyFiles<T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }
}

impl<T> LazyFiles<T> {
    /// The file behind `name`, if it is listed.
    pub(crate) fn path(&self, name: &str) -> Option<&Path> {
        self.entries.get(name).map(|e| e.path.as_path())
    }

    /// Lists `path` under `name`, unread.
    pub(crate) fn insert(&mut self, name: String, path: PathBuf) {
        let value = OnceLock::new();
        self.entries.insert(name, Entry { path, value });
    }

    /// The value of `name`, parsed by `read` on first use; `None` when no
    /// file has that name. A failed read is not kept: asking again reads
    /// the file again.
    pub(crate) fn get<E>(
        &self,
        name: &str,
        read: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Result<Option<&T>, E> {
        let Some(entry) = self.entries.get(name) else {
            return Ok(None);
        };
        if let Some(value) = entry.value.get() {
            return Ok(Some(value));
        }
        let value = read(&entry.path)?;
        Ok(Some(entry.value.get_or_init(|| value)))
    }

    /// Every value, sorted by name; the first failed read is an error.
    pub(crate) fn all<E>(&self, read: impl Fn(&str, &Path) -> Result<T, E>) -> Result<Vec<&T>, E> {
        self.entries
            .keys()
            .filter_map(|name| self.get(name, |path| read(name, path)).transpose())
            .collect()
    }

    /// Every name, sorted.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }
}
