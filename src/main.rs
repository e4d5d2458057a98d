use clap::Parser;
use starrocks_operator::cli::{Cli, Command};

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
            Ok(yaml) => print!("{yaml}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        },
    }
}
