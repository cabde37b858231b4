//! What an Excel worksheet can hold (Excel's specifications and limits): the reader
//! treats anything past them as a file Excel did not write, and the writers stay within.

/// Rows of a worksheet (1-based row numbers run 1 to this).
pub const MAX_ROWS: u32 = 1_048_576;

/// Columns of a worksheet (A to XFD).
pub const MAX_COLUMNS: u32 = 16_384;

/// Characters of one cell.
pub const MAX_CELL_CHARS: usize = 32_767;
