//! The offline commands around the journal, as library functions the binary calls:
//! `replay` ([`replay_command`]) and `journal export` ([`export_command`]).
//!
//! Replay re-runs each recorded event through today's model
//! ([`starrocks_model::journal::replay_with`]), prints a timeline (one record per two lines:
//! sequence number, time, event kind and detail; state before -> after and actions) and stops
//! at the first record where today's model decides differently.

use super::{
    ClusterKey, JournalError, JournalStore, OpenOptions, SledJournal, jsonl, parse_cluster_name,
};
use starrocks_model::journal::{Divergence, Record, replay_with};
use starrocks_model::observe::ComponentObservation;
use starrocks_model::{Action, Event, LifecycleState, Rules, Step};
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

/// Where `replay` reads records from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySource {
    /// A sled journal directory; one cluster (`NS/NAME` or a UID), or every cluster in it.
    Journal {
        /// The journal directory.
        dir: PathBuf,
        /// `NS/NAME` or UID; `None` replays every cluster's log.
        cluster: Option<String>,
    },
    /// A JSON Lines export (one cluster's log).
    File(PathBuf),
}

/// The replay of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReplay {
    /// What was replayed: the cluster, or the file name.
    pub label: String,
    /// Records in the log.
    pub records: usize,
    /// The state after the last record, or the first divergence.
    pub result: Result<LifecycleState, Divergence>,
}

/// The outcome of `replay`: one entry per log replayed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayOutcome {
    /// The logs, in the order replayed.
    pub logs: Vec<LogReplay>,
}

impl ReplayOutcome {
    /// The first log that diverged, with its divergence.
    pub fn first_divergence(&self) -> Option<(&str, &Divergence)> {
        self.logs.iter().find_map(|log| match &log.result {
            Err(d) => Some((log.label.as_str(), d)),
            Ok(_) => None,
        })
    }
}

/// Runs `replay`: reads the records from `source`, replays them with `rules` (production:
/// [`Rules::default`]) and writes the timeline and a summary line per log to `out`.
///
/// A divergence is not an error of this function: it is reported in the outcome (the binary
/// exits non-zero on it). The journal is opened with [`OpenOptions::read_only`]: nothing is
/// created, moved or trimmed.
///
/// # Errors
/// Reading the journal or file ([`JournalError::NotFound`], [`JournalError::Locked`],
/// [`JournalError::Corrupt`], [`JournalError::BadLine`], ...), an unknown `--cluster`
/// ([`JournalError::UnknownCluster`]), or writing to `out` ([`JournalError::Io`]).
pub fn replay_command(
    source: &ReplaySource,
    rules: Rules,
    out: &mut dyn Write,
) -> Result<ReplayOutcome, JournalError> {
    let mut outcome = ReplayOutcome::default();
    match source {
        ReplaySource::File(path) => {
            let records = read_file(path)?;
            let label = path.display().to_string();
            outcome
                .logs
                .push(replay_records(&label, &records, rules, out)?);
        }
        ReplaySource::Journal { dir, cluster } => {
            let (journal, _) = SledJournal::open(dir, OpenOptions::read_only())?;
            let clusters = match cluster {
                Some(selector) => vec![select_cluster(&journal, selector)?],
                None => journal
                    .clusters()?
                    .into_iter()
                    .map(|log| log.cluster)
                    .collect(),
            };
            if clusters.is_empty() {
                writeln!(
                    out,
                    "the journal at {} holds no cluster logs",
                    dir.display()
                )
                .map_err(write_err)?;
            }
            for (i, cluster) in clusters.iter().enumerate() {
                if i > 0 {
                    writeln!(out).map_err(write_err)?;
                }
                let records = journal.read(&cluster.uid)?;
                outcome
                    .logs
                    .push(replay_records(&cluster.to_string(), &records, rules, out)?);
            }
        }
    }
    Ok(outcome)
}

/// Replays one log: writes a header, the timeline of `records` and a summary line to `out`.
/// The divergent record, if any, is the last one printed, followed by what differs.
///
/// # Errors
/// [`JournalError::Io`] when writing to `out` fails.
pub fn replay_records(
    label: &str,
    records: &[Record],
    rules: Rules,
    out: &mut dyn Write,
) -> Result<LogReplay, JournalError> {
    writeln!(out, "== {label}: {} records", records.len()).map_err(write_err)?;
    let mut printed = 0usize;
    let mut write_result = Ok(());
    let result = replay_with(rules, records, |record, step| {
        printed += 1;
        if write_result.is_ok() {
            write_result = write_timeline_entry(out, record, Some(step));
        }
    });
    write_result.map_err(write_err)?;
    let result = match result {
        Ok(machine) => {
            let state = machine.state();
            writeln!(
                out,
                "== {label}: {} records replayed, no divergence; final state {state}",
                records.len()
            )
            .map_err(write_err)?;
            Ok(state)
        }
        Err(divergence) => {
            // A divergence found before the step ran (format, state before) has not been
            // printed yet.
            if divergence.index >= printed
                && let Some(record) = records.get(divergence.index)
            {
                write_timeline_entry(out, record, None).map_err(write_err)?;
            }
            writeln!(out, "== {label}: DIVERGED at {divergence}").map_err(write_err)?;
            Err(divergence)
        }
    };
    Ok(LogReplay {
        label: label.to_string(),
        records: records.len(),
        result,
    })
}

/// Runs `journal export`: writes the log of `cluster` (`NS/NAME` or UID) in the journal at
/// `dir` to `out` as JSON Lines. Returns the number of records written.
///
/// # Errors
/// As [`replay_command`] for a journal.
pub fn export_command(dir: &Path, cluster: &str, out: impl Write) -> Result<usize, JournalError> {
    let (journal, _) = SledJournal::open(dir, OpenOptions::read_only())?;
    let key = select_cluster(&journal, cluster)?;
    let records = journal.read(&key.uid)?;
    jsonl::export(&records, out)?;
    Ok(records.len())
}

/// Reads a JSON Lines export.
///
/// # Errors
/// [`JournalError::Io`] when the file cannot be opened or read, [`JournalError::BadLine`].
pub fn read_file(path: &Path) -> Result<Vec<Record>, JournalError> {
    let file = File::open(path).map_err(|source| JournalError::Io {
        action: "opening",
        path: path.to_path_buf(),
        source,
    })?;
    jsonl::import(BufReader::new(file), &path.display().to_string())
}

/// Finds the cluster `selector` names: `NS/NAME` (the latest cluster of that name) or a UID.
///
/// # Errors
/// [`JournalError::UnknownCluster`] (listing the clusters the journal has),
/// [`JournalError::BadClusterName`], and the store's errors.
pub fn select_cluster(
    store: &(impl JournalStore + ?Sized),
    selector: &str,
) -> Result<ClusterKey, JournalError> {
    let clusters = store.clusters()?;
    let uid = if selector.contains('/') {
        let (ns, name) = parse_cluster_name(selector)?;
        store.uid_of(&ns, &name)?
    } else {
        Some(selector.to_string())
    };
    let found = uid.and_then(|uid| clusters.iter().find(|c| c.cluster.uid == uid));
    match found {
        Some(log) => Ok(log.cluster.clone()),
        None => {
            let known: Vec<String> = clusters.iter().map(|c| c.cluster.to_string()).collect();
            Err(JournalError::UnknownCluster {
                wanted: selector.to_string(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            })
        }
    }
}

fn write_err(source: std::io::Error) -> JournalError {
    JournalError::Io {
        action: "writing",
        path: "output".into(),
        source,
    }
}

/// Writes one record as two lines: `#seq  time  kind  detail`, then the recorded
/// `before -> after` and actions; when today's model (`replayed`) decides otherwise, a third
/// line says what it decides.
fn write_timeline_entry(
    out: &mut dyn Write,
    record: &Record,
    replayed: Option<&Step>,
) -> std::io::Result<()> {
    let checkpoint = if record.checkpoint.is_some() {
        "  [checkpoint]"
    } else {
        ""
    };
    let head = format!(
        "#{:<5} {}  {:<16} {}{checkpoint}",
        record.seq,
        record.time.format("%Y-%m-%d %H:%M:%S%.3fZ"),
        record.event.kind(),
        event_detail(&record.event)
    );
    writeln!(out, "{}", head.trim_end())?;
    writeln!(
        out,
        "       {}  | {}",
        transition(&record.before, &record.after),
        actions_summary(&record.actions)
    )?;
    if let Some(step) = replayed
        && (step.after != record.after || step.actions != record.actions)
    {
        writeln!(
            out,
            "    !! today's model: {}  | {}",
            transition(&step.before, &step.after),
            actions_summary(&step.actions)
        )?;
    }
    Ok(())
}

fn transition(before: &LifecycleState, after: &LifecycleState) -> String {
    if before == after {
        format!("{before} (unchanged)")
    } else {
        format!("{before} -> {after}")
    }
}

fn short(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

fn opt<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn observation_detail(o: &ComponentObservation) -> String {
    format!(
        "gen {} observed {} rev {}/{} ready {}/{} updated {} endpoints {} image {}",
        o.generation,
        opt(&o.observed_generation),
        o.current_revision.as_deref().map_or("-", short),
        o.update_revision.as_deref().map_or("-", short),
        o.ready_replicas,
        o.replicas,
        o.updated_replicas,
        o.ready_endpoints,
        o.image.as_deref().unwrap_or("-"),
    )
}

/// A one-line description of an event's content.
pub fn event_detail(event: &Event) -> String {
    match event {
        Event::SpecChanged { spec } => {
            let mut text = format!("generation {}", spec.generation);
            if let Some(invalid) = &spec.invalid {
                text.push_str(&format!(" (invalid: {invalid})"));
            }
            for (component, desired) in &spec.components {
                text.push_str(&format!(
                    "; {component} {} x{}",
                    desired.image,
                    opt(&desired.replicas)
                ));
            }
            text
        }
        Event::Observed {
            component,
            observation,
        } => format!("{component} {}", observation_detail(observation)),
        Event::ComponentRemoved { component, uid } => {
            format!("{component} (uid {})", opt(uid))
        }
        Event::ApplyFinished {
            component,
            template_hash,
            generation,
            ..
        } => format!(
            "{component} template {} -> generation {generation}",
            short(template_hash)
        ),
        Event::ApplyFailed {
            component,
            template_hash,
            reason,
        } => format!("{component} template {}: {reason}", short(template_hash)),
        Event::Restarted {
            spec,
            observations,
            paused,
        } => {
            let seen: Vec<String> = observations.keys().map(|c| c.to_string()).collect();
            format!(
                "generation {}, observed [{}]{}",
                spec.generation,
                seen.join(", "),
                if *paused { ", paused" } else { "" }
            )
        }
        Event::Paused | Event::Resumed | Event::Resync => String::new(),
    }
}

/// A one-line summary of actions, `no actions` when empty.
pub fn actions_summary(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "no actions".to_string();
    }
    let parts: Vec<String> = actions
        .iter()
        .map(|action| match action {
            Action::Apply {
                component,
                template_hash,
                replicas,
            } => format!(
                "apply {component} template {} x{}",
                short(template_hash),
                opt(replicas)
            ),
            Action::Delete { component } => format!("delete {component}"),
            Action::WriteStatus { state } => format!("status {}", state.name()),
            Action::EmitEvent {
                event_type, reason, ..
            } => format!("event {event_type:?} {reason}"),
        })
        .collect();
    parts.join("; ")
}
