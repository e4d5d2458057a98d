//! Command-line interface of the `starrocks-operator` binary.

use clap::{Parser, Subcommand};

/// The `starrocks-operator` command line.
#[derive(Debug, Parser)]
#[command(name = "starrocks-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of the operator binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version of the lifecycle model and its journal record format.
    Version,
    /// Print the StarRocksCluster CustomResourceDefinition as YAML (the content of
    /// `crds/starrocks.com_starrocksclusters.yaml`).
    Crd,
}
