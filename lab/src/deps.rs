//! Host tools the lab needs, and the Debian package that provides each.

use std::path::PathBuf;

/// A host command that is missing.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "`{command}` is not installed (not found on PATH): install the Debian package `{package}` \
     (`make deps` installs every system dependency)"
)]
pub struct MissingTool {
    /// The command looked for.
    pub command: String,
    /// The package that provides it.
    pub package: String,
}

/// A host command and the package that provides it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTool {
    /// The command name, looked up on PATH.
    pub command: String,
    /// The Debian package to install when it is missing.
    pub package: String,
}

impl HostTool {
    /// A tool from its command and package names.
    pub fn new(command: &str, package: &str) -> Self {
        HostTool {
            command: command.to_owned(),
            package: package.to_owned(),
        }
    }

    /// Finds the command on PATH, or says which package to install.
    pub fn locate(&self) -> Result<PathBuf, MissingTool> {
        which::which(&self.command).map_err(|_| MissingTool {
            command: self.command.clone(),
            package: self.package.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let err = HostTool::new("lab-no-such-tool", "lab-no-such-package")
            .locate()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`lab-no-such-tool` is not installed"), "{msg}");
        assert!(
            msg.contains("Debian package `lab-no-such-package`"),
            "{msg}"
        );
    }

    #[test]
    fn a_present_tool_is_found() {
        let path = HostTool::new("sh", "dash").locate().unwrap();
        assert!(path.is_absolute());
    }
}
