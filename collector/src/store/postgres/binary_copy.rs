//! Rows for `COPY … FROM STDIN (FORMAT binary)`, each value encoded by sqlx's own binary encoders
//! (the ones that encode bound parameters), so a column copies exactly what binding it would
//! send.
//!
//! The format (PostgreSQL docs, "COPY", "Binary Format"): a signature and two 32-bit words, then
//! per row a 16-bit field count and per field a 32-bit length (−1 for NULL) and the value, then a
//! 16-bit −1.

use sqlx::encode::IsNull;
use sqlx::postgres::PgArgumentBuffer;
use sqlx::{Encode, Postgres};

use crate::store::contract::StoreError;

/// The binary `COPY` signature, the flags word (no OIDs) and the header extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A binary `COPY` stream, built in memory a part at a time: the caller sends [`Self::pending`]
/// whenever it likes, then [`Self::clear`]s it.
pub(super) struct BinaryCopy {
    buf: PgArgumentBuffer,
}

impl BinaryCopy {
    /// A stream holding its header, with room for about `bytes`.
    pub(super) fn with_capacity(bytes: usize) -> Self {
        let mut buf = PgArgumentBuffer::default();
        buf.reserve(bytes);
        buf.extend_from_slice(HEADER);
        Self { buf }
    }

    /// The bytes built since the last [`Self::clear`].
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the bytes built so far (they have been sent), keeping the buffer.
    pub(super) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Starts a row of `fields` values; the caller then adds exactly that many with [`Self::field`].
    pub(super) fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    /// Adds one value (`None` is NULL), encoded as binding it would encode it.
    pub(super) fn field<'q, T: Encode<'q, Postgres>>(
        &mut self,
        value: T,
    ) -> Result<&mut Self, StoreError> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let null = value
            .encode_by_ref(&mut self.buf)
            .map_err(sqlx::Error::Encode)?;
        let len = match null {
            IsNull::Yes => {
                self.buf.truncate(at + 4);
                -1
            }
            IsNull::No => i32::try_from(self.buf.len() - at - 4).map_err(|_| {
                sqlx::Error::Encode("a value longer than PostgreSQL's 1 GiB limit".into())
            })?,
        };
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(self)
    }

    /// Ends the stream (its trailer), after the last row.
    pub(super) fn end(&mut self) {
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_holds_its_field_count_then_each_value_behind_its_length() {
        let mut copy = BinaryCopy::with_capacity(64);
        copy.row(3)
            .field(7_i32)
            .unwrap()
            .field(Option::<&str>::None)
            .unwrap()
            .field("ab")
            .unwrap();
        copy.end();
        let bytes = copy.pending();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_cleared_stream_goes_on_with_the_next_row() {
        let mut copy = BinaryCopy::with_capacity(64);
        copy.row(1).field(true).unwrap();
        copy.clear();
        copy.row(1).field(Some(1_i64)).unwrap();
        copy.end();
        let mut expected = vec![0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1];
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(copy.pending(), expected);
    }
}
