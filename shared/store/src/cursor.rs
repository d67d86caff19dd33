//! Opaque keyset cursors: `(created_at, id)` of the last row of a page, base64url-encoded.

use base64::Engine as _;
use chrono::{DateTime, Utc};
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
        let created_at = DateTime::from_timestamp_micros(micros).ok_or(StoreError::BadCursor)?;
        let id = Uuid::parse_str(id).map_err(|_| StoreError::BadCursor)?;
        Ok(Self { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = Cursor { created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("ts"), id: Uuid::new_v4() };
        assert_eq!(Cursor::decode(&c.encode()).expect("decodes"), c);
        for bad in ["", "!!", "bm9wZQ", "MTIzLm5vdC1hLXV1aWQ"] {
            assert!(matches!(Cursor::decode(bad), Err(StoreError::BadCursor)), "{bad}");
        }
    }
}
