//! The GDB remote serial protocol, one module per packet family: request
//! builders write into a reused buffer, reply parsers borrow the reply.

pub mod breakpoints;
pub mod memory;
pub mod packet;
pub mod query;
pub mod registers;
pub mod resume;
