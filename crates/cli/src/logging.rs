//! Log output: to stderr, in colour only when stderr is a terminal.

use std::io::IsTerminal;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// What `me2b demo` logs unless `--log` says otherwise: warnings, but not
/// sqlx's "slow statement" warnings, which on a busy machine would interrupt
/// the demo's story (a slow statement there is no fault of the operator's).
pub const DEMO_FILTER: &str = "warn,sqlx=error";

/// Installs the process's log subscriber (once; later calls do nothing).
pub fn init(filter: &str) {
    let _ = subscriber(filter, std::io::stderr, std::io::stderr().is_terminal()).try_init();
}

/// A subscriber writing to `writer`, with terminal colour codes only when `ansi`.
fn subscriber<W>(
    filter: &str,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    fn logged(filter: &str, ansi: bool) -> String {
        let out = Buffer::default();
        tracing::subscriber::with_default(subscriber(filter, out.clone(), ansi), || {
            // What sqlx logs when a statement exceeds its alert threshold.
            tracing::warn!(target: "sqlx::query", summary = "insert into …", "slow statement: execution time exceeded alert threshold");
            tracing::warn!("a warning of the node's own");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_demo_logs_no_slow_statements_and_no_colour_codes_into_a_pipe() {
        let text = logged(DEMO_FILTER, false);
        assert!(!text.contains("slow statement"), "{text}");
        assert!(text.contains("a warning of the node's own"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn colour_codes_only_for_a_terminal_and_serve_keeps_slow_statements() {
        assert!(logged("info", true).contains('\u{1b}'));
        let text = logged("info", false);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("slow statement"), "{text}");
    }
}
