//! The command line of an app, through [`App::main`]: `worker`, `send`, `agents`, `topics`,
//! `status`, `tables`, `reset`, `completions`; [`App::main_with_demo`] adds `demo`, its
//! default command.

mod inspect;
mod render;
mod send;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::app::App;
use crate::error::{BoxError, Error, Result};

/// A stream-processing app (run `<command> --help` for details).
#[derive(Debug, Parser)]
#[command(
    disable_version_flag = true,
    after_help = "Examples:\n  \
        APP worker --broker kafka://localhost:9092\n  \
        APP send purchases --key alice '{\"username\":\"alice\",\"currency\":\"EUR\",\"amount\":3}'\n  \
        APP agents --json\n  \
        APP status\n  \
        APP tables --table currency_total --key EUR\n\n\
        Exit codes:\n  \
        0    success\n  \
        1    the command failed (stderr says why), e.g. send refused a value that does not \
        decode as the topic's type\n  \
        2    usage error: unknown command or flag, bad flag value, unknown codec name\n  \
        130  interrupted by Ctrl-C (worker and demo stop gracefully on Ctrl-C: 0)"
)]
struct Cli {
    /// Kafka to use: kafka://host:port[,host:port...], PLAINTEXT://host:port, or mock:// for
    /// an embedded in-process mock cluster
    #[arg(long, short = 'b', global = true, value_name = "URL")]
    broker: Option<String>,

    /// Log level: error, warn, info, debug or trace (or a tracing filter such as
    /// "streams=debug")
    #[arg(
        long,
        short = 'l',
        global = true,
        default_value = "warn",
        value_name = "LEVEL"
    )]
    loglevel: String,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the worker: run every agent until Ctrl-C, which finishes in-flight events and
    /// commits them
    Worker {
        /// A stable name for this worker in the group (Kafka's group.instance.id, static
        /// membership): restarted under the same name within the session timeout, it takes
        /// its partitions back at once. Give each worker its own
        #[arg(long, env = "WORKER_INSTANCE_ID", value_name = "ID")]
        instance_id: Option<String>,
        /// The port of the worker's web server (/, /health, /ready, /table/NAME/); 0 picks a
        /// free one. Workers on one machine each need their own
        #[arg(long, env = "WORKER_WEB_PORT", value_name = "N")]
        web_port: Option<u16>,
        /// The address the web server binds: 127.0.0.1 (default: this machine only) or
        /// 0.0.0.0 (every interface)
        #[arg(long, value_name = "ADDR")]
        web_bind: Option<String>,
        /// Do not start the web server
        #[arg(long, conflicts_with_all = ["web_port", "web_bind"])]
        no_web: bool,
    },
    /// Send a value to a topic, checked against the types the app declares for it
    ///
    /// If the app declares the topic, the key and value must decode as its declared types (and
    /// pass its validation rules), else nothing is sent and the exit code is 1; they are
    /// encoded with the topic's codecs. A topic the app does not declare gets the key and
    /// value text as it is (or through --key-serializer/--value-serializer). --raw skips
    /// codecs and checks.
    Send(send::SendArgs),
    /// List the agents: name, topic, concurrency and sinks
    Agents {
        /// Print one JSON document: {"agents": [{"name", "topic", "concurrency", "sinks"}]}
        #[arg(long)]
        json: bool,
    },
    /// List the topics the app declares: name, codecs and partitions
    Topics {
        /// Print one JSON document: {"topics": [{"name", "key_serializer",
        /// "value_serializer", "partitions", "internal"}]}
        #[arg(long)]
        json: bool,
    },
    /// The app's consumer group: members, their partitions, standby copies and web servers,
    /// the lag of every source partition, and the recovery of every table partition
    ///
    /// Works whether workers run or not (without one: no members, lag from the committed
    /// offsets). Readiness is asked of each worker's web server /ready when it advertises
    /// one (application_server), waiting 2 s at most; "unknown" otherwise.
    Status {
        /// Print one JSON document: {"group", "state", "members": [{"member_id",
        /// "instance_id", "client_id", "client_host", "endpoint", "active": [{"topic",
        /// "partition"}], "standby": [N], "ready": "ready"|"not ready"|"unknown",
        /// "ready_detail"}], "partitions": [{"topic", "partition", "member_id", "committed",
        /// "end", "lag"}], "tables": [{"table", "partition", "active", "standbys", "state":
        /// "recovered"|"recovering"|"unknown"|"unassigned"}]} (unknown values: null; lag
        /// without a commit counts from where a new worker starts)
        #[arg(long)]
        json: bool,
    },
    /// List the tables: per partition, the keys in this machine's store, the changelog offset
    /// it applied, and what a worker starting now would replay from the changelog (exits 1
    /// while a worker on this machine holds the store); or with --table and --key or
    /// --partition, entries decoded with the table's codecs
    ///
    /// Entries are read from this machine's store; while a worker on this machine holds it,
    /// they are asked of the web server of the worker that owns the partition, found in the
    /// group's assignment (each worker advertises it with AppBuilder::application_server).
    /// Without one, the command says a worker holds the store and exits 1. A table kept in
    /// memory (memory://) is asked of its worker first, as no other process can read it.
    Tables {
        /// Print one JSON document: {"tables": [{"name", "partitions", "changelog", "store",
        /// "standby_replicas", "global"}], "partitions": [{"table", "partition", "keys",
        /// "applied_offset", "changelog_end", "to_replay", "state"}]} (unknown offsets:
        /// null); with --key or --partition: {"table", "from": "store"|"worker", "endpoint",
        /// "entries": [{"partition", "key", "value"}], "more"}
        #[arg(long)]
        json: bool,
        /// The table whose entries to print (with --key or --partition)
        #[arg(long, value_name = "NAME", requires = "entries")]
        table: Option<String>,
        /// Print this key's value: the key as its key codec's text (a key that does not
        /// decode with it: exit 1, naming the codec; a key without a value: exit 1)
        #[arg(long, value_name = "KEY", group = "entries", requires = "table")]
        key: Option<String>,
        /// Print the entries of this partition
        #[arg(long, value_name = "N", group = "entries", requires = "table")]
        partition: Option<i32>,
        /// At most this many entries of --partition [default: 100; at most 1000 from a
        /// worker]
        #[arg(long, value_name = "N", requires = "table", conflicts_with = "key")]
        limit: Option<usize>,
    },
    /// Start over: reset the committed offsets of the app's source topics, delete its tables'
    /// changelog topics and empty its local stores (stop every worker first: refused while
    /// one holds this machine's stores)
    Reset {
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Run the demo: send sample records, process them, print, stop
    Demo,
    /// Print a shell completion script, e.g. `APP completions bash > /etc/bash_completion.d/APP`
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// Entries `tables --partition` prints without `--limit`.
const DEFAULT_LIMIT: usize = 100;

type Demo = Box<dyn FnOnce(App) -> BoxFuture<'static, Result<(), BoxError>> + Send>;

impl App {
    /// Runs the app's command line (Faust's `app.main()`) and returns the exit code: use it as
    /// `fn main() -> ExitCode { app.main() }`. Starts its own Tokio runtime.
    ///
    /// Exit codes: 0 success; 1 the command failed (stderr says why, such as a `send` value
    /// that does not decode as its topic's type); 2 a usage error (unknown command or flag, bad
    /// value, unknown codec name); 130 interrupted by Ctrl-C (`worker` and `demo` stop
    /// gracefully on Ctrl-C instead, and exit 0).
    pub fn main(self) -> ExitCode {
        self.main_inner(None)
    }

    /// [`main`](Self::main) with a `demo` command, the default when no command is given:
    /// `demo(app)` runs while the worker runs (sending sample records, say); then the app waits
    /// until everything is processed and stops. What examples use.
    pub fn main_with_demo<F, Fut, E>(self, demo: F) -> ExitCode
    where
        F: FnOnce(App) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let demo: Demo = Box::new(move |app| demo(app).map(|r| r.map_err(Into::into)).boxed());
        self.main_inner(Some(demo))
    }

    fn main_inner(self, demo: Option<Demo>) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the Tokio runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let args: Vec<String> = std::env::args().collect();
        match runtime.block_on(self.run_cli(args, demo)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                exit_code(&e)
            }
        }
    }

    /// Runs one command line (`args[0]` is the program name) inside an existing runtime.
    async fn run_cli(&self, args: Vec<String>, demo: Option<Demo>) -> Result<()> {
        let name: &'static str = Box::leak(self.id().to_owned().into_boxed_str());
        let cli = match clap_command(name, demo.is_some()).try_get_matches_from(args) {
            Ok(m) => {
                Cli::from_arg_matches(&m).map_err(|e| Error::CommandLine { source: e.into() })?
            }
            Err(e) => {
                // --help and bad usage: clap prints and picks the exit code.
                e.exit();
            }
        };
        init_logging(&cli.loglevel);
        if let Some(url) = &cli.broker {
            self.set_broker(url)?;
        }
        let command = match (cli.command, &demo) {
            (Some(c), _) => c,
            (None, Some(_)) => Command::Demo,
            (None, None) => {
                let _ = clap_command(name, false).print_help();
                return Ok(());
            }
        };
        match command {
            Command::Worker {
                instance_id,
                web_port,
                web_bind,
                no_web,
            } => {
                if let Some(id) = instance_id {
                    self.set_worker_instance_id(&id)?;
                }
                // On by default, as Faust's worker: a port in use is a start error naming it.
                self.set_web(!no_web, web_port, web_bind.as_deref());
                self.run().await
            }
            Command::Demo => match demo {
                Some(demo) => {
                    self.run_until(demo(self.clone()), Duration::from_secs(60))
                        .await
                }
                None => Err(Error::NoDemo),
            },
            Command::Agents { json } => {
                print!("{}", render::agents(&self.agents(), json));
                Ok(())
            }
            Command::Topics { json } => {
                print!("{}", render::topics(&self.topics(), json));
                Ok(())
            }
            Command::Completions { shell } => {
                let mut command = clap_command(name, demo.is_some());
                clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
                Ok(())
            }
            Command::Status { json } => {
                print!("{}", inspect::status(&self.status().await?, json));
                self.shutdown().await
            }
            Command::Tables {
                json,
                table,
                key,
                partition,
                limit,
            } => {
                let entries = match (table, key, partition) {
                    (Some(table), Some(key), _) => Some(self.table_entry(&table, &key).await?),
                    (Some(table), None, Some(p)) => {
                        let limit = limit.unwrap_or(DEFAULT_LIMIT);
                        Some(self.table_entries(&table, p, limit).await?)
                    }
                    _ => None,
                };
                match entries {
                    Some(entries) => print!("{}", inspect::entries(&entries, json)),
                    None => {
                        let declared = self.tables();
                        let parts = self.stored_tables().await?;
                        print!("{}", render::tables(&declared, &parts, json));
                    }
                }
                self.shutdown().await
            }
            Command::Reset { yes } => {
                if !yes && !confirm_reset(self)? {
                    println!("reset cancelled");
                    return Ok(());
                }
                for line in self.reset().await? {
                    println!("{line}");
                }
                self.shutdown().await
            }
            Command::Send(args) => send::run(self, args).await,
        }
    }
}

/// The clap command, named after the app; `demo` hidden when the app has none.
fn clap_command(name: &'static str, has_demo: bool) -> clap::Command {
    let command = Cli::command().name(name).bin_name(name);
    if has_demo {
        command
    } else {
        command.mut_subcommand("demo", |c| c.hide(true))
    }
}

/// The documented exit code of a failed command (see [`App::main`]).
fn exit_code(error: &Error) -> ExitCode {
    match error {
        Error::CommandLine { .. } => ExitCode::from(2),
        Error::Interrupted { .. } => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    }
}

/// Asks on the terminal before a reset; `true` when the answer is `yes`.
fn confirm_reset(app: &App) -> Result<bool> {
    use std::io::{BufRead, Write};
    let tables: Vec<String> = app.tables().into_iter().map(|t| t.name).collect();
    print!(
        "This resets the committed offsets of app {} (group {}), deletes the changelog topics \
         of its tables [{}] and empties their local stores: the app then processes its sources \
         again from the start. Type yes to continue: ",
        app.id(),
        app.id(),
        tables.join(", ")
    );
    std::io::stdout().flush().map_err(|source| Error::Io {
        what: "ask for confirmation",
        source,
    })?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| Error::Io {
            what: "read the confirmation",
            source,
        })?;
    Ok(answer.trim() == "yes")
}

/// Logs to stderr at `level` (RUST_LOG, when set, wins).
pub fn init_logging(level: &str) {
    // At exit the embedded mock closes connections that still have a request out (metadata,
    // heartbeats); the client warns about each. Expected, so kept out of default output.
    let level = if level == "warn" {
        "warn,kafka_client::conn=error"
    } else {
        level
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: piped logs are read by programs and people's tools.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker_flags(args: &[&str]) -> Result<(Option<u16>, Option<String>, bool), clap::Error> {
        match Cli::try_parse_from(args)?.command {
            Some(Command::Worker {
                web_port,
                web_bind,
                no_web,
                ..
            }) => Ok((web_port, web_bind, no_web)),
            other => panic!("not the worker: {other:?}"),
        }
    }

    #[test]
    fn the_worker_serves_its_pages_unless_told_not_to() {
        assert_eq!(
            worker_flags(&["app", "worker"]).unwrap(),
            (None, None, false)
        );
        assert_eq!(
            worker_flags(&[
                "app",
                "worker",
                "--web-port",
                "7000",
                "--web-bind",
                "0.0.0.0"
            ])
            .unwrap(),
            (Some(7000), Some("0.0.0.0".into()), false)
        );
        assert_eq!(
            worker_flags(&["app", "worker", "--no-web"]).unwrap(),
            (None, None, true)
        );
        assert!(worker_flags(&["app", "worker", "--no-web", "--web-port", "1"]).is_err());
        assert!(worker_flags(&["app", "worker", "--web-port", "70000"]).is_err());
    }

    type Lookup = (Option<String>, Option<String>, Option<i32>, usize);

    fn tables_flags(args: &[&str]) -> Result<Lookup, clap::Error> {
        match Cli::try_parse_from(args)?.command {
            Some(Command::Tables {
                table,
                key,
                partition,
                limit,
                ..
            }) => Ok((table, key, partition, limit.unwrap_or(DEFAULT_LIMIT))),
            other => panic!("not tables: {other:?}"),
        }
    }

    #[test]
    fn tables_reads_a_key_or_a_partition_of_a_named_table() {
        let t = Some("totals".to_owned());
        assert_eq!(
            tables_flags(&["app", "tables"]).unwrap(),
            (None, None, None, 100)
        );
        assert_eq!(
            tables_flags(&["app", "tables", "--table", "totals", "--key", "EUR"]).unwrap(),
            (t.clone(), Some("EUR".into()), None, 100)
        );
        assert_eq!(
            tables_flags(&[
                "app",
                "tables",
                "--table",
                "totals",
                "--partition",
                "2",
                "--limit",
                "5"
            ])
            .unwrap(),
            (t, None, Some(2), 5)
        );
        for bad in [
            &["app", "tables", "--table", "totals"][..],
            &["app", "tables", "--key", "EUR"],
            &["app", "tables", "--limit", "1"],
            &[
                "app",
                "tables",
                "--table",
                "t",
                "--key",
                "k",
                "--partition",
                "1",
            ],
            &[
                "app", "tables", "--table", "t", "--key", "k", "--limit", "1",
            ],
        ] {
            assert!(tables_flags(bad).is_err(), "{bad:?}");
        }
    }
}
