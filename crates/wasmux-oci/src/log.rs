//! runc's log: with `--log FILE`, one line per event, `{"level","msg","time"}` JSON
//! under `--log-format json` (containerd's runc shim reports the last `error` line's
//! `msg` when a command fails) or logrus-style text. Events of the wasmux library (a
//! mapping warning, a cache problem) land there too, through `tracing`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::error::{OciError, Result};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `time="..." level=error msg="..."`.
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`.
    Json,
}

/// Sends this process's events to `path` (appending; the file is shared by every
/// command on a container) from warnings up, or from debug with `--debug`. Without
/// a log file only `--debug` logs, to stderr, since stderr may be the container's.
pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) -> Result<()> {
    let out = match path {
        Some(path) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| OciError::io(format!("opening log file {}", path.display()), e))?,
        None if debug => File::from(
            rustix::io::dup(std::io::stderr())
                .map_err(|e| OciError::io("duplicating stderr", e))?,
        ),
        None => return Ok(()),
    };
    let level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    let layer = RuncLog {
        out: Mutex::new(out),
        format,
    }
    .with_filter(level);
    // Only fails if a subscriber is already set, which main never does twice.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
    Ok(())
}

struct RuncLog {
    out: Mutex<File>,
    format: LogFormat,
}

impl<S: Subscriber> Layer<S> for RuncLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message::default();
        event.record(&mut message);
        let line = format_line(self.format, *event.metadata().level(), &message.0);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line: lines of concurrent commands on the same file stay whole.
        let _ = out.write_all(line.as_bytes());
    }
}

fn format_line(format: LogFormat, level: Level, msg: &str) -> String {
    let level = match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        _ => "debug",
    };
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    match format {
        LogFormat::Json => {
            let mut line =
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string();
            line.push('\n');
            line
        }
        LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

/// The event's message, then its other fields as `key=value`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runcs_shape() {
        let line = format_line(LogFormat::Json, Level::ERROR, "bad \"bundle\"");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "bad \"bundle\"");
        assert!(value["time"].as_str().unwrap().ends_with('Z'));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = format_line(LogFormat::Text, Level::WARN, "two\nlines");
        assert!(line.contains(r#"level=warning msg="two\nlines""#), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }
}
