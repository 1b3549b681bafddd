//! `collect` on a secured cluster: TLS with certificate verification and SASL/SCRAM over TLS,
//! against tansu behind stunnel (`choreoscope_e2e::secure`), and the one-line errors when the
//! cluster refuses — a wrong password, an untrusted certificate, plaintext to a TLS listener.
//! The producers are the SDK's clients with the same settings, as a service would configure them.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use choreoscope::store::Store;
use choreoscope_e2e::secure::{Auth, SecureCluster};
use choreoscope_e2e::TestBroker;
use common::{produce_many, wait_for, CollectorProcess, NO_GROUP_POLLS};

const EVENTS: usize = 300;

/// The OTLP receivers off: the tests of this binary run collectors at once, and the default
/// ports can be bound by one only.
const NO_OTLP: [&str; 4] = ["--otlp-grpc", "off", "--otlp-http", "off"];

/// Creates a topic on `broker`, produces `EVENTS` SDK-stamped events into it, and returns it.
async fn topic_with_events(broker: &TestBroker) -> String {
    let topic = TestBroker::unique_topic("secure");
    broker.create_topics(&[&topic], 2).await.unwrap();
    produce_many(&broker.producer().unwrap(), &topic, EVENTS).await;
    topic
}

/// Runs `choreoscope collect` with `args` and `env` (over `RUST_LOG=warn`) until it exits (at
/// most 60 s).
fn collect_until_it_exits(cluster: &SecureCluster, args: &[&str], env: &[(&str, &str)]) -> Output {
    let db = format!("sqlite://{}", cluster.dir().join("refused.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
        .args(["collect", "--brokers", &cluster.bootstrap(), "--db", &db])
        .args(["--listen", &common::free_addr().to_string()])
        .args(["--kafka", "broker.address.family=v4"])
        .args(NO_GROUP_POLLS)
        .args(NO_OTLP)
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "collect kept running on a cluster that refuses it: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// The line `collect` stopped with, after checking it stopped with exactly one error line.
fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "collect must fail: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    errors[0].to_owned()
}

async fn open(db: &str) -> Store {
    let start = Instant::now();
    loop {
        match Store::connect(db).await {
            Ok(store) => return store,
            Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("{db}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `choreoscope collect` on `topic` of `cluster` with `flags` (besides the test's own) and
/// `env`, and checks it stores every event exactly once, then stops cleanly.
async fn collects_every_event(
    cluster: &SecureCluster,
    topic: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) {
    let db = format!("sqlite://{}", cluster.dir().join("collected.db").display());
    let collector = CollectorProcess::start_with_env(
        &TestBroker::with_properties(cluster.bootstrap(), vec![]),
        &db,
        "choreoscope-secured",
        topic,
        &[
            &NO_GROUP_POLLS[..],
            &NO_OTLP,
            &["--kafka", "broker.address.family=v4"],
            flags,
        ]
        .concat(),
        env,
    );
    let counts = wait_for(&open(&db).await, EVENTS as i64, Duration::from_secs(120)).await;
    assert_eq!(
        (counts.events, counts.deliveries),
        (EVENTS as i64, EVENTS as i64)
    );
    assert!(collector.stop().success());
}

#[tokio::test]
async fn tls_with_the_clusters_ca_collects_every_event() {
    let cluster = SecureCluster::start(Auth::None).unwrap();
    let topic = topic_with_events(&cluster.broker(&[])).await;
    let ca = cluster.ca_file().display().to_string();
    collects_every_event(&cluster, &topic, &["--ssl-ca", &ca], &[]).await;
}

#[tokio::test]
async fn sasl_scram_over_tls_collects_every_event_with_the_password_from_the_environment() {
    let cluster = SecureCluster::start(Auth::Scram(&[
        ("orders-service", "orders-pw", "scram256"),
        ("choreoscope", "collector-pw", "scram512"),
    ]))
    .unwrap();
    // The service's own producer: the SDK over the client settings it is given.
    let service = cluster.broker(&[
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "orders-service"),
        ("sasl.password", "orders-pw"),
    ]);
    let topic = topic_with_events(&service).await;
    let ca = cluster.ca_file().display().to_string();
    // As the README's "On a real cluster" says it.
    let flags = [
        "--security-protocol",
        "sasl_ssl",
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        "choreoscope",
        "--ssl-ca",
        &ca,
    ];
    collects_every_event(
        &cluster,
        &topic,
        &flags,
        &[("CHOREOSCOPE_SASL_PASSWORD", "collector-pw")],
    )
    .await;
}

#[tokio::test]
async fn a_wrong_password_stops_collect_with_one_line_naming_the_credentials() {
    let cluster =
        SecureCluster::start(Auth::Scram(&[("choreoscope", "right", "scram512")])).unwrap();
    let ca = cluster.ca_file().display().to_string();
    let output = collect_until_it_exits(
        &cluster,
        &[
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            "choreoscope",
            "--ssl-ca",
            &ca,
        ],
        &[("CHOREOSCOPE_SASL_PASSWORD", "wrong")],
    );
    let line = error_line(&output);
    assert!(
        line.starts_with("error: the cluster refused the collector's credentials ("),
        "{line}"
    );
    assert!(line.contains("--sasl-username"), "{line}");
    assert!(
        !line.contains("wrong"),
        "the password is never shown: {line}"
    );
}

#[tokio::test]
async fn msk_iam_sends_a_token_signed_by_the_aws_chain_and_a_refusal_names_the_aws_credentials() {
    // The collector signs its token (librdkafka asks for one as the client starts) and sends
    // it; tansu, which knows no AWS signature, refuses it as it would refuse a signature MSK
    // cannot verify.
    let cluster = SecureCluster::start(Auth::Scram(&[("choreoscope", "pw", "scram512")])).unwrap();
    let ca = cluster.ca_file().display().to_string();
    let nowhere = cluster.dir().join("no-aws-config").display().to_string();
    let output = collect_until_it_exits(
        &cluster,
        &[
            "--sasl-mechanism",
            "AWS_MSK_IAM",
            "--aws-region",
            "eu-west-1",
            "--ssl-ca",
            &ca,
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDCHOREOSCOPETEST"),
            ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key"),
            ("AWS_CONFIG_FILE", nowhere.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", nowhere.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("RUST_LOG", "warn,choreoscope::cluster=info"),
        ],
    );
    let line = error_line(&output);
    assert!(
        line.starts_with("error: the cluster refused the collector's credentials ("),
        "{line}"
    );
    assert!(
        line.contains("with AWS_MSK_IAM, the AWS credentials"),
        "{line}"
    );
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains("AWS_MSK_IAM: signed a new token") && log.contains("eu-west-1"),
        "the token was asked for and signed: {log}"
    );
    let all = format!("{log}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        !all.contains("not-a-real-secret-key"),
        "the secret key is never shown: {all}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_stops_collect_with_one_line_naming_the_ca() {
    let cluster = SecureCluster::start(Auth::None).unwrap();
    let other = cluster.other_ca_file().display().to_string();
    let output = collect_until_it_exits(&cluster, &["--ssl-ca", &other], &[]);
    let line = error_line(&output);
    assert!(
        line.starts_with("error: the broker's TLS certificate is not trusted ("),
        "{line}"
    );
    assert!(line.contains("--ssl-ca"), "{line}");
}

#[tokio::test]
async fn plaintext_to_a_tls_listener_stops_collect_with_one_line_naming_the_protocol() {
    let cluster = SecureCluster::start(Auth::None).unwrap();
    let output = collect_until_it_exits(&cluster, &[], &[]);
    let line = error_line(&output);
    assert!(
        line.starts_with("error: the listener speaks another security protocol ("),
        "{line}"
    );
}

#[tokio::test]
async fn inconsistent_security_flags_stop_collect_before_connecting() {
    let cluster = SecureCluster::start(Auth::None).unwrap();
    let output = collect_until_it_exits(
        &cluster,
        &[
            "--sasl-mechanism",
            "SCRAM-SHA-256",
            "--sasl-username",
            "choreoscope",
        ],
        &[],
    );
    let line = error_line(&output);
    assert!(
        line.contains("SCRAM-SHA-256 needs --sasl-username and a password"),
        "{line}"
    );
}
