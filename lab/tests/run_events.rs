//! What the runner tells its display while it runs a real QEMU job: the
//! job starts, each step begins in order, the job finishes.

mod common;

use std::sync::{Arc, Mutex};

use lab::runner::{self, RunEvent};
use lab::scenario;
use lab::workspace::Workspace;
use tokio_util::sync::CancellationToken;

#[test]
fn a_job_reports_each_step_as_it_begins() {
    let dir = tempfile::tempdir().unwrap();
    let file = common::ScenarioYaml::image("mps2-an385", "cortex-m/hello")
        .with("timeout: 20s")
        .step("boot: {}")
        .step("wait-serial: {match: 'READY', timeout: 10s}")
        .step("expect-exit: {code: 0, timeout: 10s}")
        .write(dir.path(), "steps.yaml");
    let workspace = Workspace::open(common::repo()).unwrap();
    let jobs = runner::plan(&[scenario::load(&file).unwrap()], &workspace, None).unwrap();
    let images = runner::build_images(&jobs, &workspace, &|_| {});

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let on_event: Arc<dyn Fn(RunEvent) + Send + Sync> = Arc::new(move |e| {
        let line = match e {
            RunEvent::Started { index, label } => format!("{index} started {label}"),
            RunEvent::Step { index, which, key } => format!("{index} {which} {key}"),
            RunEvent::Finished { index, result } => {
                format!("{index} finished {}", result.status.as_str())
            }
            RunEvent::ImageReady { .. } | RunEvent::Flashing { .. } => return,
        };
        sink.lock().unwrap().push(line);
    });
    let settings = runner::RunSettings {
        parallel: 1,
        seed: 1,
        cold: false,
        fail_fast: false,
    };
    let results = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(runner::run_jobs(
            jobs,
            Arc::new(workspace),
            images,
            settings,
            CancellationToken::new(),
            on_event,
        ));
    assert_eq!(
        results[0].status,
        lab::report::Status::Passed,
        "{results:?}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "0 started steps#1",
            "0 step 1 boot",
            "0 step 2 wait-serial",
            "0 step 3 expect-exit",
            "0 finished passed",
        ]
    );
}
