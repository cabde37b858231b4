//! Writing to stdout so that a command piped into `head`, `jq` or `less` ends quietly,
//! with status 0, when the reader closes the pipe (as ripgrep does), instead of panicking.

use std::io::Write;

/// Writes one line to stdout; a closed pipe is an error that [`is_closed_pipe`] knows.
pub fn line(args: std::fmt::Arguments) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

/// `println!` that returns the write's error instead of panicking on it.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))?
    };
}
pub(crate) use say;

/// Whether a command failed only because the reader of stdout went away.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
