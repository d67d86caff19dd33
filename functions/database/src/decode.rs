//! Postgres values to JSON, decoded from the binary wire format by hand so that every type maps
//! faithfully and exactly (sqlx without `bigdecimal`/`rust_decimal` cannot decode `numeric`).
//!
//! | Postgres | JSON |
//! |---|---|
//! | `int2`, `int4`, `int8`, `oid` | integer |
//! | `numeric` | string, exact (`"12345678901234567890.123456789"`, `"NaN"`, `"Infinity"`) |
//! | `float4`, `float8` | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings |
//! | `text`, `varchar`, `char(n)`, `name`, `"char"`, `xml`, enums, `citext` and other text-like types | string |
//! | `bool` | boolean |
//! | `timestamptz` | RFC 3339 in UTC, `"2024-01-02T03:04:05.123456Z"` |
//! | `timestamp` | ISO 8601 without offset, `"2024-01-02T03:04:05"` |
//! | `date` | `"2024-01-02"`; `infinity`/`-infinity` as those strings (also for timestamps) |
//! | `time`, `timetz` | `"03:04:05.5"`, `"03:04:05+02:00"` |
//! | `interval` | ISO 8601 duration, `"P1Y2M3DT4H5M6.5S"` |
//! | `uuid`, `inet`, `cidr`, `macaddr` | string |
//! | `json`, `jsonb` | the JSON value (a string if it does not parse, e.g. nested too deep) |
//! | `bytea` | base64 string |
//! | arrays of these | arrays; a multi-dimensional array is nested arrays, an empty one `[]` |
//! | domains | as their base type |
//! | NULL | null |
//! | anything else | its text if the bytes are printable UTF-8 (enums, `citext`), else `"(unsupported type NAME)"` |
//!
//! Malformed bytes never panic: they decode as the "unsupported" string.

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Number, Value};
use sqlx::postgres::{PgTypeInfo, PgTypeKind, PgValueFormat, PgValueRef};
use sqlx::{TypeInfo as _, ValueRef as _};

/// Postgres' epoch for dates and timestamps.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default()
}

/// The name a column's type is reported as: built-in types lower-case (`int4`, `text[]`).
pub(crate) fn type_name(ty: &PgTypeInfo) -> String {
    let name = ty.name();
    match ty.oid() {
        Some(oid) if oid.0 < 16_384 => name.to_ascii_lowercase(),
        _ => name.to_owned(),
    }
}

/// One column value of a row.
pub(crate) fn value(v: PgValueRef<'_>) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let ty = v.type_info().into_owned();
    let format = v.format();
    let Ok(bytes) = v.as_bytes() else { return Value::Null };
    if format == PgValueFormat::Text {
        return Value::String(String::from_utf8_lossy(bytes).into_owned());
    }
    typed(&ty, bytes)
}

fn typed(ty: &PgTypeInfo, bytes: &[u8]) -> Value {
    // A domain is its base type on the wire (bounded: domains over domains are rare and finite).
    let mut ty = ty;
    for _ in 0..32 {
        match ty.kind() {
            PgTypeKind::Domain(base) => ty = base,
            _ => break,
        }
    }
    let decoded = if matches!(ty.kind(), PgTypeKind::Array(_)) {
        array(bytes)
    } else {
        ty.oid().and_then(|oid| by_oid(oid.0, bytes))
    };
    decoded.unwrap_or_else(|| fallback(bytes, &type_name(ty)))
}

/// Text-like bytes as a string; anything else names its type.
fn fallback(bytes: &[u8], name: &str) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) => Value::String(s.to_owned()),
        _ => Value::String(format!("(unsupported type {name})")),
    }
}

fn be<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}
fn i16_at(b: &[u8], at: usize) -> Option<i16> {
    be(b, at).map(i16::from_be_bytes)
}
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    be(b, at).map(i32::from_be_bytes)
}
fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    be(b, at).map(i64::from_be_bytes)
}
fn exact<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

/// A value of the built-in type `oid`, or `None` for types decoded by [`fallback`] (and for
/// malformed bytes).
fn by_oid(oid: u32, b: &[u8]) -> Option<Value> {
    let text = || std::str::from_utf8(b).ok().map(|s| Value::String(s.to_owned()));
    match oid {
        16 => exact::<1>(b).map(|[x]| Value::Bool(x != 0)),
        17 => Some(Value::String(base64::engine::general_purpose::STANDARD.encode(b))),
        // "char": one byte, shown as the character it is in Latin-1 (as psql does for ASCII).
        18 => exact::<1>(b).map(|[x]| Value::String(char::from(x).to_string())),
        20 => exact::<8>(b).map(|x| Value::from(i64::from_be_bytes(x))),
        21 => exact::<2>(b).map(|x| Value::from(i16::from_be_bytes(x))),
        23 => exact::<4>(b).map(|x| Value::from(i32::from_be_bytes(x))),
        26 | 28 | 29 => exact::<4>(b).map(|x| Value::from(u32::from_be_bytes(x))),
        // text, name, xml, unknown, bpchar, varchar (the client encoding is UTF-8).
        19 | 25 | 142 | 705 | 1042 | 1043 => text(),
        114 => std::str::from_utf8(b).ok().map(json_text),
        // jsonb and jsonpath: a version byte (1), then the text.
        3802 => match b.split_first() {
            Some((1, rest)) => std::str::from_utf8(rest).ok().map(json_text),
            _ => None,
        },
        4072 => match b.split_first() {
            Some((1, rest)) => std::str::from_utf8(rest).ok().map(|s| Value::String(s.to_owned())),
            _ => None,
        },
        700 => exact::<4>(b).map(|x| float32(f32::from_be_bytes(x))),
        701 => exact::<8>(b).map(|x| float(f64::from_be_bytes(x))),
        1700 => numeric(b).map(Value::String),
        1082 => exact::<4>(b).map(|x| date(i32::from_be_bytes(x))),
        1083 => exact::<8>(b).map(|x| Value::String(time(i64::from_be_bytes(x)))),
        1266 => {
            let (micros, zone) = (i64_at(b, 0)?, i32_at(b, 8)?);
            (b.len() == 12).then(|| Value::String(format!("{}{}", time(micros), offset(-zone))))
        }
        1114 => exact::<8>(b).map(|x| timestamp(i64::from_be_bytes(x), false)),
        1184 => exact::<8>(b).map(|x| timestamp(i64::from_be_bytes(x), true)),
        1186 => {
            let (micros, days, months) = (i64_at(b, 0)?, i32_at(b, 8)?, i32_at(b, 12)?);
            (b.len() == 16).then(|| Value::String(interval(months, days, micros)))
        }
        2950 => exact::<16>(b).map(|x| Value::String(uuid::Uuid::from_bytes(x).to_string())),
        650 | 869 => inet(b, oid == 650).map(Value::String),
        829 | 774 if b.len() == 6 || b.len() == 8 => {
            Some(Value::String(b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")))
        }
        // pg_lsn: a 64-bit position shown as two hex halves.
        3220 => exact::<8>(b).map(|x| {
            let n = u64::from_be_bytes(x);
            Value::String(format!("{:X}/{:X}", n >> 32, n & 0xffff_ffff))
        }),
        _ => None,
    }
}

fn json_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// A float4 as the f64 of its shortest decimal form, so `0.1::float4` is `0.1`, not `0.10000000149011612`.
fn float32(f: f32) -> Value {
    if !f.is_finite() {
        return float(f64::from(f));
    }
    float(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
}

/// The binary NUMERIC: ndigits, weight, sign, dscale (each 16 bits), then `ndigits` base-10000
/// digits; the value is `sum(digit[i] * 10000^(weight - i))`, printed with `dscale` decimals.
pub(crate) fn numeric(b: &[u8]) -> Option<String> {
    let ndigits = usize::try_from(i16_at(b, 0)?).ok()?;
    let weight = i32::from(i16_at(b, 2)?);
    let sign = u16::from_be_bytes(be(b, 4)?);
    let dscale = usize::from(u16::from_be_bytes(be(b, 6)?) & 0x3fff);
    if b.len() != 8 + 2 * ndigits {
        return None;
    }
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digits: Vec<i16> = (0..ndigits).map(|i| i16_at(b, 8 + 2 * i)).collect::<Option<_>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return None;
    }
    let digit = |i: i32| usize::try_from(i).ok().and_then(|i| digits.get(i)).copied().unwrap_or(0);
    let mut out = String::with_capacity(4 * ndigits + dscale + 2);
    if sign == 0x4000 && digits.iter().any(|d| *d != 0) {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut i = weight + 1;
        while out.len() - start < dscale {
            out.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        out.truncate(start + dscale);
    }
    Some(out)
}

fn date(days: i32) -> Value {
    match days {
        i32::MAX => Value::String("infinity".into()),
        i32::MIN => Value::String("-infinity".into()),
        _ => Value::String(match epoch().date().checked_add_signed(Duration::days(i64::from(days))) {
            Some(d) => d.format("%Y-%m-%d").to_string(),
            None => format!("(date out of range: {days} days from 2000-01-01)"),
        }),
    }
}

fn timestamp(micros: i64, utc: bool) -> Value {
    match micros {
        i64::MAX => return Value::String("infinity".into()),
        i64::MIN => return Value::String("-infinity".into()),
        _ => {}
    }
    let Some(t) = epoch().checked_add_signed(Duration::microseconds(micros)) else {
        return Value::String(format!("(timestamp out of range: {micros} µs from 2000-01-01)"));
    };
    Value::String(if utc {
        DateTime::<chrono::Utc>::from_naive_utc_and_offset(t, chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
    })
}

fn time(micros: i64) -> String {
    // `time` goes up to 24:00:00 inclusive, which chrono does not represent.
    if micros == 86_400_000_000 {
        return "24:00:00".into();
    }
    let secs = u32::try_from(micros.div_euclid(1_000_000)).unwrap_or(0);
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0);
    match NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos) {
        Some(t) => t.format("%H:%M:%S%.f").to_string(),
        None => format!("(time out of range: {micros} µs)"),
    }
}

/// `+hh:mm` (and `:ss` when there are seconds) for an offset east of UTC in seconds.
fn offset(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s == 0 { format!("{sign}{h:02}:{m:02}") } else { format!("{sign}{h:02}:{m:02}:{s:02}") }
}

/// ISO 8601, each part with its own sign as Postgres' `iso_8601` interval style writes it.
fn interval(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [(i64::from(years), 'Y'), (i64::from(months), 'M'), (i64::from(days), 'D')] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if micros != 0 {
        out.push('T');
        let sign = if micros < 0 { "-" } else { "" };
        let a = micros.unsigned_abs();
        let (h, m, s, frac) = (a / 3_600_000_000, a / 60_000_000 % 60, a / 1_000_000 % 60, a % 1_000_000);
        if h != 0 {
            out.push_str(&format!("{sign}{h}H"));
        }
        if m != 0 {
            out.push_str(&format!("{sign}{m}M"));
        }
        if s != 0 || frac != 0 {
            let frac = if frac == 0 { String::new() } else { format!(".{frac:06}").trim_end_matches('0').to_owned() };
            out.push_str(&format!("{sign}{s}{frac}S"));
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

/// inet/cidr: family (2 = IPv4, 3 = IPv6), prefix bits, is_cidr, address length, address.
fn inet(b: &[u8], cidr: bool) -> Option<String> {
    let (&family, &bits) = (b.first()?, b.get(1)?);
    let addr = b.get(4..)?;
    let (ip, max): (std::net::IpAddr, u8) = match family {
        2 => (std::net::Ipv4Addr::from(exact::<4>(addr)?).into(), 32),
        3 => (std::net::Ipv6Addr::from(exact::<16>(addr)?).into(), 128),
        _ => return None,
    };
    Some(if !cidr && bits == max { ip.to_string() } else { format!("{ip}/{bits}") })
}

/// The binary array: ndim, has-nulls flag, element OID, (length, lower bound) per dimension,
/// then each element as a length (-1 for NULL) and its bytes. Built innermost dimension first,
/// without recursion.
fn array(b: &[u8]) -> Option<Value> {
    let ndim = usize::try_from(i32_at(b, 0)?).ok()?;
    let elem = u32::from_be_bytes(be(b, 8)?);
    // Postgres allows at most 6 dimensions (MAXDIM).
    if ndim > 6 {
        return None;
    }
    if ndim == 0 {
        return Some(Value::Array(Vec::new()));
    }
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        dims.push(usize::try_from(i32_at(b, 12 + 8 * d)?).ok()?);
    }
    let total = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d))?;
    let elem_name = format!("element type {elem}");
    let mut at = 12 + 8 * ndim;
    // Each element takes at least its 4-byte length: bounds the allocation by the input.
    let mut flat = Vec::with_capacity(total.min(b.len() / 4));
    for _ in 0..total {
        let len = i32_at(b, at)?;
        at += 4;
        if len < 0 {
            flat.push(Value::Null);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        let bytes = b.get(at..at.checked_add(len)?)?;
        at += len;
        flat.push(by_oid(elem, bytes).unwrap_or_else(|| fallback(bytes, &elem_name)));
    }
    if at != b.len() {
        return None;
    }
    for d in dims[1..].iter().rev() {
        if *d == 0 {
            return Some(Value::Array(Vec::new()));
        }
        let mut grouped = Vec::with_capacity(flat.len() / d);
        let mut items = flat.into_iter();
        loop {
            let chunk: Vec<Value> = items.by_ref().take(*d).collect();
            if chunk.is_empty() {
                break;
            }
            grouped.push(Value::Array(chunk));
        }
        flat = grouped;
    }
    Some(Value::Array(flat))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((digits.len() as i16).to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(dscale.to_be_bytes());
        for d in digits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numerics_print_exactly() {
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric(&numeric_bytes(0, 0, 2, &[])).unwrap(), "0.00");
        assert_eq!(numeric(&numeric_bytes(1, 0x4000, 0, &[1, 0])).unwrap(), "-10000");
        assert_eq!(numeric(&numeric_bytes(-1, 0, 4, &[1])).unwrap(), "0.0001");
        assert_eq!(numeric(&numeric_bytes(-2, 0, 6, &[12])).unwrap(), "0.000000");
        assert_eq!(numeric(&numeric_bytes(-2, 0, 8, &[12])).unwrap(), "0.00000012");
        assert_eq!(numeric(&numeric_bytes(0, 0, 3, &[1, 5000])).unwrap(), "1.500");
        assert_eq!(numeric(&numeric_bytes(0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(numeric(&numeric_bytes(0, 0xF000, 0, &[])).unwrap(), "-Infinity");
        // Malformed: wrong length, bad sign, digit out of range.
        assert_eq!(numeric(&[0, 1, 0, 0]), None);
        assert_eq!(numeric(&numeric_bytes(0, 0x1234, 0, &[1])), None);
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, &[10_000])), None);
    }

    #[test]
    fn intervals_and_times_read_as_iso_8601() {
        assert_eq!(interval(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000), "P1Y2M3DT4H5M6.5S");
        assert_eq!(interval(0, 0, 0), "PT0S");
        assert_eq!(interval(0, -1, -1_000_000), "P-1DT-1S");
        assert_eq!(time(86_400_000_000), "24:00:00");
        assert_eq!(time(3_723_000_001), "01:02:03.000001");
        assert_eq!(offset(-(5 * 3600 + 30 * 60)), "-05:30");
    }

    #[test]
    fn malformed_bytes_do_not_panic() {
        for oid in [16, 20, 21, 23, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 869, 3802] {
            for b in [&[][..], &[1][..], &[0xff; 3][..], &[0xff; 13][..]] {
                let _ = by_oid(oid, b);
            }
        }
        assert_eq!(array(&[0, 0, 0, 1]), None);
        assert_eq!(array(&[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 23]), None);
        // A dimension claiming 2^31 elements in a few bytes: refused, not allocated.
        let mut b = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23];
        b.extend(i32::MAX.to_be_bytes());
        b.extend(1i32.to_be_bytes());
        assert_eq!(array(&b), None);
        assert_eq!(fallback(&[0, 1, 2], "money"), Value::String("(unsupported type money)".into()));
    }
}
