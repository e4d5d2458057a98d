use clap::Parser;
use starrocks_model::Rules;
use starrocks_operator::cli::{Cli, Command, JournalCommand};
use starrocks_operator::demo::{DemoError, DemoOptions};
use starrocks_operator::journal::replay::{export_command, replay_command};
use std::io::Write;
use std::time::Duration;

/// At most 2 glibc malloc arenas (`M_ARENA_MAX`, mallopt(3)), set before any thread starts.
/// glibc gives each thread that allocates concurrently its own arena, up to 8 per core, and
/// memory freed in an arena stays with it: after a start with 1,000 clusters the operator was
/// resident at 186.8 MiB for about 100 MiB of live heap (heaptrack); with 2 arenas, 140.8 MiB
/// (scale bench). mimalloc was tried instead and was worse (505.7 MiB). When the environment
/// sets `MALLOC_ARENA_MAX`, glibc has read it already and it is left as set.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists, and a rejected value (return 0) leaves glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Exit status when today's model diverges from a replayed journal.
const EXIT_DIVERGED: i32 = 1;
/// Exit status when the input cannot be read or the output written.
const EXIT_ERROR: i32 = 2;

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_ERROR);
        }
    }
}

fn main() {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            if let Err(e) = runtime().block_on(starrocks_operator::run::run(args)) {
                eprintln!("error: {e}");
                std::process::exit(EXIT_ERROR);
            }
        }
        Command::Demo(args) => {
            let journal = args.journal.unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "starrocks-operator-demo-{}-{}",
                    std::process::id(),
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ))
            });
            let options = DemoOptions {
                journal,
                pod_ready_delay: Duration::from_secs_f64(args.pod_ready_seconds.clamp(0.0, 60.0)),
                phase_timeout: Duration::from_secs(60),
            };
            if let Err(e) = runtime().block_on(starrocks_operator::demo::run(options)) {
                eprintln!("error: {e}");
                std::process::exit(match e {
                    DemoError::Order(_) => EXIT_DIVERGED,
                    _ => EXIT_ERROR,
                });
            }
        }
        Command::Version => {
            println!(
                "starrocks-operator {} (journal format {})",
                env!("CARGO_PKG_VERSION"),
                starrocks_model::journal::FORMAT_VERSION
            );
        }
        Command::Crd => match starrocks_operator::crd::generate::crd_yaml() {
            // A closed pipe (`crd | head`) is not an error worth a panic.
            Ok(yaml) => match std::io::stdout().lock().write_all(yaml.as_bytes()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => {
                    eprintln!("error: writing the CRD to stdout: {e}");
                    std::process::exit(EXIT_ERROR);
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        },
        Command::Replay(args) => {
            let mut out = std::io::stdout().lock();
            let result = replay_command(&args.source(), Rules::default(), &mut out);
            // `process::exit` runs no destructors: flush the timeline first.
            let _ = out.flush();
            drop(out);
            match result {
                Ok(outcome) => {
                    if let Some((label, divergence)) = outcome.first_divergence() {
                        eprintln!(
                            "error: {label}: today's model decides differently at {divergence}. \
                             If the operator was upgraded since these records were written, \
                             this shows what the new version changes; otherwise it is a bug: \
                             report it with `journal export` of this cluster"
                        );
                        std::process::exit(EXIT_DIVERGED);
                    }
                }
                Err(e) => {
                    eprintln!("error: replay: {e}");
                    std::process::exit(EXIT_ERROR);
                }
            }
        }
        Command::Journal {
            command: JournalCommand::Export { journal, cluster },
        } => {
            let out = std::io::stdout().lock();
            if let Err(e) = export_command(&journal, &cluster, out) {
                eprintln!("error: journal export: {e}");
                std::process::exit(EXIT_ERROR);
            }
        }
    }
}
