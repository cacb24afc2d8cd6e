//! Where Redis is (`--redis-url`): one server (`redis://...`) or a Redis
//! Cluster (`redis+cluster://host:port[,host:port...]`), and the command
//! connection every Redis user of the node shares (chat store, recovery
//! streams, latest prices). On a cluster the command connection is redis-rs's
//! cluster client: it routes each command to the master of its key's slot and
//! follows failovers (MOVED, slot map refresh); every multi-key operation of
//! roomcast names keys of one hash tag, so it stays on one slot.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Retries of a transaction redirected by MOVED (the slot changed hands).
const PIPELINE_RETRIES: usize = 5;
const PIPELINE_RETRY_GAP: Duration = Duration::from_millis(100);

/// The first key of a pipeline's first command (its first argument).
fn first_key(pipeline: &Pipeline) -> Option<Vec<u8>> {
    let cmd = pipeline.cmd_iter().next()?;
    match cmd.args_iter().nth(1)? {
        redis::Arg::Simple(key) => Some(key.to_vec()),
        _ => None,
    }
}

fn is_moved(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved) || e.to_string().contains("Moved")
}

/// The scheme of a Redis Cluster URL.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// The Redis a node works with, chosen once from `--redis-url`.
#[derive(Clone)]
pub enum Target {
    Single(redis::Client),
    /// The seed nodes of a cluster (`redis://[auth@]host:port` each).
    Cluster(Vec<String>),
}

impl Target {
    /// Parses `--redis-url`. The error never repeats the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
            return redis::Client::open(url)
                .map(Target::Single)
                .map_err(|e| format!("--redis-url is not a valid Redis URL: {e}"));
        };
        let rest = rest.trim_end_matches('/');
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (format!("{auth}@"), hosts),
            None => (String::new(), rest),
        };
        let nodes: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{auth}{h}"))
            .collect();
        if nodes.is_empty() {
            return Err("--redis-url redis+cluster:// names no host:port".into());
        }
        for node in &nodes {
            redis::Client::open(node.as_str())
                .map_err(|e| format!("--redis-url is not a valid Redis Cluster URL: {e}"))?;
        }
        Ok(Target::Cluster(nodes))
    }

    /// A cluster client builder with the node's timeouts (no retries beyond a few).
    pub fn cluster_builder(nodes: &[String]) -> ClusterClientBuilder {
        ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
    }

    /// A command connection that reconnects (and, on a cluster, follows the slots).
    pub async fn commands(&self) -> Result<Commands, String> {
        match self {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2);
                let conn = tokio::time::timeout(
                    START_TIMEOUT,
                    ConnectionManager::new_with_config(client.clone(), config),
                )
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
                Ok(Commands::Single(conn))
            }
            Target::Cluster(nodes) => {
                let client: ClusterClient =
                    Self::cluster_builder(nodes).build().map_err(|e| e.to_string())?;
                let conn = tokio::time::timeout(START_TIMEOUT, client.get_async_connection())
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                Ok(Commands::Cluster(conn))
            }
        }
    }
}

/// A command connection to one Redis or to a cluster; cheap to clone.
#[derive(Clone)]
pub enum Commands {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Commands {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Commands::Cluster(_))
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(conn) => conn.req_packed_command(cmd),
            Commands::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Commands::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Commands::Cluster(conn) => Box::pin(async move {
                // A transaction (MULTI/EXEC) that meets MOVED right after a
                // failover is not redirected by redis-rs: retry it while the
                // slot map catches up.
                let mut attempt = 0;
                loop {
                    match conn.req_packed_commands(pipeline, offset, count).await {
                        Err(e) if attempt < PIPELINE_RETRIES && is_moved(&e) => {
                            attempt += 1;
                            // A plain command on the same key meets MOVED too,
                            // which makes redis-rs refresh its slot map.
                            if let Some(key) = first_key(pipeline) {
                                let mut probe = redis::cmd("EXISTS");
                                probe.arg(key);
                                let _ = conn.req_packed_command(&probe).await;
                            }
                            tokio::time::sleep(PIPELINE_RETRY_GAP).await;
                        }
                        result => return result,
                    }
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Single(conn) => conn.get_db(),
            Commands::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_list_their_seed_nodes() {
        let Ok(Target::Cluster(nodes)) = Target::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/")
        else {
            panic!("not a cluster");
        };
        assert_eq!(nodes, ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
        let Ok(Target::Cluster(nodes)) = Target::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000")
        else {
            panic!("not a cluster");
        };
        assert_eq!(nodes, ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7000"]);
        assert!(Target::parse("redis+cluster://").is_err());
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379"),
            Ok(Target::Single(_))
        ));
    }
}
