//! The simple-consume scenario (the crate has a SimpleConsumer only; no PushConsumer).

use std::time::{Duration, Instant};

use base64::Engine;
use rocketmq::conf::SimpleConsumerOption;
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageView;
use rocketmq::SimpleConsumer;
use serde_json::{json, Value};

use crate::options::Options;
use crate::{error_value, now_ms, start_failure, Common, Failure, Outcome};

/// How long one receive waits for messages to arrive (long polling).
const AWAIT: Duration = Duration::from_secs(5);

/// Everything a consumer sees of a received message. The crate keeps only the whole seconds
/// of the born and delivery timestamps.
fn describe(view: &MessageView) -> Value {
    let mut keys = view.keys().to_vec();
    keys.sort();
    json!({
        "message_id": view.message_id(),
        "topic": view.topic(),
        "body": base64::engine::general_purpose::STANDARD.encode(view.body()),
        "tag": view.tag(),
        "keys": keys,
        "properties": view.properties(),
        "delivery_attempt": view.delivery_attempt(),
        "message_group": view.message_group(),
        "delivery_timestamp_ms": view.delivery_timestamp().map(|s| s * 1000),
        "born_timestamp_ms": view.born_timestamp() * 1000,
        "born_host": view.born_host(),
        "at_ms": now_ms(),
    })
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

pub async fn simple_consume(common: &Common, options: &mut Options) -> Result<Outcome, Failure> {
    if options.has("change-invisible-s") {
        return Ok(Outcome::Unsupported(
            "the Rust client (crate rocketmq 5.0.0) cannot change a message's invisible duration"
                .into(),
        ));
    }
    let topic = options.required("topic")?;
    let group = options.required("group")?;
    let expect: usize = options.number("expect", 1)?;
    let ack = options.switch("ack");
    let invisible: f64 = options.number("invisible-s", 30.0)?;
    let max_wait: f64 = options.number("max-wait-s", 60.0)?;
    let batch: i32 = options.number("batch", 32)?;
    let expression = match (options.optional("tag"), options.optional("sql")) {
        (Some(_), Some(_)) => return Err("--tag and --sql exclude each other".into()),
        (None, Some(sql)) => FilterExpression::new(FilterType::Sql, sql),
        (Some(tag), None) => FilterExpression::new(FilterType::Tag, tag),
        (None, None) => FilterExpression::new(FilterType::Tag, "*"),
    };
    options.done()?;

    let mut option = SimpleConsumerOption::default();
    option.set_consumer_group(group);
    option.set_topics(vec![topic.clone()]);
    let mut client_option = common.client_option();
    client_option.set_long_polling_timeout(AWAIT);
    let mut consumer = SimpleConsumer::new(option, client_option)
        .map_err(|e| start_failure("simple consumer", e))?;
    consumer
        .start()
        .await
        .map_err(|e| start_failure("simple consumer", e))?;

    let mut received = Vec::new();
    let mut ack_errors = Vec::new();
    let mut receive_errors = Vec::new();
    let deadline = Instant::now() + seconds(max_wait);
    while received.len() < expect && Instant::now() < deadline {
        let views = match consumer
            .receive_with(&topic, &expression, batch, seconds(invisible))
            .await
        {
            Ok(views) => views,
            Err(error) => {
                if Instant::now() < deadline {
                    receive_errors.push(error_value(&error));
                    // Not a tight loop against a failing server.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        for view in views {
            received.push(describe(&view));
            if ack {
                if let Err(error) = consumer.ack(&view).await {
                    let mut failure = error_value(&error);
                    failure["message_id"] = json!(view.message_id());
                    failure["op"] = json!("ack");
                    ack_errors.push(failure);
                }
            }
        }
    }
    eprintln!("{} received", received.len());
    if let Err(e) = consumer.shutdown().await {
        eprintln!("stopping the simple consumer failed: {e}");
    }
    Ok(Outcome::Result(json!({
        "received": received,
        "ack_errors": ack_errors,
        "receive_errors": receive_errors,
    })))
}
