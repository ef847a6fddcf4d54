//! The `watchpost` binary: parse arguments, load config (exit 2 listing every bad key),
//! set up logging, run the service until SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use watchpost::{Config, Service};

const USAGE: &str =
    "usage: watchpost [--config FILE] | --check-config [FILE] | --version | --help\n\
  Configuration: FILE (or $WATCHPOST_CONFIG), then WATCHPOST_<SECTION>__<KEY> overrides.\n\
  --check-config loads and checks the configuration (every problem at once) and exits\n\
  0 when it is valid, 2 when it is not, without starting anything.\n\
  Logging: RUST_LOG (default: info; PostgreSQL client notices at warn).";

/// The filter when `RUST_LOG` is not set: `info`, with the PostgreSQL client's notice
/// lines (it logs server notices at info) kept out unless asked for.
const DEFAULT_LOG: &str = "info,tokio_postgres=warn";

/// What the arguments ask for: the config file, and whether only to check it.
struct Args {
    path: Option<PathBuf>,
    check_only: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        path: std::env::var_os("WATCHPOST_CONFIG").map(PathBuf::from),
        check_only: false,
    };
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" | "-c" => match it.next() {
                Some(p) => out.path = Some(PathBuf::from(p)),
                None => return Err("--config needs a file path".into()),
            },
            a if a.starts_with("--config=") => {
                out.path = Some(PathBuf::from(&a["--config=".len()..]))
            }
            "--check-config" => {
                out.check_only = true;
                if let Some(p) = it.next_if(|p| !p.starts_with('-')) {
                    out.path = Some(PathBuf::from(p));
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(out)
}

/// `WATCHPOST_*` variables that set nothing, each with the nearest config variable.
fn unused_variable_lines() -> Vec<String> {
    watchpost::config::unused_variables(std::env::vars().map(|(k, _)| k))
        .into_iter()
        .map(|(name, nearest)| match nearest {
            Some(n) => format!("{name} sets nothing (did you mean {n}?); config variables are WATCHPOST_<SECTION>__<KEY>, with two underscores"),
            None => format!("{name} sets nothing; config variables are WATCHPOST_<SECTION>__<KEY>, with two underscores"),
        })
        .collect()
}

fn main() -> ExitCode {
    watchpost::perf::allocator::limit_arenas();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-V" || a == "--version") {
        println!("watchpost {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("watchpost: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let unused = unused_variable_lines();
    let config = match Config::load_checked(
        args.path.as_deref(),
        std::env::vars(),
        &watchpost::notify::check_config,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("watchpost: {e}");
            for line in &unused {
                eprintln!("watchpost: note: {line}");
            }
            return ExitCode::from(2);
        }
    };
    if args.check_only {
        for line in &unused {
            eprintln!("watchpost: warning: {line}");
        }
        let from = args
            .path
            .as_deref()
            .map_or("the defaults".to_string(), |p| p.display().to_string());
        println!("watchpost: the configuration is valid ({from} and the environment)");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    for line in &unused {
        tracing::warn!("{line}");
    }
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
