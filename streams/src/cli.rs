//! The command line of an app, through [`App::main`]: `worker`, `send`, `agents`, `topics`,
//! `tables`, `reset`; [`App::main_with_demo`] adds `demo`, its default command.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::app::App;
use crate::codec::Payload;
use crate::error::{BoxError, Error, Result};

/// A stream-processing app (run `<command> --help` for details).
#[derive(Debug, Parser)]
#[command(
    disable_version_flag = true,
    after_help = "Examples:\n  \
        APP worker --broker kafka://localhost:9092\n  \
        APP send purchases --key alice '{\"username\":\"alice\",\"currency\":\"EUR\",\"amount\":3}'\n  \
        APP agents"
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
    },
    /// Send a value to a topic, encoded with the topic's codecs if the app declares it
    Send {
        /// Topic to send to
        topic: String,
        /// Record key (raw text, encoded with the topic's key codecs)
        #[arg(long, short = 'k')]
        key: Option<String>,
        /// Value: JSON for JSON topics (a bare word is sent as a JSON string)
        value: String,
        /// Send the value this many times
        #[arg(long, default_value_t = 1, value_name = "N")]
        repeat: u32,
        /// Partition to send to (default: by key, as Kafka's Java producer)
        #[arg(long, short = 'p', value_name = "N")]
        partition: Option<i32>,
    },
    /// List the agents: name, topic, concurrency and sinks
    Agents,
    /// List the topics the app declares: name, codecs and partitions
    Topics,
    /// List the tables: per partition, the keys in this machine's store, the changelog offset
    /// it applied, and what a worker starting now would replay from the changelog (exits 1
    /// while a worker on this machine holds the store)
    Tables,
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
}

type Demo = Box<dyn FnOnce(App) -> BoxFuture<'static, Result<(), BoxError>> + Send>;

impl App {
    /// Runs the app's command line (Faust's `app.main()`) and returns the exit code: use it as
    /// `fn main() -> ExitCode { app.main() }`. Starts its own Tokio runtime.
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
                ExitCode::FAILURE
            }
        }
    }

    /// Runs one command line (`args[0]` is the program name) inside an existing runtime.
    async fn run_cli(&self, args: Vec<String>, demo: Option<Demo>) -> Result<()> {
        let name: &'static str = Box::leak(self.id().to_owned().into_boxed_str());
        let mut command = Cli::command().name(name).bin_name(name);
        if demo.is_none() {
            command = command.mut_subcommand("demo", |c| c.hide(true));
        }
        let cli = match command.try_get_matches_from(args) {
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
                let _ = Cli::command().name(name).print_help();
                return Ok(());
            }
        };
        match command {
            Command::Worker { instance_id } => {
                if let Some(id) = instance_id {
                    self.set_worker_instance_id(&id)?;
                }
                self.run().await
            }
            Command::Demo => match demo {
                Some(demo) => {
                    self.run_until(demo(self.clone()), Duration::from_secs(60))
                        .await
                }
                None => Err(Error::NoDemo),
            },
            Command::Agents => {
                println!(
                    "{:<32} {:<32} {:>11}  sinks",
                    "agent", "topic", "concurrency"
                );
                for a in self.agents() {
                    println!(
                        "{:<32} {:<32} {:>11}  {}",
                        a.name,
                        a.topic,
                        a.concurrency,
                        a.sinks.join(", ")
                    );
                }
                Ok(())
            }
            Command::Topics => {
                println!(
                    "{:<40} {:<10} {:<14} {:>10}",
                    "topic", "key", "value", "partitions"
                );
                for t in self.topics() {
                    let name = if t.internal {
                        format!("{} (internal)", t.name)
                    } else {
                        t.name
                    };
                    println!(
                        "{:<40} {:<10} {:<14} {:>10}",
                        name, t.key_serializer, t.value_serializer, t.partitions
                    );
                }
                Ok(())
            }
            Command::Tables => {
                let declared = self.tables();
                let parts = self.stored_tables().await?;
                println!(
                    "{:<24} {:>9} {:>10} {:>10} {:>10} {:>10}  state",
                    "table", "partition", "keys", "applied", "changelog", "to replay"
                );
                let text = |o: Option<i64>| o.map_or("-".to_owned(), |o| o.to_string());
                for p in &parts {
                    let state = match p.to_replay() {
                        None => "changelog unknown",
                        Some(0) => "up to date",
                        Some(_) => "behind",
                    };
                    println!(
                        "{:<24} {:>9} {:>10} {:>10} {:>10} {:>10}  {state}",
                        p.table,
                        p.partition,
                        p.entries,
                        text(p.applied_offset),
                        text(p.changelog_end),
                        text(p.to_replay()),
                    );
                }
                for t in declared {
                    println!(
                        "table {}: changelog {}, store {}, {} standby replica(s){}",
                        t.name,
                        t.changelog,
                        t.store,
                        t.standby_replicas,
                        if t.global { ", global" } else { "" }
                    );
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
            Command::Send {
                topic,
                key,
                value,
                repeat,
                partition,
            } => {
                self.connect().await?;
                for _ in 0..repeat {
                    let mut record = self.encode_cli_record(&topic, key.as_deref(), &value)?;
                    record.partition = partition;
                    let written = self.send_and_wait(record).await?;
                    println!(
                        "sent to {}/{} at offset {}",
                        written.topic, written.partition, written.offset
                    );
                }
                self.shutdown().await
            }
        }
    }

    fn encode_cli_record(
        &self,
        topic: &str,
        key: Option<&str>,
        value: &str,
    ) -> Result<kafka_client::producer::ProducerRecord> {
        let mut record = kafka_client::producer::ProducerRecord::new(topic);
        let Some(spec) = self.topic_spec(topic) else {
            // Not declared: send the text as it is.
            if let Some(k) = key {
                record = record.key(k.to_owned());
            }
            return Ok(record.value(value.to_owned()));
        };
        let encode_err = |part, e: Error| Error::Encode {
            topic: topic.to_owned(),
            part,
            reason: e.to_string(),
        };
        if let Some(k) = key {
            let bytes = spec
                .key_ser()?
                .encode_payload(Payload::Value(serde_json::Value::String(k.to_owned())))
                .map_err(|e| encode_err("key", e))?;
            record = record.key(bytes);
        }
        let parsed = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        let bytes = spec
            .value_ser()?
            .encode_payload(Payload::Value(parsed))
            .map_err(|e| encode_err("value", e))?;
        Ok(record.value(bytes))
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
