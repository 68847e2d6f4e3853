//! The produce scenarios: normal (sync, async, mixed), FIFO, delayed and transactional messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq::conf::ProducerOption;
use rocketmq::error::ClientError;
use rocketmq::model::message::{Message, MessageBuilder, MessageView};
use rocketmq::model::transaction::{Transaction, TransactionResolution};
use rocketmq::Producer;
use serde_json::{json, Map, Value};
use tokio::task::JoinSet;

use crate::options::Options;
use crate::{body, error_value, now_ms, start_failure, Common, Failure, Outcome, LANGUAGE};

/// Message i of the produce scenarios (SCENARIOS.md, "Messages"), with extra properties;
/// `start` is the builder for its kind (normal, FIFO, delayed, transactional).
fn message(
    start: MessageBuilder,
    topic: &str,
    prefix: &str,
    index: usize,
    size: usize,
    extra: &[(&str, String)],
) -> Result<impl Message, ClientError> {
    let mut properties = HashMap::from([
        ("index".to_string(), index.to_string()),
        ("origin".to_string(), LANGUAGE.to_string()),
    ]);
    for (key, value) in extra {
        properties.insert(key.to_string(), value.clone());
    }
    start
        .set_topic(topic)
        .set_body(body(prefix, index, size))
        .set_tag(format!("tag-{}", index % 3))
        .set_keys(vec![
            format!("key-{index}"),
            format!("order-{}", index / 10),
        ])
        .set_properties(properties)
        .build()
}

async fn start_producer(common: &Common, topic: &str) -> Result<Producer, Failure> {
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic.to_string()]);
    let mut producer =
        Producer::new(option, common.client_option()).map_err(|e| start_failure("producer", e))?;
    producer
        .start()
        .await
        .map_err(|e| start_failure("producer", e))?;
    Ok(producer)
}

async fn stop(producer: Producer) {
    if let Err(e) = producer.shutdown().await {
        eprintln!("stopping the producer failed: {e}");
    }
}

/// Sent entries and errors, each sorted by index.
#[derive(Default)]
struct SendResults {
    sent: Vec<(usize, Value)>,
    errors: Vec<(usize, Value)>,
}

impl SendResults {
    fn record(
        &mut self,
        index: usize,
        mut entry: Map<String, Value>,
        outcome: Result<String, ClientError>,
    ) {
        match outcome {
            Ok(message_id) => {
                entry.insert("message_id".into(), json!(message_id));
                self.sent.push((index, Value::Object(entry)));
            }
            Err(error) => {
                let mut failure = error_value(&error);
                failure["index"] = json!(index);
                self.errors.push((index, failure));
            }
        }
    }

    fn result(mut self) -> Value {
        self.sent.sort_by_key(|(index, _)| *index);
        self.errors.sort_by_key(|(index, _)| *index);
        eprintln!("{} sent, {} failed", self.sent.len(), self.errors.len());
        json!({
            "sent": self.sent.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "errors": self.errors.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        })
    }
}

fn entry(index: usize, mode: &str) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("index".into(), json!(index));
    entry.insert("mode".into(), json!(mode));
    entry
}

pub async fn produce(common: &Common, options: &mut Options) -> Result<Outcome, Failure> {
    let topic = options.required("topic")?;
    let count: usize = options.number("count", 1)?;
    let mode = options.text("mode", "sync");
    let prefix = options.text("prefix", "msg");
    let size: usize = options.number("size", 100)?;
    if !["sync", "async", "mixed"].contains(&mode.as_str()) {
        return Err(format!("--mode must be sync, async or mixed, not {mode:?}").into());
    }
    options.done()?;
    let producer = Arc::new(start_producer(common, &topic).await?);
    let mut results = SendResults::default();
    // "async" sends are all in flight at once; "sync" ones are awaited one by one.
    let mut in_flight = JoinSet::new();
    for index in 0..count {
        let how = match mode.as_str() {
            "mixed" if index % 2 == 0 => "sync",
            "mixed" => "async",
            other => other,
        };
        let built = message(MessageBuilder::builder(), &topic, &prefix, index, size, &[]);
        let message = match built {
            Ok(message) => message,
            Err(error) => {
                results.record(index, entry(index, how), Err(error));
                continue;
            }
        };
        if how == "sync" {
            let outcome = producer
                .send(message)
                .await
                .map(|r| r.message_id().to_string());
            results.record(index, entry(index, how), outcome);
        } else {
            let producer = producer.clone();
            in_flight.spawn(async move {
                (
                    index,
                    producer
                        .send(message)
                        .await
                        .map(|r| r.message_id().to_string()),
                )
            });
        }
    }
    while let Some(done) = in_flight.join_next().await {
        let (index, outcome) = done.map_err(|e| format!("a send task failed: {e}"))?;
        results.record(index, entry(index, "async"), outcome);
    }
    if let Ok(producer) = Arc::try_unwrap(producer) {
        stop(producer).await;
    }
    Ok(Outcome::Result(results.result()))
}

pub async fn produce_fifo(common: &Common, options: &mut Options) -> Result<Outcome, Failure> {
    let topic = options.required("topic")?;
    let count: usize = options.number("count", 1)?;
    let groups: usize = options.number("groups", 1)?;
    let prefix = options.text("prefix", "msg");
    let size: usize = options.number("size", 100)?;
    if groups == 0 {
        return Err("--groups must be at least 1".into());
    }
    options.done()?;
    let producer = start_producer(common, &topic).await?;
    let mut results = SendResults::default();
    for index in 0..count {
        let group = format!("mg-{}", index % groups);
        let seq = index / groups;
        let mut entry = entry(index, "sync");
        entry.insert("message_group".into(), json!(group));
        entry.insert("seq".into(), json!(seq));
        let start = MessageBuilder::builder().set_message_group(group.clone());
        let outcome = match message(
            start,
            &topic,
            &prefix,
            index,
            size,
            &[("seq", seq.to_string())],
        ) {
            Ok(message) => producer
                .send(message)
                .await
                .map(|r| r.message_id().to_string()),
            Err(error) => Err(error),
        };
        results.record(index, entry, outcome);
    }
    stop(producer).await;
    Ok(Outcome::Result(results.result()))
}

pub async fn produce_delay(common: &Common, options: &mut Options) -> Result<Outcome, Failure> {
    let topic = options.required("topic")?;
    let prefix = options.text("prefix", "delay");
    let size: usize = options.number("size", 100)?;
    options.done()?;
    let producer = start_producer(common, &topic).await?;
    // The crate takes a delivery time in whole seconds and cannot recall, so "recalled" is not
    // sent: what was sent is named under "unsupported_steps".
    let delayed: [(&str, i64); 4] = [
        ("plus3", 3_000),
        ("plus1", 1_000),
        ("past", -5_000),
        ("too-far", 41 * 24 * 3_600_000),
    ];
    let mut sent = Map::new();
    let mut errors = Map::new();
    errors.insert("too-far".into(), Value::Null);
    errors.insert("recall-again".into(), Value::Null);
    for (index, (name, offset_ms)) in delayed.iter().enumerate() {
        // Rounded up to a whole second so that "plus1" is never due early.
        let due_s = (now_ms() + offset_ms + 999).div_euclid(1000);
        let start = MessageBuilder::builder().set_delivery_timestamp(due_s);
        let outcome = match message(
            start,
            &topic,
            &prefix,
            index,
            size,
            &[("name", name.to_string())],
        ) {
            Ok(message) => producer.send(message).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(receipt) => {
                sent.insert(
                    name.to_string(),
                    json!({"due_ms": due_s * 1000, "message_id": receipt.message_id(), "recall_handle": null}),
                );
            }
            Err(error) => {
                errors.insert(name.to_string(), error_value(&error));
            }
        }
    }
    stop(producer).await;
    Ok(Outcome::Result(json!({
        "sent": sent,
        "errors": errors,
        "recall": null,
        "unsupported_steps": {
            "recalled": "the Rust client (crate rocketmq 5.0.0) cannot recall a delayed message",
        },
        "notes": {"due_ms": "whole seconds: the Rust client sends delivery times in seconds"},
    })))
}

/// The checks the server asked the producer's checker, with what the checker answered.
type Asked = Arc<Mutex<Vec<Value>>>;

fn checker(
    asked: Asked,
) -> Box<dyn Fn(String, MessageView) -> TransactionResolution + Send + Sync> {
    Box::new(move |_transaction_id, view| {
        let name = view.properties().get("name").cloned().unwrap_or_default();
        eprintln!("checker asked about {name} ({})", view.message_id());
        asked
            .lock()
            .unwrap()
            .push(json!({"name": name, "at_ms": now_ms()}));
        match view.properties().get("decide").map(String::as_str) {
            Some("commit") => TransactionResolution::COMMIT,
            Some("rollback") => TransactionResolution::ROLLBACK,
            _ => TransactionResolution::UNKNOWN,
        }
    })
}

pub async fn produce_transaction(
    common: &Common,
    options: &mut Options,
) -> Result<Outcome, Failure> {
    let topic = options.required("topic")?;
    let linger: f64 = options.number("linger", 15.0)?;
    let prefix = options.text("prefix", "tx");
    let size: usize = options.number("size", 100)?;
    options.done()?;
    let asked: Asked = Arc::default();
    let mut option = ProducerOption::default();
    option.set_topics(vec![topic.clone()]);
    let mut producer =
        Producer::new_transaction_producer(option, common.client_option(), checker(asked.clone()))
            .map_err(|e| start_failure("producer", e))?;
    producer
        .start()
        .await
        .map_err(|e| start_failure("producer", e))?;

    let halves = [
        ("committed", None),
        ("rolled-back", None),
        ("checker-commits", Some("commit")),
        ("checker-rolls-back", Some("rollback")),
        ("checker-unsure", Some("unknown")),
    ];
    let mut sent = Map::new();
    let mut errors = Map::new();
    errors.insert("commit-again".into(), Value::Null);
    for (index, (name, decide)) in halves.iter().enumerate() {
        let mut extra = vec![("name", name.to_string())];
        if let Some(decide) = decide {
            extra.push(("decide", decide.to_string()));
        }
        let start = MessageBuilder::builder().enable_transaction();
        let outcome = match message(start, &topic, &prefix, index, size, &extra) {
            Ok(message) => producer.send_transaction_message(message).await,
            Err(error) => Err(error),
        };
        let transaction = match outcome {
            Ok(transaction) => transaction,
            Err(error) => {
                errors.insert(name.to_string(), error_value(&error));
                continue;
            }
        };
        sent.insert(name.to_string(), json!(transaction.message_id()));
        // Commit and rollback consume the transaction: the crate cannot commit twice.
        let ended = match *name {
            "committed" => Some(("commit", transaction.commit().await)),
            "rolled-back" => Some(("rollback", transaction.rollback().await)),
            _ => None,
        };
        if let Some((what, Err(error))) = ended {
            errors.insert(what.to_string(), error_value(&error));
        }
    }
    eprintln!(
        "{} half messages sent; lingering {linger} s for checks",
        sent.len()
    );
    tokio::time::sleep(Duration::from_secs_f64(linger)).await;
    let asked = asked.lock().unwrap().clone();
    stop(producer).await;
    Ok(Outcome::Result(json!({
        "sent": sent,
        "asked": asked,
        "errors": errors,
        "unsupported_steps": {
            "commit-again": "the Rust client's Transaction::commit consumes the transaction: it cannot commit twice",
        },
    })))
}
