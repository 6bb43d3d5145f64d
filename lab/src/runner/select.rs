//! Choosing the backend of each job: QEMU, or a real board when a debug
//! probe answers for the board's chip (`target: auto|qemu|hardware`).
//!
//! Probes are listed once per plan and asked once per chip; jobs on one
//! probe share a lock, so they take turns on the board.

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::probe::{self, ProbeError, ProbeInfo, ProbeLister};
use crate::backend::{FlashSink, TargetKind};
use crate::board::BoardProfile;
use crate::scenario::TargetChoice;

/// The probe a hardware job runs on.
#[derive(Clone)]
pub struct ProbeSlot {
    /// The probe.
    pub info: ProbeInfo,
    /// Opens sessions on it.
    pub lister: Arc<dyn ProbeLister>,
    /// Held while a job uses the board.
    pub lock: Arc<tokio::sync::Mutex<()>>,
    /// Flash progress, when the caller shows it.
    pub on_flash: Option<FlashSink>,
}

impl std::fmt::Debug for ProbeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSlot")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Why a job cannot get the backend it asks for: a message and a hint.
pub(super) type Refusal = (String, String);

/// Picks backends for the jobs of one plan.
pub(super) struct Selector {
    lister: Arc<dyn ProbeLister>,
    listed: Option<Vec<ProbeInfo>>,
    answers: HashMap<(String, Option<String>), Option<ProbeInfo>>,
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl Selector {
    /// A selector that asks `lister` for probes, lazily.
    pub(super) fn new(lister: Arc<dyn ProbeLister>) -> Self {
        Self {
            lister,
            listed: None,
            answers: HashMap::new(),
            locks: HashMap::new(),
        }
    }

    /// The backend for `board` under `choice`.
    pub(super) fn select(
        &mut self,
        choice: TargetChoice,
        board: &BoardProfile,
    ) -> Result<(TargetKind, Option<ProbeSlot>), Refusal> {
        let qemu = || {
            if board.emulated() {
                Ok((TargetKind::Qemu, None))
            } else {
                Err((
                    format!(
                        "board `{}` exists only as hardware, and `--target qemu` was asked for",
                        board.name
                    ),
                    "attach its debug probe and use `--target auto` or `hardware`".into(),
                ))
            }
        };
        let Some(hw) = &board.hardware else {
            return match choice {
                TargetChoice::Hardware => Err((
                    format!(
                        "`target: hardware` asked for board `{}`, which has no `hardware:` section (no probe-rs chip)",
                        board.name
                    ),
                    "pick a board with a hardware profile (`lab boards`), or use `--target qemu`"
                        .into(),
                )),
                TargetChoice::Qemu | TargetChoice::Auto => qemu(),
            };
        };
        if choice == TargetChoice::Qemu {
            return qemu();
        }
        match self.probe_for(&hw.chip, hw.probe.as_deref()) {
            Some(info) => {
                let lock = Arc::clone(self.locks.entry(info.selector.clone()).or_default());
                Ok((
                    TargetKind::Hardware,
                    Some(ProbeSlot {
                        info,
                        lister: Arc::clone(&self.lister),
                        lock,
                        on_flash: None,
                    }),
                ))
            }
            None if choice == TargetChoice::Auto && board.emulated() => qemu(),
            None => {
                let not_found = ProbeError::NotFound {
                    board: board.name.clone(),
                    chip: hw.chip.clone(),
                    looked_for: match &hw.probe {
                        Some(serial) => format!("the probe with serial number {serial}"),
                        None => "any probe-rs debug probe on USB".into(),
                    },
                    attached: self.listed().iter().map(ProbeInfo::describe).collect(),
                };
                let hint = if probe::HARDWARE_SUPPORT {
                    "attach the board's probe (see `lab boards`), or run with `--target qemu`"
                } else {
                    "this lab was built without the `hardware` feature; rebuild with it, or run with `--target qemu`"
                };
                Err((not_found.to_string(), hint.into()))
            }
        }
    }

    fn listed(&mut self) -> &[ProbeInfo] {
        let lister = &self.lister;
        self.listed.get_or_insert_with(|| lister.list())
    }

    fn probe_for(&mut self, chip: &str, serial: Option<&str>) -> Option<ProbeInfo> {
        let key = (chip.to_owned(), serial.map(str::to_owned));
        if let Some(answer) = self.answers.get(&key) {
            return answer.clone();
        }
        let probes = self.listed().to_vec();
        let answer = probe::find_probe(self.lister.as_ref(), &probes, chip, serial);
        self.answers.insert(key, answer.clone());
        answer
    }
}
