//! Black-box tests of one roomcast node: spawn it on port 0 in-process, talk to
//! it over HTTP and a raw Socket.IO client. (Compatibility with the real Node
//! client is proven by `tests/compat`.)

mod access;
mod connections;
mod dashboard;
mod helpers;
mod http_health_metrics;
mod http_publish;
mod identity;
mod limits;
mod logs;
mod presence_cost;
mod shutdown;
mod sockets;
mod store_contract;
mod ws_plain;
mod ws_raw;
