//! The byte form of one native histogram, shared by the WAL and the blocks' `histograms` file
//! (layout in `docs/format/chunks.md`). Counts and the sum are stored as raw IEEE-754 bits, so a
//! histogram reads back exactly as it was written; bucket indexes are delta-encoded.

use medic_model::histogram::{CounterResetHint, CUSTOM_BUCKETS_SCHEMA};
use medic_model::FloatHistogram;

use crate::encoding::{put_uvarint, put_varint, Decoder};
use crate::Error;

/// Most buckets a stored histogram may have on one side (schema 8 over the whole float range
/// needs fewer), so a corrupt count cannot make a reader allocate without bound.
const MAX_BUCKETS: usize = 1 << 20;

fn hint_code(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

fn put_side(out: &mut Vec<u8>, side: &[(i32, f64)]) {
    put_uvarint(out, side.len() as u64);
    let mut prev = 0i64;
    for &(i, c) in side {
        put_varint(out, i as i64 - prev);
        prev = i as i64;
        put_f64(out, c);
    }
}

/// Appends `h` to `out`.
pub fn put_histogram(out: &mut Vec<u8>, h: &FloatHistogram) {
    out.push(hint_code(h.counter_reset_hint));
    put_varint(out, h.schema as i64);
    put_f64(out, h.zero_threshold);
    put_f64(out, h.zero_count);
    put_f64(out, h.count);
    put_f64(out, h.sum);
    put_side(out, &h.positive);
    put_side(out, &h.negative);
    put_uvarint(out, h.custom_values.len() as u64);
    for &v in &h.custom_values {
        put_f64(out, v);
    }
}

fn get_f64(d: &mut Decoder<'_>, what: &str) -> Result<f64, Error> {
    Ok(f64::from_bits(d.be_u64(what)?))
}

fn get_side(d: &mut Decoder<'_>, what: &str) -> Result<Vec<(i32, f64)>, Error> {
    let n = d.len(MAX_BUCKETS.min(d.remaining() / 9 + 1), what)?;
    let mut out = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        let i = prev
            .checked_add(d.varint(what)?)
            .filter(|i| i32::try_from(*i).is_ok())
            .ok_or_else(|| Error::Decode(format!("{what}: bucket index out of range")))?;
        prev = i;
        out.push((i as i32, get_f64(d, what)?));
    }
    Ok(out)
}

/// Reads one histogram written by [`put_histogram`].
pub fn get_histogram(d: &mut Decoder<'_>) -> Result<FloatHistogram, Error> {
    let counter_reset_hint = match d.u8("histogram hint")? {
        0 => CounterResetHint::Unknown,
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        x => return Err(Error::Decode(format!("unknown histogram hint {x}"))),
    };
    let schema = d.varint("histogram schema")?;
    if !((-4..=8).contains(&schema) || schema == CUSTOM_BUCKETS_SCHEMA as i64) {
        return Err(Error::Decode(format!(
            "histogram schema {schema} is not valid"
        )));
    }
    let mut h = FloatHistogram {
        counter_reset_hint,
        schema: schema as i32,
        zero_threshold: get_f64(d, "zero threshold")?,
        zero_count: get_f64(d, "zero count")?,
        count: get_f64(d, "histogram count")?,
        sum: get_f64(d, "histogram sum")?,
        positive: get_side(d, "positive buckets")?,
        negative: get_side(d, "negative buckets")?,
        custom_values: Vec::new(),
    };
    let n = d.len(MAX_BUCKETS.min(d.remaining() / 8 + 1), "custom bounds")?;
    h.custom_values.reserve(n);
    for _ in 0..n {
        h.custom_values.push(get_f64(d, "custom bound")?);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::histogram::parse_test_expression;

    #[test]
    fn histograms_read_back_exactly() {
        for text in [
            "{{schema:3 sum:-7.5 count:12 z_bucket:2 z_bucket_w:0.001 offset:-3 buckets:[1 0 4.5] n_offset:2 n_buckets:[3 1.5] counter_reset_hint:reset}}",
            "{{schema:-53 sum:172.5 count:15 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
            "{{schema:0 sum:NaN count:0 counter_reset_hint:gauge}}",
        ] {
            let h = parse_test_expression(text).unwrap();
            let mut buf = Vec::new();
            put_histogram(&mut buf, &h);
            let mut d = Decoder::new(&buf);
            let back = get_histogram(&mut d).unwrap();
            assert!(d.is_empty());
            assert_eq!(format!("{back:?}"), format!("{h:?}"), "{text}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let h = parse_test_expression("{{schema:1 count:3 buckets:[1 2]}}").unwrap();
        let mut buf = Vec::new();
        put_histogram(&mut buf, &h);
        for cut in 0..buf.len() {
            assert!(
                get_histogram(&mut Decoder::new(&buf[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = buf.clone();
        bad[1] = 0x7f; // schema 63-ish after zig-zag
        assert!(get_histogram(&mut Decoder::new(&bad)).is_err());
    }
}
