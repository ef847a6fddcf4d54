//! The `watchpost` binary: parse arguments, load config (exit 2 listing every bad key),
//! set up logging, run the service until SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use watchpost::{Config, Service};

const USAGE: &str = "usage: watchpost [--config FILE] | --version | --help\n\
  Configuration: FILE (or $WATCHPOST_CONFIG), then WATCHPOST_<SECTION>__<KEY> overrides.\n\
  Logging: RUST_LOG (default: info; PostgreSQL client notices at warn).";

/// The filter when `RUST_LOG` is not set: `info`, with the PostgreSQL client's notice
/// lines (it logs server notices at info) kept out unless asked for.
const DEFAULT_LOG: &str = "info,tokio_postgres=warn";

fn config_path(args: &[String]) -> Result<Option<PathBuf>, String> {
    let mut path = std::env::var_os("WATCHPOST_CONFIG").map(PathBuf::from);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" | "-c" => match it.next() {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err("--config needs a file path".into()),
            },
            a if a.starts_with("--config=") => path = Some(PathBuf::from(&a["--config=".len()..])),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(path)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-V" || a == "--version") {
        println!("watchpost {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let path = match config_path(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("watchpost: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(path.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("watchpost: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("watchpost: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        let shutdown = watchpost::service::shutdown_signal()?;
        let service = Service::start(config).await?;
        service.run_until(shutdown).await?;
        Ok(())
    });
    // Blocking work still in flight (a read on a hung share, say) must not keep the
    // process alive: the workers were already stopped within the grace period.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watchpost: {e:#}");
            ExitCode::FAILURE
        }
    }
}
