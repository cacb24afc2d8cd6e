//! Serving, apart from the API: the accept loop on hyper (`serve`), every
//! client bounded in connections and time (`conn`: per-address cap, head,
//! idle and body timeouts, severing Socket.IO transports at shutdown), the
//! per-connection service that enforces them (`service`), and the copied head
//! of upgrade requests (`request_head`, memory), and the forwarding of
//! Socket.IO requests to the node holding their session (`forward`).

pub mod conn;
pub mod forward;
pub mod request_head;
pub mod serve;
pub mod service;
