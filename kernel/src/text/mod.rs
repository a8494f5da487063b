//! Text handling for the console: input from the vty ([`input`]), the line editor, numbers and sizes, boot arguments.

pub mod bootargs;
pub mod input;
pub mod line;
pub mod number;

pub use line::{LineEditor, LineEvent, MAX_LINE};
pub use number::{parse_number, parse_pages, parse_size, NumberError};
