//! History in a real Redis: positions, idempotent recording, recovery and its
//! limits (trimming, a lost epoch, the recovery limit), and coverage: the
//! recording duty, proofs and gaps (docs/positions.md, "Coverage").

use std::time::Duration;

use tidings::history::*;
use tidings_testkit::RedisServer;

async fn connect(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

const LONG: Duration = Duration::from_secs(60);

/// Takes the recording duty as a recorder that has recorded everything
/// since the beginning (so no gap is written), as a test stand-in for a
/// recorder that was up all along.
async fn hold_duty(history: &History, c: &mut redis::aio::MultiplexedConnection) {
    let claim = history.claim(c, "always-up", 0, None, LONG).await.unwrap();
    assert_eq!(claim, Claim::Held { gap: None });
}

#[tokio::test]
async fn published_messages_get_increasing_positions_in_one_epoch() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let (a, _) = history.publish(&mut c, "ws:inventory", b"{\"n\":1}").await.unwrap();
    let (b, _) = history.publish(&mut c, "ws:inventory", b"{\"n\":2}").await.unwrap();
    assert_eq!(a.epoch, b.epoch);
    assert!(a.id < b.id);
}

#[tokio::test]
async fn recording_the_same_message_twice_stores_it_once_at_one_position() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let (published, _) = history.publish(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let recorded = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    assert_eq!(published, recorded);
    let len: u64 =
        redis::cmd("XLEN").arg(stream_key("ws:orders")).query_async(&mut c).await.unwrap();
    assert_eq!(len, 1);
}

#[tokio::test]
async fn recovery_returns_everything_after_a_position() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let mut positions = Vec::new();
    for n in 0..5 {
        positions.push(
            history
                .record(&mut c, "ws:finance", format!("{{\"n\":{n}}}").as_bytes())
                .await
                .unwrap(),
        );
    }
    hold_duty(&history, &mut c).await;
    let recovery = history.recover(&mut c, "ws:finance", &positions[1], 0).await.unwrap();
    assert!(recovery.recovered, "{:?}", recovery.unrecovered);
    let got: Vec<_> =
        recovery.entries.iter().map(|e| String::from_utf8(e.payload.clone()).unwrap()).collect();
    assert_eq!(got, ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
    let at_end = history.recover(&mut c, "ws:finance", &positions[4], 0).await.unwrap();
    assert!(at_end.recovered && at_end.entries.is_empty());
}

#[tokio::test]
async fn a_trimmed_gap_is_reported_as_not_recovered() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig { max_len: 1, ..HistoryConfig::default() });
    let first = history.record(&mut c, "ws:system", b"{\"n\":0}").await.unwrap();
    // MAXLEN ~ trims whole macro nodes only; trim exactly to make the gap certain.
    for n in 1..5 {
        history.record(&mut c, "ws:system", format!("{{\"n\":{n}}}").as_bytes()).await.unwrap();
    }
    let _: u64 = redis::cmd("XTRIM")
        .arg(stream_key("ws:system"))
        .arg("MAXLEN")
        .arg(2)
        .query_async(&mut c)
        .await
        .unwrap();
    hold_duty(&history, &mut c).await;
    let recovery = history.recover(&mut c, "ws:system", &first, 0).await.unwrap();
    assert!(!recovery.recovered);
    assert_eq!(recovery.unrecovered, Some(Unrecovered::Trimmed));
    assert_eq!(recovery.entries.len(), 2, "what remains still follows");
}

#[tokio::test]
async fn a_new_epoch_after_data_loss_is_reported_without_streaming_the_new_history() {
    let mut server = RedisServer::start();
    let history = History::new(HistoryConfig::default());
    let before = {
        let mut c = connect(&server).await;
        history.record(&mut c, "ws:approvals", b"{\"n\":0}").await.unwrap()
    };
    server.restart();
    let mut c = connect(&server).await;
    history.record(&mut c, "ws:approvals", b"{\"n\":1}").await.unwrap();
    let recovery = history.recover(&mut c, "ws:approvals", &before, 0).await.unwrap();
    assert!(!recovery.recovered);
    assert_eq!(recovery.unrecovered, Some(Unrecovered::Epoch));
    assert_ne!(recovery.epoch, before.epoch);
    assert!(recovery.entries.is_empty(), "another epoch's history is not streamed");
}

#[tokio::test]
async fn a_gap_longer_than_the_limit_returns_the_newest_entries() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig { recover_limit: 3, ..HistoryConfig::default() });
    let first = history.record(&mut c, "ws:broadcast", b"{\"n\":0}").await.unwrap();
    for n in 1..10 {
        history.record(&mut c, "ws:broadcast", format!("{{\"n\":{n}}}").as_bytes()).await.unwrap();
    }
    hold_duty(&history, &mut c).await;
    let recovery = history.recover(&mut c, "ws:broadcast", &first, 0).await.unwrap();
    assert!(!recovery.recovered);
    let got: Vec<_> =
        recovery.entries.iter().map(|e| String::from_utf8(e.payload.clone()).unwrap()).collect();
    assert_eq!(got, ["{\"n\":7}", "{\"n\":8}", "{\"n\":9}"]);
}

#[tokio::test]
async fn old_entries_are_trimmed_by_age() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig {
        max_age: Duration::from_millis(1),
        ..HistoryConfig::default()
    });
    history.record(&mut c, "ws:customers", b"{\"n\":0}").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    history.record(&mut c, "ws:customers", b"{\"n\":1}").await.unwrap();
    let len: u64 =
        redis::cmd("XLEN").arg(stream_key("ws:customers")).query_async(&mut c).await.unwrap();
    assert_eq!(len, 1, "the entry older than max_age is trimmed by the next append");
}

#[tokio::test]
async fn an_appended_stream_and_its_epoch_expire_after_max_age_without_writes() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    history.record(&mut c, "ws:suppliers", b"{\"n\":0}").await.unwrap();
    let max_age = i64::try_from(HistoryConfig::default().max_age.as_millis()).unwrap();
    for key in [stream_key("ws:suppliers"), tidings::history::epoch_key("ws:suppliers")] {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut c).await.unwrap();
        assert!(ttl > max_age - 5_000 && ttl <= max_age, "{key}: PTTL {ttl}");
    }
}

#[tokio::test]
async fn recording_many_keeps_their_order_and_agrees_with_single_records() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let already = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let batch: Vec<(&str, &[u8])> =
        vec![("ws:orders", b"{\"n\":1}"), ("ws:orders", b"{\"n\":2}"), ("ws:system", b"{\"n\":3}")];
    let positions = history.record_many(&mut c, &batch).await.unwrap();
    assert_eq!(positions[0], already, "a message recorded before keeps its position");
    assert!(positions[1].id > positions[0].id);
    hold_duty(&history, &mut c).await;
    let recovery = history.recover(&mut c, "ws:orders", &already, 0).await.unwrap();
    assert!(recovery.recovered, "{:?}", recovery.unrecovered);
    assert_eq!(recovery.entries.len(), 1);
    assert_eq!(recovery.entries[0].position, positions[1]);
}

#[tokio::test]
async fn recording_works_again_after_redis_forgets_its_scripts() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    history.record_many(&mut c, &[("ws:orders", b"{\"n\":1}")]).await.unwrap();
    redis::cmd("SCRIPT").arg("FLUSH").exec_async(&mut c).await.unwrap();
    let positions = history.record_many(&mut c, &[("ws:orders", b"{\"n\":2}")]).await.unwrap();
    assert_eq!(positions.len(), 1);
}

#[tokio::test]
async fn with_nobody_holding_the_recording_duty_nothing_is_recovered() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let first = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    history.record(&mut c, "ws:orders", b"{\"n\":2}").await.unwrap();
    let recovery = history.recover(&mut c, "ws:orders", &first, 0).await.unwrap();
    assert!(!recovery.recovered);
    assert_eq!(recovery.unrecovered, Some(Unrecovered::Unrecorded));
    assert_eq!(recovery.entries.len(), 1, "what was recorded still follows");
}

#[tokio::test]
async fn a_period_nobody_proved_recorded_is_a_gap_that_recovery_across_it_reports() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let first_claim = history.claim(&mut c, "a", 0, None, LONG).await.unwrap();
    assert_eq!(first_claim, Claim::Held { gap: None });
    let before = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let proved_until = redis_time(&mut c).await.unwrap();
    assert!(history.prove(&mut c, "a", proved_until, LONG).await.unwrap());
    // Recorder a stops; b subscribes later and takes the duty over.
    history.release(&mut c, "a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b_since = redis_time(&mut c).await.unwrap();
    let Claim::Held { gap: Some(gap) } =
        history.claim(&mut c, "b", b_since, None, LONG).await.unwrap()
    else {
        panic!("b took the duty over without a gap")
    };
    assert_eq!(gap, format!("{proved_until}-{b_since}"));
    let across = history.recover(&mut c, "ws:orders", &before, 0).await.unwrap();
    assert!(!across.recovered);
    assert!(matches!(across.unrecovered, Some(Unrecovered::Gap(_))), "{:?}", across.unrecovered);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = history.record(&mut c, "ws:orders", b"{\"n\":2}").await.unwrap();
    let since_the_gap = history.recover(&mut c, "ws:orders", &after, 0).await.unwrap();
    assert!(since_the_gap.recovered, "{:?}", since_the_gap.unrecovered);
}

#[tokio::test]
async fn a_takeover_by_a_recorder_that_recorded_since_before_the_last_proof_leaves_no_gap() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    history.claim(&mut c, "a", 0, None, LONG).await.unwrap();
    let b_since = redis_time(&mut c).await.unwrap();
    let before = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let proved_until = redis_time(&mut c).await.unwrap();
    history.prove(&mut c, "a", proved_until, LONG).await.unwrap();
    assert_eq!(
        history.claim(&mut c, "b", b_since, None, LONG).await.unwrap(),
        Claim::Busy { holder: "a".into() },
        "the duty is a's while it lasts"
    );
    history.release(&mut c, "a").await.unwrap();
    assert_eq!(
        history.claim(&mut c, "b", b_since, None, LONG).await.unwrap(),
        Claim::Held { gap: None }
    );
    let recovery = history.recover(&mut c, "ws:orders", &before, 0).await.unwrap();
    assert!(recovery.recovered, "{:?}", recovery.unrecovered);
}

#[tokio::test]
async fn a_recorder_may_take_its_own_stale_duty_over_at_once_recording_the_gap() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    history.claim(&mut c, "old", 0, None, LONG).await.unwrap();
    let since = redis_time(&mut c).await.unwrap() + 1;
    let claim = history.claim(&mut c, "new", since, Some("old"), LONG).await.unwrap();
    assert!(matches!(claim, Claim::Held { gap: Some(_) }), "{claim:?}");
}

#[tokio::test]
async fn a_position_that_was_never_recorded_is_not_recovered() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    hold_duty(&history, &mut c).await;
    let real = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    for made_up in [
        Position { epoch: real.epoch.clone(), id: StreamId { millis: u64::MAX, seq: u64::MAX } },
        Position {
            epoch: real.epoch.clone(),
            id: StreamId { millis: real.id.millis + 60_000, seq: 0 },
        },
        Position { epoch: real.epoch.clone(), id: StreamId { millis: 1, seq: 0 } },
    ] {
        let recovery = history.recover(&mut c, "ws:orders", &made_up, 0).await.unwrap();
        assert!(!recovery.recovered, "{made_up} was taken as recovered");
        assert_eq!(recovery.unrecovered, Some(Unrecovered::Trimmed), "{made_up}");
    }
}

#[tokio::test]
async fn a_recovery_needing_a_later_proof_than_the_holder_gave_is_unproven() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    hold_duty(&history, &mut c).await;
    let first = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let now = redis_time(&mut c).await.unwrap();
    let early = history.recover(&mut c, "ws:orders", &first, now).await.unwrap();
    assert_eq!(early.unrecovered, Some(Unrecovered::Unproven));
    history.prove(&mut c, "always-up", now, LONG).await.unwrap();
    let proven = history.recover(&mut c, "ws:orders", &first, now).await.unwrap();
    assert!(proven.recovered, "{:?}", proven.unrecovered);
}

#[tokio::test]
async fn gaps_beyond_the_kept_number_still_refuse_positions_before_them() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    hold_duty(&history, &mut c).await;
    let old = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let base = redis_time(&mut c).await.unwrap();
    // 1,001 takeovers with a gap each: the oldest gap is dropped from the set.
    let mut previous = "always-up".to_owned();
    for n in 0..1001u64 {
        let session = format!("s{n}");
        history.claim(&mut c, &session, base + 10 + 2 * n, Some(&previous), LONG).await.unwrap();
        previous = session;
    }
    let gaps: u64 = redis::cmd("ZCARD").arg(GAPS_KEY).query_async(&mut c).await.unwrap();
    assert_eq!(gaps, 1000);
    let recovery = history.recover(&mut c, "ws:orders", &old, 0).await.unwrap();
    assert!(
        matches!(recovery.unrecovered, Some(Unrecovered::Gap(_))),
        "{:?}",
        recovery.unrecovered
    );
}

#[tokio::test]
async fn a_payload_repeated_within_one_batch_is_recorded_once_at_one_position() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let batch: Vec<(&str, &[u8])> =
        vec![("ws:orders", b"{\"n\":1}"), ("ws:system", b"{\"n\":1}"), ("ws:orders", b"{\"n\":1}")];
    let positions = history.record_many(&mut c, &batch).await.unwrap();
    assert_eq!(positions[0], positions[2]);
    assert_ne!(positions[0].id, StreamId { millis: 0, seq: 0 });
    assert_eq!(server.cli(&["XLEN", "tidings:history:{ws:orders}"]), "1");
    assert_eq!(server.cli(&["XLEN", "tidings:history:{ws:system}"]), "1");
}
