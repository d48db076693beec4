//! A bound on what a layer tar makes the tar reader hold in memory.
//!
//! The tar reader reads extended headers (PAX records, GNU long names)
//! whole into memory before it yields the entry they describe; a layer
//! could declare one of gigabytes (cheap behind gzip). So the stream is
//! read through a [`Budget`]: when an entry is yielded, the budget is set
//! to its data (rounded up to tar blocks) plus [`MAX_HEADERS`], and any
//! read past it fails. Whatever sits between two entries (headers and
//! extended headers) thus never exceeds [`MAX_HEADERS`], and neither does
//! what follows the archive's end. Image archives are indexed the same way.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

/// Most bytes of headers between two entries, or after the last one.
pub(crate) const MAX_HEADERS: u64 = 1 << 20;

/// `inner`, failing reads past what the shared budget allows.
pub(crate) struct Budget<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Budget<R> {
    /// The reader and the handle that sets its budget.
    pub(crate) fn new(inner: R) -> (Self, Rc<Cell<u64>>) {
        let left = Rc::new(Cell::new(MAX_HEADERS));
        (
            Self {
                inner,
                left: left.clone(),
            },
            left,
        )
    }
}

/// What an entry with `size` bytes of data may read before the next one.
pub(crate) fn for_entry(size: u64) -> u64 {
    size.div_ceil(512)
        .saturating_mul(512)
        .saturating_add(MAX_HEADERS)
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 && !buf.is_empty() {
            // End of stream is fine; more data is not.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "more than {MAX_HEADERS} bytes of headers or trailing data"
                ))),
            };
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// Seeking (skipping data in an archive file) costs nothing.
impl<R: Seek> Seek for Budget<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}
