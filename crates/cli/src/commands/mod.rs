//! One module per subcommand, plus the flag groups they share.

pub mod audit;
pub mod batch;
pub mod catalog;
pub mod common;
pub mod demo;
pub mod gen;
pub mod init;
pub mod replay;
pub mod serve;
pub mod stream;
