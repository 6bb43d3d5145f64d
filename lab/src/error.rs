//! The lab's top-level error: every module's error folded into one.

use crate::backend::TargetError;
use crate::board::BoardError;
use crate::image::ImageError;
use crate::qmp::QmpError;
use crate::report::ReportError;
use crate::runner::PlanError;
use crate::scenario::ScenarioError;
use crate::workspace::WorkspaceError;

/// Any error the lab reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A scenario cannot run as written.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The workspace could not be read.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A board profile is invalid.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// An image could not be built.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A target backend failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A QMP exchange failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),
    /// A report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl Error {
    /// True when the user's input is at fault (exit status 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Scenario(_) | Error::Plan(_) | Error::Workspace(_)
        )
    }
}
