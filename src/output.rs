//! What commands print on stdout, written so that a reader that goes away ends the output
//! quietly (see [`emit`]).

/// Writes a command's result on stdout. A reader that went away (`leadsync status | head`)
/// ends the output quietly, not with a panic: the command still finishes and exits as it
/// would have. Any other write error is said once on stderr.
pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(err) = std::io::stdout().lock().write_fmt(args)
        && err.kind() != std::io::ErrorKind::BrokenPipe
        && !FAILED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        eprintln!("leadsync: cannot write the output: {err}");
    }
}

macro_rules! out {
    ($($arg:tt)*) => { $crate::output::emit(format_args!($($arg)*)) };
}

macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
