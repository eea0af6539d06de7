//! A progress bar for long kernel computations: blocks done and time left, on stderr, shown
//! once the computation has run for about a second (`JJT_PROGRESS_DELAY_MS` sets another
//! delay, as the CLI's tests do); never with `--quiet` or when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows progress if the work turns out to be long.
pub(crate) struct Progress {
    total: usize,
    enabled: bool,
    delay: Duration,
    bar: Mutex<Option<ProgressBar>>,
}

/// How long a computation runs before the bar appears.
const DELAY: Duration = Duration::from_secs(1);

impl Progress {
    pub(crate) fn new(total: usize, quiet: bool) -> Progress {
        Progress {
            total,
            enabled: !quiet && std::io::stderr().is_terminal(),
            delay: std::env::var("JJT_PROGRESS_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(DELAY, Duration::from_millis),
            bar: Mutex::new(None),
        }
    }

    pub(crate) fn update(&self, done: usize, elapsed: Duration) {
        if !self.enabled || elapsed < self.delay {
            return;
        }
        let Ok(mut bar) = self.bar.lock() else { return };
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(self.total as u64);
            let style = ProgressStyle::with_template(
                "kernel blocks {bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        b.set_position(done as u64);
    }

    pub(crate) fn finish(&self) {
        if let Ok(mut bar) = self.bar.lock()
            && let Some(b) = bar.take()
        {
            b.finish();
        }
    }
}
