use clap::Parser;
use starrocks_model::Rules;
use starrocks_operator::cli::{Cli, Command, JournalCommand};
use starrocks_operator::journal::replay::{export_command, replay_command};
use std::io::Write;

/// Exit status when today's model diverges from a replayed journal.
const EXIT_DIVERGED: i32 = 1;
/// Exit status when the input cannot be read or the output written.
const EXIT_ERROR: i32 = 2;

fn main() {
    let cli = Cli::parse();
    match cli.command {
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
