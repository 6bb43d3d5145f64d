//! Named entries read on first use: the shape of the board and image
//! catalogs, which list their entries at start (files, or text built into
//! the lab) and parse only those a run asks for.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Entries by name, each listed by where it comes from (`S`: a file's path,
/// say) and parsed into a `T` the first time it is asked for.
#[derive(Debug, Clone)]
pub(crate) struct LazyFiles<T, S> {
    entries: BTreeMap<String, Entry<T, S>>,
}

#[derive(Debug, Clone)]
struct Entry<T, S> {
    source: S,
    value: OnceLock<T>,
}

impl<T, S> Default for LazyFiles<T, S> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }
}

impl<T, S> LazyFiles<T, S> {
    /// Where `name` comes from, if it is listed.
    pub(crate) fn source(&self, name: &str) -> Option<&S> {
        self.entries.get(name).map(|e| &e.source)
    }

    /// Lists `source` under `name`, unread, in place of any entry of that
    /// name.
    pub(crate) fn insert(&mut self, name: String, source: S) {
        let value = OnceLock::new();
        self.entries.insert(name, Entry { source, value });
    }

    /// The value of `name`, parsed by `read` on first use; `None` when no
    /// entry has that name. A failed read is not kept: asking again reads
    /// the entry again.
    pub(crate) fn get<E>(
        &self,
        name: &str,
        read: impl FnOnce(&S) -> Result<T, E>,
    ) -> Result<Option<&T>, E> {
        let Some(entry) = self.entries.get(name) else {
            return Ok(None);
        };
        if let Some(value) = entry.value.get() {
            return Ok(Some(value));
        }
        let value = read(&entry.source)?;
        Ok(Some(entry.value.get_or_init(|| value)))
    }

    /// Every value, sorted by name; the first failed read is an error.
    pub(crate) fn all<E>(&self, read: impl Fn(&str, &S) -> Result<T, E>) -> Result<Vec<&T>, E> {
        self.entries
            .keys()
            .filter_map(|name| self.get(name, |source| read(name, source)).transpose())
            .collect()
    }

    /// Every name, sorted.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }
}
