//! Child processes whose lifetime hangs on the lab process, never on a thread.
//!
//! Every child the lab starts (QEMU, image build commands) must die with the
//! lab, also when the lab is killed with SIGKILL. Linux offers
//! `PR_SET_PDEATHSIG` for that, but it fires when the *thread* that forked
//! the child exits, not the process (prctl(2)). Tokio retires threads on its
//! own schedule: `block_in_place` hands a worker's core to a fresh thread,
//! and an idle blocking-pool thread exits after its keep-alive. A child
//! forked on such a thread would be killed mid-run.
//!
//! So every child is forked by one thread that lives exactly as long as the
//! process: the spawner. Callers hand it their command and wait for the
//! spawned child; what happens to their own thread afterwards no longer
//! matters. The spawner only forks: it never blocks on anything but its
//! request queue.

use std::io;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// How long a caller waits for the spawner: a fork and an exec, far longer
/// than either takes on a loaded machine.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A unit of work the spawner runs on its thread.
type Request = Box<dyn FnOnce() + Send>;

/// The spawner's queue; the thread behind it lives as long as the process.
static SPAWNER: OnceLock<Sender<Request>> = OnceLock::new();

/// Spawns a tokio child on the spawner thread, so that it dies with the lab
/// process (SIGKILL) and not with the calling thread. Call it from within a
/// tokio runtime: the child is tied to the caller's runtime, and killed when
/// its handle is dropped.
pub fn spawn(mut command: tokio::process::Command) -> io::Result<tokio::process::Child> {
    die_with_lab(command.as_std_mut());
    command.kill_on_drop(true);
    let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    on_spawner(move || {
        let _entered = runtime.enter();
        command.spawn()
    })?
}

/// Spawns a std child on the spawner thread, so that it dies with the lab
/// process (SIGKILL) and not with the calling thread.
pub fn spawn_std(mut command: std::process::Command) -> io::Result<std::process::Child> {
    die_with_lab(&mut command);
    let child = on_spawner(move || command.spawn().map(|c| Unclaimed(Some(c))))??;
    Ok(child.claim())
}

/// A std child on its way to the caller, killed if the caller gave up
/// waiting for it (a tokio child from [`spawn`] is killed on drop anyway).
struct Unclaimed(Option<std::process::Child>);

impl Unclaimed {
    fn claim(mut self) -> std::process::Child {
        self.0.take().expect("a child is claimed once")
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Asks the kernel to SIGKILL the child when its parent goes. The parent is
/// the spawner thread, which ends only with the lab process.
fn die_with_lab(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let lab = Pid::this();
    // SAFETY: the closure runs in the forked child before exec and calls
    // only prctl(2) and getppid(2), both async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The lab may have died between fork and prctl; then the signal
            // will never come, and the child must not run on alone.
            if getppid() != lab {
                return Err(io::Error::other("the lab exited while starting this child"));
            }
            Ok(())
        });
    }
}

/// Starts the spawner thread now rather than at the first spawn, so that
/// the first child does not wait for a thread to start: a lab process
/// calls it as it starts.
pub fn start_spawner() -> io::Result<()> {
    spawner().map(drop)
}

/// Runs `work` on the spawner thread and returns its result.
fn on_spawner<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let (reply, result) = mpsc::sync_channel(1);
    let request: Request = Box::new(move || {
        let _ = reply.send(work());
    });
    spawner()?
        .send(request)
        .map_err(|_| io::Error::other("the lab's process spawner has stopped"))?;
    result.recv_timeout(SPAWN_TIMEOUT).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the lab's process spawner did not start the child within {SPAWN_TIMEOUT:?}"),
        ),
        mpsc::RecvTimeoutError::Disconnected => {
            io::Error::other("the lab's process spawner dropped a request")
        }
    })
}

/// The spawner's queue, starting its thread on first use.
fn spawner() -> io::Result<&'static Sender<Request>> {
    if let Some(queue) = SPAWNER.get() {
        return Ok(queue);
    }
    let (queue, requests) = mpsc::channel::<Request>();
    // Two first callers may race here: the loser's thread finds its queue
    // dropped at once and ends before it ever forks.
    std::thread::Builder::new()
        .name("lab-spawner".into())
        .spawn(move || {
            for request in requests {
                request();
            }
        })?;
    Ok(SPAWNER.get_or_init(|| queue))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread that asked for a child exits at once; the child must
    /// still be alive afterwards, as it would not be with a plain spawn.
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let child = std::thread::spawn(|| {
            let mut sleep = std::process::Command::new("sleep");
            sleep.arg("30");
            spawn_std(sleep).expect("sleep starts")
        })
        .join()
        .expect("the asking thread ends cleanly");
        let mut child = child;
        // The kernel sends the parent-death signal as the thread's exit
        // completes; a killed child has a status well within this wait.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            child.try_wait().expect("waitable").is_none(),
            "the child died with the thread that asked for it"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A tokio child spawned from a runtime thread can be awaited there.
    #[test]
    fn a_tokio_child_is_tied_to_the_callers_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let status = runtime.block_on(async {
            let command = tokio::process::Command::new("false");
            spawn(command).expect("false starts").wait().await.unwrap()
        });
        assert_eq!(status.code(), Some(1));
    }
}
