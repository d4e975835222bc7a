//! Moves started by hand: one plan (`drctl failover|failback start`: [`start_move`]), or every
//! plan whose primary is a region, in tier order ([`evacuation`]).

pub mod evacuation;
mod start;

pub use start::{MoveRequest, StartedMove, published_as_in, start_move};
