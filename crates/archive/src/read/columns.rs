//! Typed, borrowing access to the columns of archive files written by any tool: ids of any
//! integer type (or scale-0 decimals), timestamps of any unit with or without a time zone (or
//! RFC 3339 strings), and strings as Utf8, LargeUtf8, Utf8View, binary or dictionaries of these.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, LargeBinaryArray, LargeStringArray,
    StringArray, StringViewArray,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, TimeUnit};
use playsource_domain::Ts;

/// Whether a column of this type can hold an integer field (ids, `row_index`, `rank`).
pub(super) fn is_integer_type(t: &DataType) -> bool {
    t.is_integer()
        || matches!(t, DataType::Decimal128(_, 0) | DataType::Decimal256(_, 0))
        || matches!(t, DataType::Dictionary(_, v) if v.is_integer())
}

/// Whether a column of this type can hold `ts`.
pub(super) fn is_timestamp_type(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _)) || is_string_type(t)
}

/// Whether a column of this type can hold a string field.
pub(super) fn is_string_type(t: &DataType) -> bool {
    match t {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => true,
        DataType::Dictionary(_, v) => is_string_type(v) && !matches!(**v, DataType::Dictionary(..)),
        _ => false,
    }
}

/// An integer column, normalised to 64 bits without losing the sign.
pub(super) enum IntCol {
    Unsigned(arrow::array::UInt64Array),
    Signed(arrow::array::Int64Array),
}

impl IntCol {
    /// Normalises `a` (of a type accepted by [`is_integer_type`]); `None` if the cast fails.
    pub(super) fn new(a: &ArrayRef) -> Option<IntCol> {
        let opts = CastOptions {
            safe: true,
            ..CastOptions::default()
        };
        let unsigned = match a.data_type() {
            DataType::Dictionary(_, v) => v.is_unsigned_integer(),
            t => {
                t.is_unsigned_integer()
                    || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
            }
        };
        if unsigned {
            let c = cast_with_options(a, &DataType::UInt64, &opts).ok()?;
            Some(IntCol::Unsigned(c.as_primitive().clone()))
        } else {
            let c = cast_with_options(a, &DataType::Int64, &opts).ok()?;
            Some(IntCol::Signed(c.as_primitive().clone()))
        }
    }

    /// The value of a row; `None` when null (or, for decimals, out of the u64 range).
    #[inline]
    pub(super) fn get(&self, row: usize) -> Option<i128> {
        match self {
            IntCol::Unsigned(a) => a.is_valid(row).then(|| a.value(row) as i128),
            IntCol::Signed(a) => a.is_valid(row).then(|| a.value(row) as i128),
        }
    }
}

/// A `ts` column.
pub(super) enum TsCol {
    /// Epoch values in some unit: divide by `per_ms` (floor) to get milliseconds.
    Epoch {
        values: ScalarBuffer<i64>,
        nulls: Option<NullBuffer>,
        per_ms: i64,
        /// Seconds are multiplied instead.
        seconds: bool,
    },
    /// RFC 3339 strings.
    Text(StrCol),
}

/// Why a `ts` value could not be read.
pub(super) enum TsProblem {
    Null,
    Unparsable(String),
}

impl TsCol {
    /// Normalises `a` (of a type accepted by [`is_timestamp_type`]).
    pub(super) fn new(a: &ArrayRef) -> Option<TsCol> {
        let DataType::Timestamp(unit, _) = a.data_type() else {
            return StrCol::new(a).map(TsCol::Text);
        };
        // Arrow keeps every timestamp as UTC epoch values: a time zone only changes how the
        // values are displayed, and a naive timestamp is read as UTC (docs/reference.md §5).
        let (values, per_ms, seconds) = match unit {
            TimeUnit::Second => (
                a.as_primitive::<arrow::datatypes::TimestampSecondType>()
                    .values()
                    .clone(),
                1,
                true,
            ),
            TimeUnit::Millisecond => (
                a.as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                    .values()
                    .clone(),
                1,
                false,
            ),
            TimeUnit::Microsecond => (
                a.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                    .values()
                    .clone(),
                1_000,
                false,
            ),
            TimeUnit::Nanosecond => (
                a.as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                    .values()
                    .clone(),
                1_000_000,
                false,
            ),
        };
        Some(TsCol::Epoch {
            values,
            nulls: a.logical_nulls(),
            per_ms,
            seconds,
        })
    }

    /// The instant of a row, truncated to milliseconds.
    #[inline]
    pub(super) fn get(&self, row: usize) -> Result<Ts, TsProblem> {
        match self {
            TsCol::Epoch {
                values,
                nulls,
                per_ms,
                seconds,
            } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    return Err(TsProblem::Null);
                }
                let v = values[row];
                if *seconds {
                    v.checked_mul(1000)
                        .map(Ts)
                        .ok_or_else(|| TsProblem::Unparsable(format!("{v} s is out of range")))
                } else {
                    Ok(Ts(v.div_euclid(*per_ms)))
                }
            }
            TsCol::Text(s) => match s.get(row) {
                StrValue::Null => Err(TsProblem::Null),
                StrValue::NotUtf8 => Err(TsProblem::Unparsable("is not UTF-8".into())),
                StrValue::Str(t) => {
                    Ts::parse_rfc3339(t).map_err(|e| TsProblem::Unparsable(e.to_string()))
                }
            },
        }
    }
}

/// One value of a string column.
pub(super) enum StrValue<'a> {
    Str(&'a str),
    Null,
    NotUtf8,
}

/// A string column of any accepted encoding.
pub(super) enum StrCol {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
    Binary(BinaryArray),
    LargeBinary(LargeBinaryArray),
    BinaryView(BinaryViewArray),
    /// Dictionary-encoded: per-row positions into `values` (`None` for null keys).
    Dict {
        keys: Vec<usize>,
        key_nulls: Option<NullBuffer>,
        values: Box<StrCol>,
    },
    /// A column whose rows are all null (e.g. a dictionary with no values).
    AllNull,
}

impl StrCol {
    /// Normalises `a` (of a type accepted by [`is_string_type`]).
    pub(super) fn new(a: &ArrayRef) -> Option<StrCol> {
        Some(match a.data_type() {
            DataType::Utf8 => StrCol::Utf8(a.as_string::<i32>().clone()),
            DataType::LargeUtf8 => StrCol::Large(a.as_string::<i64>().clone()),
            DataType::Utf8View => StrCol::View(a.as_string_view().clone()),
            DataType::Binary => StrCol::Binary(a.as_binary::<i32>().clone()),
            DataType::LargeBinary => StrCol::LargeBinary(a.as_binary::<i64>().clone()),
            DataType::BinaryView => StrCol::BinaryView(a.as_binary_view().clone()),
            DataType::Dictionary(_, _) => {
                let d = a.as_any_dictionary_opt()?;
                let values: &ArrayRef = d.values();
                if values.is_empty() {
                    return Some(StrCol::AllNull);
                }
                let inner = StrCol::new(&Arc::clone(values))?;
                if matches!(inner, StrCol::Dict { .. }) {
                    return None;
                }
                StrCol::Dict {
                    keys: d.normalized_keys(),
                    key_nulls: d.keys().logical_nulls(),
                    values: Box::new(inner),
                }
            }
            _ => return None,
        })
    }

    /// The value of a row, borrowed from the column.
    #[inline]
    pub(super) fn get(&self, row: usize) -> StrValue<'_> {
        fn bytes(b: &[u8]) -> StrValue<'_> {
            std::str::from_utf8(b).map_or(StrValue::NotUtf8, StrValue::Str)
        }
        match self {
            StrCol::Utf8(a) => opt(a.is_valid(row), || StrValue::Str(a.value(row))),
            StrCol::Large(a) => opt(a.is_valid(row), || StrValue::Str(a.value(row))),
            StrCol::View(a) => opt(a.is_valid(row), || StrValue::Str(a.value(row))),
            StrCol::Binary(a) => opt(a.is_valid(row), || bytes(a.value(row))),
            StrCol::LargeBinary(a) => opt(a.is_valid(row), || bytes(a.value(row))),
            StrCol::BinaryView(a) => opt(a.is_valid(row), || bytes(a.value(row))),
            StrCol::Dict {
                keys,
                key_nulls,
                values,
            } => {
                if key_nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    return StrValue::Null;
                }
                match keys.get(row) {
                    Some(&k) => values.get(k),
                    None => StrValue::Null,
                }
            }
            StrCol::AllNull => StrValue::Null,
        }
    }
}

#[inline]
fn opt<'a>(valid: bool, f: impl FnOnce() -> StrValue<'a>) -> StrValue<'a> {
    if valid {
        f()
    } else {
        StrValue::Null
    }
}
