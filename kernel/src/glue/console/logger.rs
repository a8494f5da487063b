//! The `log` logger: `[    s.uuuuuu] LEVEL target: message`, timebase timestamps.

use log::{LevelFilter, Log, Metadata, Record};

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, _m: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &Record<'_>) {
        let us = crate::clock::now_us();
        super::log_line(format_args!(
            "[{:5}.{:06}] {:<5} {}: {}\n",
            us / 1_000_000,
            us % 1_000_000,
            r.level(),
            r.target()
                .trim_start_matches("lpar_cmm::")
                .trim_start_matches("kernel::")
                .trim_start_matches("glue::"),
            r.args()
        ));
    }

    fn flush(&self) {}
}

/// Installs the logger (once).
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
