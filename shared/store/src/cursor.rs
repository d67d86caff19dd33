//! Opaque keyset cursors: `(created_at, id)` of the last row of a page, base64url-encoded.

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, Utc};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = format!("{}.{}", self.created_at.timestamp_micros(), self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| StoreError::BadCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| StoreError::BadCursor)?;
        let (micros, id) = raw.split_once('.').ok_or(StoreError::BadCursor)?;
        let micros = micros.parse::<i64>().map_err(|_| StoreError::BadCursor)?;
        let created_at = timestamp(micros).ok_or(StoreError::BadCursor)?;
        let id = Uuid::parse_str(id).map_err(|_| StoreError::BadCursor)?;
        Ok(Self { created_at, id })
    }
}

/// The instant `micros` after the Unix epoch, if it is a time a row can have: chrono accepts
/// years that Postgres cannot store (it answers "timestamp out of range"), so a forged cursor
/// would otherwise fail the query instead of being a client mistake. Rows are written with
/// `now()`, so years 1 to 9999 cover every cursor this crate hands out.
pub fn timestamp(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).filter(|t| (1..=9999).contains(&t.year()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("ts"),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()).expect("decodes"), c);
        for bad in ["", "!!", "bm9wZQ", "MTIzLm5vdC1hLXV1aWQ"] {
            assert!(matches!(Cursor::decode(bad), Err(StoreError::BadCursor)), "{bad}");
        }
    }

    #[test]
    fn out_of_range_timestamps_are_bad_cursors() {
        use base64::Engine as _;
        let id = Uuid::new_v4();
        // Year -100000 (valid for chrono, not for Postgres), year 200000, near i64::MAX, and
        // just before year 1.
        for micros in [-3_217_000_000_000_000_000_i64, 6_249_000_000_000_000_000, i64::MAX - 1, -62_200_000_000_000_000]
        {
            let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{micros}.{id}"));
            assert!(matches!(Cursor::decode(&forged), Err(StoreError::BadCursor)), "{micros}");
        }
    }
}
