//! Host tools and files the lab needs, and the Debian package that provides each.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A host requirement that is not met.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{what}: install the Debian package `{package}` (`make deps` installs every system dependency)"
)]
pub struct MissingTool {
    /// What is missing, as a phrase.
    pub what: String,
    /// The package that provides it.
    pub package: String,
}

/// A host command (looked up on PATH) or file, and the package that provides it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTool {
    /// A command name, looked up on PATH.
    #[serde(default)]
    pub command: Option<String>,
    /// A file that must exist (for packages that install no command).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The Debian package to install when it is missing.
    pub package: String,
}

impl HostTool {
    /// A command and the package that provides it.
    pub fn new(command: &str, package: &str) -> Self {
        HostTool {
            command: Some(command.to_owned()),
            file: None,
            package: package.to_owned(),
        }
    }

    /// Checks the requirement: finds the command on PATH (its path is
    /// returned) or checks the file exists, or says which package to install.
    pub fn locate(&self) -> Result<PathBuf, MissingTool> {
        let missing = |what: String| MissingTool {
            what,
            package: self.package.clone(),
        };
        match (&self.command, &self.file) {
            (Some(command), _) => which::which(command)
                .map_err(|_| missing(format!("`{command}` is not installed (not found on PATH)"))),
            (None, Some(file)) if file.exists() => Ok(file.clone()),
            (None, Some(file)) => Err(missing(format!("{} is missing", file.display()))),
            (None, None) => Err(missing(
                "a requirement names neither a command nor a file".into(),
            )),
        }
    }
}

/// How long `--version` may take before the tool is taken for broken.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The first line `program --version` prints (`QEMU emulator version
/// 10.0.2 (...)`), within a few seconds; the program is killed past them.
pub fn version_line(program: &Path) -> io::Result<String> {
    let mut child = crate::child::spawn_std({
        let mut command = Command::new(program);
        command
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    })?;
    // The output is read on a thread of its own, so that the wait has a
    // deadline and a chatty program cannot fill the pipe and stall.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sender, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = sender.send(io::Read::read_to_string(&mut stdout, &mut out).map(|_| out));
    });
    match answer.recv_timeout(VERSION_TIMEOUT) {
        Ok(out) => {
            child.wait()?;
            Ok(out?.lines().next().unwrap_or_default().trim().to_owned())
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "`{} --version` did not answer within {VERSION_TIMEOUT:?}",
                    program.display()
                ),
            ))
        }
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
    fn a_version_line_is_the_first_line_printed() {
        let sh = HostTool::new("sh", "dash").locate().unwrap();
        // dash has no --version: it reads the option as a script name and
        // fails, printing nothing on stdout; the call still returns.
        assert_eq!(version_line(&sh).unwrap(), "");
        let ls = HostTool::new("ls", "coreutils").locate().unwrap();
        assert!(version_line(&ls).unwrap().starts_with("ls (GNU coreutils)"));
    }

    #[test]
    fn a_present_tool_is_found() {
        let path = HostTool::new("sh", "dash").locate().unwrap();
        assert!(path.is_absolute());
    }

    #[test]
    fn a_missing_file_names_its_package() {
        let tool = HostTool {
            command: None,
            file: Some(PathBuf::from("/nonexistent/lab/duktape.c")),
            package: "duktape-dev".into(),
        };
        let msg = tool.locate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "/nonexistent/lab/duktape.c is missing: install the Debian package `duktape-dev` \
             (`make deps` installs every system dependency)"
        );
    }
}
