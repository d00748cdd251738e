//! The Prometheus endpoint of a real cluster: every node's `GET /metrics` (through
//! `curl` when it is installed, else a plain HTTP request) is well-formed text
//! exposition, parsed strictly here, and says what the cluster did.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{Cluster, ClusterOptions};

/// The body of `GET /metrics` at `port`.
fn scrape(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    if let Ok(output) = std::process::Command::new("curl").args(["-sf", "--max-time", "5", &url]).output() {
        assert!(output.status.success(), "curl {url}: {output:?}");
        return String::from_utf8(output.stdout).unwrap();
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// One sample: the metric family it belongs to, its labels, its value.
type Samples = BTreeMap<String, f64>;

/// Parses text exposition strictly: every family has HELP then TYPE before its samples,
/// names and labels are well-formed, values are numbers, a histogram's buckets are
/// cumulative and end with `+Inf` equal to its count. Returns each sample by its full
/// name with labels.
fn parse(text: &str) -> Samples {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name.chars().enumerate().all(|(at, character)| {
                character.is_ascii_alphabetic()
                    || character == '_'
                    || character == ':'
                    || (at > 0 && character.is_ascii_digit())
            })
    };
    let mut samples = Samples::new();
    let (mut family, mut kind) = (String::new(), String::new());
    let mut helped = false;
    let mut buckets: Vec<f64> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            family = name.to_string();
            helped = true;
            buckets.clear();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, given) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helped && name == family, "TYPE without its HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&given), "{line}");
            kind = given.to_string();
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner =
                    labels.strip_prefix('{').and_then(|labels| labels.strip_suffix('}')).expect("{labels}");
                for pair in inner.split(',') {
                    let (label, quoted) = pair.split_once('=').expect("label=value");
                    assert!(valid_name(label) && quoted.starts_with('"') && quoted.ends_with('"'), "{line}");
                }
            }
        }
        match kind.as_str() {
            "histogram" => {
                assert!(name.starts_with(&family), "{line} outside {family}");
                let part = &name[family.len()..];
                assert!(["_bucket", "_sum", "_count"].contains(&part), "{line}");
                if part == "_bucket" {
                    assert!(
                        buckets.last().is_none_or(|&before| value >= before),
                        "buckets not cumulative: {line}"
                    );
                    buckets.push(value);
                }
                if part == "_count" {
                    assert!(
                        series_has_inf(text, &family, value),
                        "+Inf bucket differs from the count in {family}"
                    );
                }
            }
            _ => assert_eq!(name, family, "a sample outside its family: {line}"),
        }
        if kind == "counter" {
            assert!(value >= 0.0 && name.ends_with("_total"), "{line}");
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

fn series_has_inf(text: &str, family: &str, count: f64) -> bool {
    text.lines().any(|line| line == format!("{family}_bucket{{le=\"+Inf\"}} {count}"))
}

#[test]
fn every_node_serves_well_formed_prometheus_text_that_follows_the_cluster() {
    let ports = support::free_ports(3);
    let mut cluster = Cluster::start("metrics", ClusterOptions::default());
    // Each node with its own metrics port: restarted with the flag.
    for (node, port) in cluster.nodes.iter_mut().zip(&ports) {
        node.arguments.extend(["--metrics-addr".to_string(), format!("127.0.0.1:{port}")]);
    }
    for id in 1..=3 {
        cluster.node(id).kill();
        cluster.restart(id);
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let leader_port = cluster.nodes[leader as usize - 1].port;
    for key in 0..20 {
        support::command(leader_port, &["SET", &format!("key{key}"), "value"]).unwrap();
    }
    support::command(leader_port, &["GET", "key1"]).unwrap();
    let follower = leader % 3 + 1;
    support::command(cluster.nodes[follower as usize - 1].port, &["SET", "k", "v"]).unwrap();

    let on_leader = parse(&scrape(ports[leader as usize - 1]));
    assert_eq!(on_leader["raft_role{role=\"leader\"}"], 1.0);
    assert_eq!(on_leader["raft_role{role=\"follower\"}"], 0.0);
    assert!(on_leader["raft_term"] >= 1.0);
    assert!(on_leader["raft_commit_index"] >= 20.0, "{on_leader:?}");
    assert!(on_leader["kv_proposals_total"] >= 20.0);
    assert!(on_leader["kv_reads_total"] >= 1.0);
    assert!(on_leader["kv_keys"] >= 20.0);
    assert!(on_leader["raft_fsync_seconds_count"] >= 1.0);
    assert!(on_leader["raft_writes_per_fsync_count"] >= 1.0);
    for peer in (1..=3).filter(|&id| id != leader) {
        assert!(
            on_leader.contains_key(&format!("raft_peer_match_index{{peer=\"{peer}\"}}")),
            "{on_leader:?}"
        );
        assert!(on_leader.contains_key(&format!("raft_peer_lag_entries{{peer=\"{peer}\"}}")));
    }
    let on_follower = parse(&scrape(ports[follower as usize - 1]));
    assert_eq!(on_follower["raft_role{role=\"follower\"}"], 1.0);
    assert!(on_follower["kv_redirects_total"] >= 1.0, "the SET at the follower was redirected");
}

#[test]
#[should_panic(expected = "buckets not cumulative")]
fn the_parser_refuses_a_histogram_whose_buckets_go_down() {
    parse("# HELP h a histogram\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"2\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 3\n");
}

#[test]
#[should_panic(expected = "TYPE without its HELP")]
fn the_parser_refuses_a_family_without_help() {
    parse("# TYPE g gauge\ng 1\n");
}
