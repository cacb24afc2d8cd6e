//! Serving and memory tuning, apart from the API: the accept loop on hyper
//! (`serve`) and the copied head of upgrade requests (`request_head`).

pub mod request_head;
pub mod serve;
