//! The wire format: one JSON object per line, in both directions.

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Reads whole lines; cancel-safe, because a partly read line stays in `buf`.
pub(crate) struct LineReader<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            reader: BufReader::new(reader),
            buf: Vec::new(),
        }
    }

    /// The next line (with its terminator, if any), or `None` at end of stream.
    pub(crate) async fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let read = self.reader.read_until(b'\n', &mut self.buf).await?;
        if read == 0 && self.buf.is_empty() {
            return Ok(None);
        }
        Ok(Some(std::mem::take(&mut self.buf)))
    }
}

/// One message from QEMU, sorted by kind.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The greeting QEMU sends first (`{"QMP": {...}}`).
    Greeting(Value),
    /// An asynchronous event (`{"event": ..., "data": ..., "timestamp": ...}`).
    Event {
        name: String,
        message: Map<String, Value>,
    },
    /// A command's reply: `Ok` holds its `return` member, `Err` its `error` member.
    Reply {
        id: Option<u64>,
        body: Result<Value, Value>,
    },
    /// A JSON value that is none of the above.
    Unknown(Value),
}

/// Parses one line; `None` for blank lines and for lines that are not JSON,
/// which are logged and skipped.
pub(crate) fn parse_line(line: &[u8]) -> Option<Incoming> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(err) => {
            tracing::warn!(
                line = %String::from_utf8_lossy(line).trim_end(),
                %err,
                "skipping a QMP line that is not JSON"
            );
            return None;
        }
    };
    Some(classify(value))
}

fn classify(value: Value) -> Incoming {
    let Value::Object(mut obj) = value else {
        return Incoming::Unknown(value);
    };
    if obj.contains_key("QMP") {
        return Incoming::Greeting(Value::Object(obj));
    }
    if let Some(name) = obj.get("event").and_then(Value::as_str) {
        return Incoming::Event {
            name: name.to_owned(),
            message: obj,
        };
    }
    let id = obj.get("id").and_then(Value::as_u64);
    if let Some(ret) = obj.remove("return") {
        return Incoming::Reply { id, body: Ok(ret) };
    }
    if let Some(err) = obj.remove("error") {
        return Incoming::Reply { id, body: Err(err) };
    }
    Incoming::Unknown(Value::Object(obj))
}

#[derive(Serialize)]
struct Request<'a> {
    execute: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Value>,
    id: u64,
}

/// Encodes a command as one line, terminator included. Empty arguments
/// are left out: QEMU reads its monitor one byte at a time, so every byte
/// costs it a read.
pub(crate) fn encode_command<A: Serialize>(
    name: &str,
    arguments: Option<A>,
    id: u64,
) -> serde_json::Result<Vec<u8>> {
    let arguments = arguments
        .map(serde_json::to_value)
        .transpose()?
        .filter(|args| args.as_object().is_none_or(|members| !members.is_empty()));
    let mut line = serde_json::to_vec(&Request {
        execute: name,
        arguments,
        id,
    })?;
    line.push(b'\n');
    Ok(line)
}
