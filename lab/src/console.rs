//! The serial console: a byte stream from the target, searched with regexes.
//!
//! A reader task appends everything the target sends to a transcript. Waits
//! search the transcript from a cursor that advances past each match, so two
//! expected lines that arrive in one read both match, in order. A match must
//! lie in complete lines, so `t=(\d+)` never matches half a number; text
//! without a final newline (a prompt) matches once the line has been quiet
//! for [`QUIET`] or the stream has ended.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a partial line must stay quiet before a wait may match it.
pub const QUIET: Duration = Duration::from_millis(20);
/// The transcript keeps at most this many bytes; older consumed ones go.
const CAPACITY: usize = 16 << 20;
/// At most this many arrival times of reads are kept for line readers.
const ARRIVALS: usize = 1 << 16;

/// Errors of the serial console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The pattern did not appear in time.
    #[error("`{pattern}` did not appear on the serial console within {after:?}; {}", describe_tail(.tail))]
    Timeout {
        /// The pattern.
        pattern: String,
        /// How long the wait lasted.
        after: Duration,
        /// The last unmatched output.
        tail: String,
    },
    /// The target closed the console before the pattern appeared.
    #[error("the serial console closed before `{pattern}` appeared; {}", describe_tail(.tail))]
    Closed {
        /// The pattern.
        pattern: String,
        /// The last unmatched output.
        tail: String,
    },
    /// Writing to the console failed.
    #[error("cannot write to the serial console: {0}")]
    Write(std::io::Error),
}

fn describe_tail(tail: &str) -> String {
    if tail.is_empty() {
        "the target printed nothing new".to_owned()
    } else {
        format!("last output: {tail:?}")
    }
}

/// A successful wait.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialMatch {
    /// The matched text.
    pub text: String,
    /// Named capture groups that took part in the match, in pattern order.
    pub captures: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Transcript {
    bytes: Vec<u8>,
    /// Bytes dropped from the front to respect [`CAPACITY`].
    dropped: usize,
    /// Absolute offset up to which waits have consumed output.
    consumed: usize,
    closed: bool,
    last_rx: Option<Instant>,
    /// When recent reads arrived, by the absolute offset just after them.
    arrivals: VecDeque<(usize, Instant)>,
}

/// A serial console over any byte stream.
pub struct Console {
    transcript: Arc<Mutex<Transcript>>,
    changed: watch::Receiver<usize>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// Starts reading `stream` in a background task.
    pub fn new<S>(stream: S) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut read, writer) = tokio::io::split(stream);
        let transcript = Arc::new(Mutex::new(Transcript::default()));
        let (tx, changed) = watch::channel(0usize);
        let shared = Arc::clone(&transcript);
        let reader = tokio::spawn(async move {
            let mut chunk = vec![0u8; 8192];
            loop {
                let n = read.read(&mut chunk).await.unwrap_or(0);
                let mut t = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if n == 0 {
                    t.closed = true;
                    drop(t);
                    tx.send_modify(|v| *v += 1);
                    return;
                }
                t.bytes.extend_from_slice(&chunk[..n]);
                let now = Instant::now();
                t.last_rx = Some(now);
                let end = t.dropped + t.bytes.len();
                if t.arrivals.len() == ARRIVALS {
                    t.arrivals.pop_front();
                }
                t.arrivals.push_back((end, now));
                if t.bytes.len() > CAPACITY {
                    let drop_to = (t.consumed - t.dropped).min(t.bytes.len() - CAPACITY / 2);
                    t.bytes.drain(..drop_to);
                    t.dropped += drop_to;
                }
                drop(t);
                tx.send_modify(|v| *v += 1);
            }
        });
        Console {
            transcript,
            changed,
            writer: Box::new(writer),
            reader,
        }
    }

    /// Writes `bytes` to the target.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(ConsoleError::Write)?;
        self.writer.flush().await.map_err(ConsoleError::Write)
    }

    /// A reader of complete lines from the output not yet consumed. It shares
    /// the console's cursor and needs no borrow of the console, so it can
    /// read while the console writes.
    pub fn lines(&self) -> LineReader {
        LineReader {
            transcript: Arc::clone(&self.transcript),
            changed: self.changed.clone(),
        }
    }

    /// Waits up to `timeout` for the stream to end, so that the transcript
    /// holds all the target wrote; whether it ended.
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let closed = async {
            while !self.lock().closed {
                if self.changed.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::time::timeout(timeout, closed).await.is_ok()
    }

    /// Everything the target has printed so far (up to the transcript's capacity).
    pub fn transcript(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// Waits for output not yet consumed and consumes all of it; an empty
    /// result means the stream has ended.
    pub async fn read_new(&mut self) -> Vec<u8> {
        loop {
            {
                let mut t = self.lock();
                let start = t.consumed.saturating_sub(t.dropped).min(t.bytes.len());
                if start < t.bytes.len() || t.closed {
                    let fresh = t.bytes[start..].to_vec();
                    t.consumed += fresh.len();
                    return fresh;
                }
            }
            if self.changed.changed().await.is_err() {
                // The reader ended: whatever it left is read on the next pass.
                let t = self.lock();
                if t.consumed - t.dropped >= t.bytes.len() {
                    return Vec::new();
                }
            }
        }
    }

    /// Waits until `pattern` matches output not yet consumed by an earlier
    /// wait, and consumes it up to the end of the match. With no `timeout`
    /// the wait ends only with a match or the end of the stream: the caller
    /// must bound it.
    pub async fn wait_for(
        &mut self,
        pattern: &Regex,
        timeout: Option<Duration>,
    ) -> Result<SerialMatch, ConsoleError> {
        self.wait_for_any(&[pattern], timeout)
            .await
            .map(|(_, found)| found)
    }

    /// Like [`Self::wait_for`] with several patterns: the match that starts
    /// first wins (the earlier pattern on a tie); returns its index.
    pub async fn wait_for_any(
        &mut self,
        patterns: &[&Regex],
        timeout: Option<Duration>,
    ) -> Result<(usize, SerialMatch), ConsoleError> {
        let started = Instant::now();
        let deadline = timeout.and_then(|t| started.checked_add(t));
        let describe = || {
            patterns
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join("` or `")
        };
        loop {
            let (found, quiet_at, closed, tail) = self.search(patterns);
            if let Some(m) = found {
                return Ok(m);
            }
            if closed {
                return Err(ConsoleError::Closed {
                    pattern: describe(),
                    tail,
                });
            }
            let recheck = match (quiet_at, deadline) {
                (Some(q), Some(d)) => Some(q.min(d)),
                (q, d) => q.or(d),
            };
            tokio::select! {
                _ = self.changed.changed() => {}
                _ = sleep_until(recheck) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(ConsoleError::Timeout {
                            pattern: describe(),
                            after: started.elapsed(),
                            tail,
                        });
                    }
                }
            }
        }
    }

    /// One search of the unconsumed output. Returns the earliest match and
    /// its pattern's index, when a quiet partial line should be searched
    /// again, whether the stream ended, and the unconsumed tail for messages.
    #[allow(clippy::type_complexity)]
    fn search(
        &self,
        patterns: &[&Regex],
    ) -> (Option<(usize, SerialMatch)>, Option<Instant>, bool, String) {
        let mut t = self.lock();
        let start = t.consumed.saturating_sub(t.dropped).min(t.bytes.len());
        let window = &t.bytes[start..];
        let complete = window
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let quiet = t.last_rx.is_some_and(|at| at.elapsed() >= QUIET);
        let searchable = if t.closed || quiet {
            window.len()
        } else {
            complete
        };
        let first = patterns
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.captures(&window[..searchable]).map(|c| (i, p, c)))
            .min_by_key(|(i, _, caps)| (caps.get(0).map_or(usize::MAX, |m| m.start()), *i));
        if let Some((index, pattern, caps)) = first {
            let whole = caps.get(0).expect("group 0 always takes part");
            let text = String::from_utf8_lossy(whole.as_bytes()).into_owned();
            let captures = pattern
                .capture_names()
                .flatten()
                .filter_map(|name| {
                    caps.name(name).map(|m| {
                        (
                            name.to_owned(),
                            String::from_utf8_lossy(m.as_bytes()).into(),
                        )
                    })
                })
                .collect();
            let end = whole.end();
            let closed = t.closed;
            t.consumed += end;
            return (
                Some((index, SerialMatch { text, captures })),
                None,
                closed,
                String::new(),
            );
        }
        let partial = complete < window.len();
        let quiet_at = (partial && !quiet)
            .then(|| t.last_rx.map(|at| at + QUIET))
            .flatten();
        (None, quiet_at, t.closed, last_line(window))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Transcript> {
        self.transcript
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One complete line of console output.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The text, without its `\n` or `\r\n` (invalid UTF-8 replaced).
    pub text: String,
    /// When the line's last byte arrived from the target.
    pub at: Instant,
}

/// What [`LineReader::next`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum NextLine {
    /// A complete line, now consumed.
    Line(Line),
    /// The deadline passed first; `tail` is the pending partial line.
    TimedOut {
        /// Output after the last complete line.
        tail: String,
    },
    /// The stream ended first; `tail` is a last line without a newline.
    Closed {
        /// Output after the last complete line.
        tail: String,
    },
}

/// Reads the console's output line by line (see [`Console::lines`]).
pub struct LineReader {
    transcript: Arc<Mutex<Transcript>>,
    changed: watch::Receiver<usize>,
}

impl LineReader {
    /// The next complete line of output not yet consumed, waiting until
    /// `deadline` at most (with `None` the caller bounds the wait).
    pub async fn next(&mut self, deadline: Option<Instant>) -> NextLine {
        loop {
            {
                let mut t = self
                    .transcript
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(line) = take_line(&mut t) {
                    return NextLine::Line(line);
                }
                let start = t.consumed.saturating_sub(t.dropped).min(t.bytes.len());
                let tail = last_line(&t.bytes[start..]);
                if t.closed {
                    return NextLine::Closed { tail };
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return NextLine::TimedOut { tail };
                }
            }
            tokio::select! {
                changed = self.changed.changed() => {
                    if changed.is_err() {
                        // The reader task is gone: the next pass sees `closed`
                        // or what it left; never spin on a dead channel.
                        let t = self.transcript.lock().unwrap_or_else(PoisonError::into_inner);
                        if !t.closed {
                            let start = t.consumed.saturating_sub(t.dropped).min(t.bytes.len());
                            return NextLine::Closed { tail: last_line(&t.bytes[start..]) };
                        }
                    }
                }
                _ = sleep_until(deadline) => {}
            }
        }
    }
}

/// Consumes the first complete line of unconsumed output, stamped with the
/// arrival of its last byte.
fn take_line(t: &mut Transcript) -> Option<Line> {
    let start = t.consumed.saturating_sub(t.dropped).min(t.bytes.len());
    let window = &t.bytes[start..];
    let newline = window.iter().position(|&b| b == b'\n')?;
    let raw = &window[..newline];
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw).into_owned();
    let end = t.dropped + start + newline + 1;
    t.consumed = end;
    while t.arrivals.front().is_some_and(|&(offset, _)| offset < end) {
        t.arrivals.pop_front();
    }
    let at = t
        .arrivals
        .front()
        .map(|&(_, at)| at)
        .or(t.last_rx)
        .unwrap_or_else(Instant::now);
    Some(Line { text, at })
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The last non-empty line of `bytes`, shortened for a one-line message.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut line = line.trim().to_owned();
    if line.len() > 120 {
        let cut = (0..=117)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap()
    }

    #[tokio::test]
    async fn two_lines_in_one_read_match_in_order() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"A=1\nB=2\n").await.unwrap();
        let a = console
            .wait_for(&re(r"A=(?P<a>\d+)"), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        let b = console
            .wait_for(&re(r"B=(?P<b>\d+)"), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(a.captures, vec![("a".to_owned(), "1".to_owned())]);
        assert_eq!(b.captures, vec![("b".to_owned(), "2".to_owned())]);
        // A consumed match does not match again.
        let again = console
            .wait_for(&re("A=1"), Some(Duration::from_millis(50)))
            .await;
        assert!(
            matches!(again, Err(ConsoleError::Timeout { .. })),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn a_number_split_across_reads_is_not_cut() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"t=12").await.unwrap();
        let waiter = tokio::spawn(async move {
            let m = console
                .wait_for(&re(r"t=(?P<t>\d+)"), Some(Duration::from_secs(5)))
                .await;
            m.unwrap().captures[0].1.clone()
        });
        guest.write_all(b"345\n").await.unwrap();
        assert_eq!(waiter.await.unwrap(), "12345");
    }

    #[tokio::test]
    async fn a_prompt_without_newline_matches_once_quiet() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"login: ").await.unwrap();
        let m = console
            .wait_for(&re("login: "), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(m.text, "login: ");
    }

    #[tokio::test]
    async fn timeout_reports_the_last_output() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"booting\nstill booting\n").await.unwrap();
        let err = console
            .wait_for(&re("READY"), Some(Duration::from_millis(100)))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`READY` did not appear"), "{msg}");
        assert!(msg.contains("\"still booting\""), "{msg}");
    }

    #[tokio::test]
    async fn closing_ends_a_wait_at_once() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"bye\n").await.unwrap();
        drop(guest);
        let err = console.wait_for(&re("READY"), None).await.unwrap_err();
        assert!(matches!(err, ConsoleError::Closed { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn read_new_returns_each_byte_once_then_the_end() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"abc").await.unwrap();
        assert_eq!(console.read_new().await, b"abc");
        guest.write_all(b"d").await.unwrap();
        drop(guest);
        assert_eq!(console.read_new().await, b"d");
        assert!(console.read_new().await.is_empty());
    }

    #[tokio::test]
    async fn the_earliest_of_several_patterns_wins() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"S 1\nS 2\nDONE\nS 3\n").await.unwrap();
        let (sample, done) = (re(r"S (?P<v>\d)"), re("DONE"));
        let mut seen = Vec::new();
        loop {
            let (i, m) = console
                .wait_for_any(&[&sample, &done], Some(Duration::from_secs(5)))
                .await
                .unwrap();
            if i == 1 {
                break;
            }
            seen.push(m.captures[0].1.clone());
        }
        assert_eq!(seen, ["1", "2"]);
    }

    #[tokio::test]
    async fn lines_come_whole_without_their_ending_and_share_the_cursor() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        guest.write_all(b"READY\r\none\r\ntw").await.unwrap();
        console
            .wait_for(&re("READY"), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        let mut lines = console.lines();
        let soon = || Some(Instant::now() + Duration::from_secs(5));
        // The rest of the READY line, then `one`.
        let NextLine::Line(rest) = lines.next(soon()).await else {
            panic!("a line")
        };
        assert_eq!(rest.text, "");
        let NextLine::Line(one) = lines.next(soon()).await else {
            panic!("a line")
        };
        assert_eq!(one.text, "one");
        assert!(one.at <= Instant::now());
        // A partial line is not a line until its newline arrives.
        let early = Some(Instant::now() + Duration::from_millis(50));
        assert_eq!(
            lines.next(early).await,
            NextLine::TimedOut { tail: "tw".into() }
        );
        let before = Instant::now();
        guest.write_all(b"o\n").await.unwrap();
        let NextLine::Line(two) = lines.next(soon()).await else {
            panic!("a line")
        };
        assert_eq!(two.text, "two");
        assert!(two.at >= before, "stamped when its last byte arrived");
        guest.write_all(b"bye").await.unwrap();
        drop(guest);
        assert_eq!(
            lines.next(None).await,
            NextLine::Closed { tail: "bye".into() }
        );
    }

    #[tokio::test]
    async fn send_reaches_the_guest() {
        let (mut guest, host) = duplex(1024);
        let mut console = Console::new(host);
        console.send(b"ping\n").await.unwrap();
        let mut buf = [0u8; 5];
        guest.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping\n");
    }
}
