//! rmq-rust-runner: runs the shared client scenarios (tests/clients/SCENARIOS.md) with the
//! official Rust client, the `rocketmq` crate, used as its users use it.
//!
//!     rmq-rust-runner SCENARIO --endpoint HOST:PORT [common options] [scenario options]
//!
//! Progress goes to stderr (the client logs there too); the last line on stdout is the JSON
//! result. A scenario the crate's API cannot do exits with code 3 and `{"unsupported": why}`.

mod codes;
mod consume;
mod options;
mod produce;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocketmq::conf::ClientOption;
use rocketmq::error::ClientError;
use serde_json::{json, Value};

use crate::options::Options;

pub const LANGUAGE: &str = "rust";

/// What a scenario ended with.
pub enum Outcome {
    Result(Value),
    Unsupported(String),
}

/// Why a scenario did not run: bad options, or a client that could not start. For the latter the
/// runner still prints `{"start_error": {"code", "error"}}` (and exits 1) so a test can tell why.
pub enum Failure {
    Usage(String),
    Start(String, Value),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Usage(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::Usage(message.to_string())
    }
}

/// A client's start (or creation) failed.
pub fn start_failure(what: &str, error: ClientError) -> Failure {
    Failure::Start(
        format!("cannot start the {what}: {error}"),
        error_value(&error),
    )
}

/// The options every scenario takes.
pub struct Common {
    pub endpoint: String,
    pub tls: Option<bool>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub request_timeout: Duration,
}

impl Common {
    fn take(options: &mut Options) -> Result<Common, String> {
        let endpoint = options.required("endpoint")?;
        let tls = match options.text("tls", "default").as_str() {
            "default" => None,
            "on" => Some(true),
            "off" => Some(false),
            other => return Err(format!("--tls must be default, on or off, not {other:?}")),
        };
        Ok(Common {
            endpoint,
            tls,
            access_key: options.optional("access-key"),
            secret_key: options.optional("secret-key"),
            request_timeout: Duration::from_millis(options.number("request-timeout-ms", 10000)?),
        })
    }

    /// The client configuration; `default` keeps the crate's own TLS default (off).
    pub fn client_option(&self) -> ClientOption {
        let mut option = ClientOption::default();
        option.set_access_url(self.endpoint.clone());
        option.set_timeout(self.request_timeout);
        if let Some(tls) = self.tls {
            option.set_enable_tls(tls);
        }
        if let Some(key) = &self.access_key {
            option.set_access_key(key.clone());
        }
        if let Some(secret) = &self.secret_key {
            option.set_secret_key(secret.clone());
        }
        option
    }
}

/// An error as the scenarios record it: the protocol code the client reports (the crate names
/// it, e.g. `ILLEGAL_DELIVERY_TIME`; here it becomes its number) and the text.
pub fn error_value(error: &ClientError) -> Value {
    let code = error
        .context()
        .iter()
        .find(|(key, _)| *key == "code")
        .and_then(|(_, name)| codes::number(name));
    json!({"code": code, "error": error.to_string()})
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Message i's body: "<prefix>-<i>:" then bytes 0x00..0xff repeating up to `size` bytes.
pub fn body(prefix: &str, index: usize, size: usize) -> Vec<u8> {
    let mut data = format!("{prefix}-{index}:").into_bytes();
    let mut pad: usize = 0;
    while data.len() < size {
        data.push((pad % 256) as u8);
        pad += 1;
    }
    data
}

const USAGE: &str = "usage: rmq-rust-runner SCENARIO --endpoint HOST:PORT [--tls default|on|off]
         [--access-key AK --secret-key SK] [--request-timeout-ms MS] [scenario options]
scenarios (tests/clients/SCENARIOS.md):
  produce --topic T --count N [--mode sync|async|mixed] [--prefix P] [--size B]
  produce-fifo --topic T --count N --groups G [--prefix P] [--size B]
  produce-delay --topic T                (no recall: the crate cannot recall)
  produce-transaction --topic T [--linger S]
  simple-consume --topic T --group G --expect N [--ack] [--invisible-s S] [--max-wait-s S]
                 [--batch B] [--tag EXPR | --sql EXPR]   (no --change-invisible-s)
  push-consume                           (unsupported: the crate has no PushConsumer)";

async fn run(scenario: &str, mut options: Options) -> Result<Outcome, Failure> {
    let common = Common::take(&mut options)?;
    let outcome = match scenario {
        "produce" => produce::produce(&common, &mut options).await?,
        "produce-fifo" => produce::produce_fifo(&common, &mut options).await?,
        "produce-delay" => produce::produce_delay(&common, &mut options).await?,
        "produce-transaction" => produce::produce_transaction(&common, &mut options).await?,
        "simple-consume" => consume::simple_consume(&common, &mut options).await?,
        "push-consume" => Outcome::Unsupported(
            "the Rust client (crate rocketmq 5.0.0) has no PushConsumer".to_string(),
        ),
        other => return Err(format!("unknown scenario {other:?}\n{USAGE}").into()),
    };
    Ok(outcome)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let scenario = match args.next() {
        Some(s) if !s.starts_with('-') => s,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = match Options::parse(args.collect(), &["ack"]) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("rmq-rust-runner: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let outcome = runtime.block_on(run(&scenario, options));
    // The client's background tasks (heartbeats, telemetry) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(Outcome::Result(result)) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Unsupported(why)) => {
            println!("{}", json!({ "unsupported": why }));
            ExitCode::from(3)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("rmq-rust-runner: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Start(message, error)) => {
            eprintln!("rmq-rust-runner: {message}");
            println!("{}", json!({ "start_error": error }));
            ExitCode::from(1)
        }
    }
}
