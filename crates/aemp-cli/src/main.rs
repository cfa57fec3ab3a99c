//! The `aemp` command-line tool: profile editing, network commands, the demo and the
//! benchmarks. Argument parsing and output only — the work is done by the library.
//!
//! Profile commands may follow each other in one invocation, as with Perl's `aemp`:
//! `aemp profile seed setnodeid seed setbinds 127.0.0.1:4040 gensecret`. Arguments that start
//! with `[`, `{` or `"` are JSON; a single argument that is a JSON array replaces all
//! arguments.
//!
//! Exit status: 0 on success, 1 on failure or timeout, 2 on usage errors (with a one-line
//! error on stderr).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod alloc;
mod cmd;

/// aemp — AnyEvent::MP for Rust: nodes, ports and monitors over authenticated links.
///
/// Profile commands edit the config file ($AEMP_RC, else aemp/config.json in the platform's
/// config directory) and may be chained; network commands start a short-lived node from the
/// `aemp` profile (its seeds and secret) and time out after 5 s (--timeout).
#[derive(Debug, Parser)]
#[command(version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  aemp demo                                   a seed and two nodes, on this machine
  aemp gensecret profile seed setnodeid seed setbinds 127.0.0.1:4040
  aemp profile aemp setseeds 127.0.0.1:4040   where the tool's own node finds the network
  aemp run seed                               a node from profile \"seed\", until Ctrl-C
  aemp cal seed time                          ask node \"seed\" for its time";

/// Profile commands take their remaining arguments as further commands.
#[derive(Debug, Args)]
struct More {
    /// Further commands, executed in order.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    more: Vec<String>,
}

/// Options of the network commands.
#[derive(Debug, Args, Clone)]
struct NetOpts {
    /// Seconds to wait before giving up (0: wait forever).
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// A seed address (host:port) in addition to the `aemp` profile's seeds; repeatable.
    #[arg(long = "seed", value_name = "ADDR")]
    seeds: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show aemp working, with no setup: a seed and two nodes as separate processes, a remote
    /// spawn, ping-pong with round-trip times, a monitor firing when a node is killed.
    ///
    /// Example: `aemp demo`
    Demo,
    /// Measure aemp's performance.
    ///
    /// Example: `aemp bench local --json`
    Bench(cmd::bench::Args),

    /// Run a node from PROFILE (default: this host's name) until SIGINT or SIGTERM. KEY VALUE
    /// pairs are defaults the config file overrides (as AEMP's configure). Prints one line,
    /// `node <id> listens on <addr>...`, when it is up.
    ///
    /// Example: `aemp run seed binds '["127.0.0.1:4040"]'`
    Run {
        /// The profile.
        profile: Option<String>,
        /// KEY VALUE pairs.
        #[arg(allow_hyphen_values = true)]
        pairs: Vec<String>,
    },
    /// Send a message to PORT and confirm it arrived (an ordered echo through the port's node),
    /// or print why the port is dead.
    ///
    /// Example: `aemp snd 'seed#chat' join '"bob"'`
    Snd {
        /// The port (node#name, or a node ID for its node port).
        port: String,
        /// The message elements (JSON if they start with [, { or "; put `--` before elements
        /// that start with `-`).
        #[arg(allow_negative_numbers = true)]
        msg: Vec<String>,
        #[command(flatten)]
        net: NetOpts,
    },
    /// Call PORT with MSG plus a reply port, and print the reply as JSON (without the outer
    /// brackets).
    ///
    /// Example: `aemp cal seed time`
    Cal {
        /// The port.
        port: String,
        /// The message elements (as for `snd`).
        #[arg(allow_negative_numbers = true)]
        msg: Vec<String>,
        #[command(flatten)]
        net: NetOpts,
    },
    /// Monitor PORT and print the reason when it dies.
    ///
    /// Example: `aemp mon 'seed#worker' --timeout 0`
    Mon {
        /// The port.
        port: String,
        #[command(flatten)]
        net: NetOpts,
    },
    /// Print the network as seen from NODE: every reachable node and its neighbours (asking
    /// each node for its up_nodes).
    ///
    /// Example: `aemp trace seed`
    Trace {
        /// Where to start.
        node: String,
        #[command(flatten)]
        net: NetOpts,
    },
    /// Ask NODE who it is, what it knows and its clock.
    ///
    /// Example: `aemp info seed`
    Info {
        /// The node.
        node: String,
        #[command(flatten)]
        net: NetOpts,
    },
    /// List the nodes the seeds know, with their addresses.
    ///
    /// Example: `aemp nodes --seed 127.0.0.1:4040`
    Nodes {
        #[command(flatten)]
        net: NetOpts,
    },

    /// Profile commands.
    #[command(flatten)]
    Edit(Edit),
}

/// The profile commands, which may follow each other.
#[derive(Debug, Subcommand)]
enum Edit {
    /// Edit profile NAME with the following commands (created if missing). Before any
    /// `profile` command, edits apply to the top level (defaults of every profile).
    ///
    /// Example: `aemp profile seed setbinds '*:4040'`
    Profile {
        /// The profile.
        name: String,
        #[command(flatten)]
        more: More,
    },
    /// Delete profile NAME.
    ///
    /// Example: `aemp delprofile old`
    Delprofile {
        /// The profile.
        name: String,
        #[command(flatten)]
        more: More,
    },
    /// Print profile NAME as written (pretty JSON).
    ///
    /// Example: `aemp showprofile seed`
    Showprofile {
        /// The profile.
        name: String,
        #[command(flatten)]
        more: More,
    },
    /// Print the effective configuration of profile NAME (default: this host's name), with
    /// KEY VALUE defaults, as a node started from it would see it.
    ///
    /// Example: `aemp showconfig seed`
    Showconfig {
        /// The profile, then KEY VALUE pairs.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set the node ID (`anon/` for a random one).
    ///
    /// Example: `aemp profile seed setnodeid seed`
    #[command(alias = "nodeid")]
    Setnodeid {
        /// The node ID.
        id: String,
        #[command(flatten)]
        more: More,
    },
    /// Delete the node ID (the profile name is used).
    ///
    /// Example: `aemp profile seed delnodeid`
    Delnodeid(More),
    /// Set the shared secret.
    ///
    /// Example: `aemp setsecret 'correct horse battery staple'`
    #[command(alias = "secret")]
    Setsecret {
        /// The secret.
        #[arg(allow_hyphen_values = true)]
        secret: String,
        #[command(flatten)]
        more: More,
    },
    /// Set a new random secret (64 random bytes, base 62).
    ///
    /// Example: `aemp gensecret`
    Gensecret(More),
    /// Delete the secret.
    ///
    /// Example: `aemp delsecret`
    Delsecret(More),
    /// Set the TLS certificate from a PEM file (certificate, key, optional CA certificates).
    ///
    /// Example: `aemp setcert node.pem`
    #[command(alias = "cert")]
    Setcert {
        /// The PEM file.
        file: std::path::PathBuf,
        #[command(flatten)]
        more: More,
    },
    /// Generate a self-signed certificate (ECDSA P-256, CN=AnyEvent::MP, 10 years, CA) and
    /// set it; copy the same profile's cert to every node so they trust each other.
    ///
    /// Example: `aemp gencert`
    Gencert(More),
    /// Delete the certificate.
    ///
    /// Example: `aemp delcert`
    Delcert(More),
    /// Set the listen addresses (comma list or JSON array).
    ///
    /// Example: `aemp profile seed setbinds '*:4040'`
    #[command(alias = "binds")]
    Setbinds {
        /// The addresses.
        binds: String,
        #[command(flatten)]
        more: More,
    },
    /// Add a listen address (if not there yet).
    ///
    /// Example: `aemp addbind '[::1]:4040'`
    Addbind {
        /// The address.
        bind: String,
        #[command(flatten)]
        more: More,
    },
    /// Remove a listen address.
    ///
    /// Example: `aemp delbind '[::1]:4040'`
    Delbind {
        /// The address.
        bind: String,
        #[command(flatten)]
        more: More,
    },
    /// Delete the listen addresses (default `*` again).
    ///
    /// Example: `aemp delbinds`
    Delbinds(More),
    /// Set the seed addresses (comma list or JSON array).
    ///
    /// Example: `aemp setseeds 10.0.0.1:4040,10.0.0.2:4040`
    #[command(alias = "seeds")]
    Setseeds {
        /// The addresses.
        seeds: String,
        #[command(flatten)]
        more: More,
    },
    /// Add a seed address (if not there yet).
    ///
    /// Example: `aemp addseed 10.0.0.3:4040`
    Addseed {
        /// The address.
        seed: String,
        #[command(flatten)]
        more: More,
    },
    /// Remove a seed address.
    ///
    /// Example: `aemp delseed 10.0.0.3:4040`
    Delseed {
        /// The address.
        seed: String,
        #[command(flatten)]
        more: More,
    },
    /// Delete the seeds.
    ///
    /// Example: `aemp delseeds`
    Delseeds(More),
    /// Set the services (comma list or JSON array of names or [name, args...]).
    ///
    /// Example: `aemp setservices '[["chat::server", "lobby"]]'`
    #[command(alias = "services")]
    Setservices {
        /// The services.
        services: String,
        #[command(flatten)]
        more: More,
    },
    /// Append a service (a name, or a JSON [name, args...]).
    ///
    /// Example: `aemp addservice chat::server`
    Addservice {
        /// The service.
        service: String,
        #[command(flatten)]
        more: More,
    },
    /// Remove the first service equal to SERVICE.
    ///
    /// Example: `aemp delservice chat::server`
    Delservice {
        /// The service.
        service: String,
        #[command(flatten)]
        more: More,
    },
    /// Delete the services.
    ///
    /// Example: `aemp delservices`
    Delservices(More),
    /// Make the current profile inherit from profile NAME.
    ///
    /// Example: `aemp profile worker setparent base`
    #[command(alias = "parent")]
    Setparent {
        /// The parent profile.
        name: String,
        #[command(flatten)]
        more: More,
    },
    /// Remove the parent.
    ///
    /// Example: `aemp profile worker delparent`
    Delparent(More),
    /// Set a low-level option: monitor_timeout, connect_interval (seconds), framing_format,
    /// auth_offer, auth_accept (comma lists), autocork, nodelay (true/false). Also spelled
    /// `set<option> VALUE` or `<option> VALUE`, as Perl's tool.
    ///
    /// Example: `aemp set monitor_timeout 10`
    Set {
        /// The option.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(cmd::profile::OPTIONS))]
        option: String,
        /// Its value.
        #[arg(allow_hyphen_values = true)]
        value: String,
        #[command(flatten)]
        more: More,
    },
    /// Delete a low-level option (back to its default). Also spelled `del<option>`.
    ///
    /// Example: `aemp del monitor_timeout`
    Del {
        /// The option.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(cmd::profile::OPTIONS))]
        option: String,
        #[command(flatten)]
        more: More,
    },
}

fn main() -> ExitCode {
    let args = cmd::args::expand(std::env::args().skip(1).collect());
    // `aemp run` is a node an operator watches: warnings (refused handshakes, lost links,
    // heartbeat timeouts, overflows) show by default. The other commands print their own
    // results and errors. RUST_LOG overrides both.
    let default = match args.as_deref().ok().and_then(<[String]>::first) {
        Some(first) if first == "run" => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(default.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args = match args {
        Ok(args) => args,
        Err(e) => {
            eprintln!("aemp: {e:#}");
            return ExitCode::from(2);
        }
    };
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                // Help and version text, as clap prints them.
                let _ = e.print();
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
            // One line: clap's first paragraph, without its "error: " prefix.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = first.join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!("aemp: {line} (see aemp --help)");
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            eprintln!("aemp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Why a run failed: bad usage (exit 2, clap's message) or a failed command (exit 1).
enum Failure {
    Usage(clap::Error),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Error(e)
    }
}

/// Parses and runs commands until the arguments are used up. Profile edits are saved once,
/// after the last command, and only if every command succeeded.
fn dispatch(mut args: Vec<String>) -> Result<(), Failure> {
    let mut edit: Option<cmd::profile::Editor> = None;
    loop {
        let cli = Cli::try_parse_from(
            std::iter::once("aemp".to_owned()).chain(cmd::profile::option_alias(args)),
        )
        .map_err(Failure::Usage)?;
        let more = match cli.command {
            Command::Demo => return Ok(cmd::demo::run()?),
            Command::Bench(args) => return Ok(cmd::bench::run(&args)?),
            Command::Run { profile, pairs } => return Ok(cmd::net::run(profile, &pairs)?),
            Command::Snd { port, msg, net } => return Ok(cmd::net::snd(&opts(net)?, &port, &msg)?),
            Command::Cal { port, msg, net } => return Ok(cmd::net::cal(&opts(net)?, &port, &msg)?),
            Command::Mon { port, net } => return Ok(cmd::net::mon(&opts(net)?, &port)?),
            Command::Trace { node, net } => return Ok(cmd::net::trace(&opts(net)?, &node)?),
            Command::Info { node, net } => return Ok(cmd::net::info(&opts(net)?, &node)?),
            Command::Nodes { net } => return Ok(cmd::net::nodes(&opts(net)?)?),
            Command::Edit(command) => {
                let editor = match &mut edit {
                    Some(editor) => editor,
                    None => edit.insert(cmd::profile::Editor::open()?),
                };
                edit_once(editor, command)?
            }
        };
        if more.is_empty() {
            break;
        }
        args = more;
    }
    if let Some(mut editor) = edit {
        editor.save()?;
    }
    Ok(())
}

fn opts(net: NetOpts) -> anyhow::Result<cmd::net::Opts> {
    cmd::net::Opts::new(net.timeout, net.seeds)
}

/// Runs one profile command; returns the arguments that follow it.
fn edit_once(e: &mut cmd::profile::Editor, command: Edit) -> anyhow::Result<Vec<String>> {
    use cmd::profile::ListKey::{Binds, Seeds, Services};
    let more = match command {
        Edit::Profile { name, more } => {
            e.select(&name);
            more
        }
        Edit::Delprofile { name, more } => {
            e.delete_profile(&name)?;
            more
        }
        Edit::Showprofile { name, more } => {
            e.show_profile(&name)?;
            more
        }
        Edit::Showconfig { args } => {
            e.show_config(&args)?;
            More { more: Vec::new() }
        }
        Edit::Setnodeid { id, more } => {
            e.set_string("nodeid", &id)?;
            more
        }
        Edit::Delnodeid(more) => {
            e.delete("nodeid")?;
            more
        }
        Edit::Setsecret { secret, more } => {
            e.set_string("secret", &secret)?;
            more
        }
        Edit::Gensecret(more) => {
            e.gen_secret()?;
            more
        }
        Edit::Delsecret(more) => {
            e.delete("secret")?;
            more
        }
        Edit::Setcert { file, more } => {
            e.set_cert_file(&file)?;
            more
        }
        Edit::Gencert(more) => {
            e.gen_cert()?;
            more
        }
        Edit::Delcert(more) => {
            e.delete("cert")?;
            more
        }
        Edit::Setbinds { binds, more } => {
            e.set_list(Binds, &binds)?;
            more
        }
        Edit::Addbind { bind, more } => {
            e.add_to_list(Binds, &bind)?;
            more
        }
        Edit::Delbind { bind, more } => {
            e.remove_from_list(Binds, &bind)?;
            more
        }
        Edit::Delbinds(more) => {
            e.delete("binds")?;
            more
        }
        Edit::Setseeds { seeds, more } => {
            e.set_list(Seeds, &seeds)?;
            more
        }
        Edit::Addseed { seed, more } => {
            e.add_to_list(Seeds, &seed)?;
            more
        }
        Edit::Delseed { seed, more } => {
            e.remove_from_list(Seeds, &seed)?;
            more
        }
        Edit::Delseeds(more) => {
            e.delete("seeds")?;
            more
        }
        Edit::Setservices { services, more } => {
            e.set_list(Services, &services)?;
            more
        }
        Edit::Addservice { service, more } => {
            e.add_to_list(Services, &service)?;
            more
        }
        Edit::Delservice { service, more } => {
            e.remove_from_list(Services, &service)?;
            more
        }
        Edit::Delservices(more) => {
            e.delete("services")?;
            more
        }
        Edit::Setparent { name, more } => {
            e.set_parent(&name)?;
            more
        }
        Edit::Delparent(more) => {
            e.delete("parent")?;
            more
        }
        Edit::Set {
            option,
            value,
            more,
        } => {
            e.set_option(&option, &value)?;
            more
        }
        Edit::Del { option, more } => {
            e.delete(&option)?;
            more
        }
    };
    Ok(more.more)
}
