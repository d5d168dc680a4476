//! Shared test harness, one concern per file: loopback ports (`ports`), child processes and
//! waiting with a deadline (`process`), a small HTTP client (`http`), exposition parsing
//! (`exposition`), the AWS emulator (`aws`), the Alibaba and Tencent test servers (`doubles`),
//! misbehaving backends (`servers`) and a real Prometheus and Alertmanager (`stack`).

#![allow(dead_code)]

mod aws;
mod doubles;
mod exposition;
mod http;
mod ports;
mod process;
pub mod servers;
pub mod stack;

pub use aws::*;
pub use doubles::*;
pub use exposition::*;
pub use http::*;
pub use ports::*;
pub use process::*;
