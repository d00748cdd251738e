//! Protocol tests, grouped by the section of the Raft paper (or Ongaro's thesis) they
//! exercise, all driven by the deterministic in-memory [`network::Cluster`].

mod network;

mod chaos;
mod codec_and_config;
mod election_5_2;
mod joint_consensus_4_3;
mod log_compaction_7;
mod malformed_input;
mod membership_4_1;
mod parallel_writes_10_2_1;
mod persistence_5_1;
mod prevote_and_check_quorum_9_6;
mod reads_6_4;
mod replication_5_3;
mod safety_5_4;
mod transfer_3_10;
