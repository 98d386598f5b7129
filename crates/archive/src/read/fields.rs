//! One field of one row: typed values out of the columns, or the rule of docs/reference.md §1 they break.

use std::borrow::Cow;

use playsource_domain::{Rejection, Ts};

use super::columns::{IntCol, StrCol, StrValue, TsCol, TsProblem};
use crate::schema;

pub(super) fn null(field: &'static str) -> Rejection {
    Rejection {
        field,
        rule: "is required but null".into(),
    }
}

pub(super) fn not_utf8(field: &'static str) -> Rejection {
    Rejection {
        field,
        rule: "must be UTF-8 text".into(),
    }
}

#[inline]
pub(super) fn str_field<'a>(
    field: &'static str,
    col: &'a StrCol,
    row: usize,
) -> Result<Cow<'a, str>, Rejection> {
    match col.get(row) {
        StrValue::Str(s) => Ok(Cow::Borrowed(s)),
        StrValue::Null => Err(null(field)),
        StrValue::NotUtf8 => Err(not_utf8(field)),
    }
}

#[inline]
pub(super) fn id_field(field: &'static str, col: &IntCol, row: usize) -> Result<u64, Rejection> {
    let v = col.get(row).ok_or_else(|| {
        let mut r = null(field);
        r.rule
            .push_str(" (or a decimal outside 0 to 18446744073709551615)");
        r
    })?;
    u64::try_from(v)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| Rejection {
            field,
            rule: format!("must be an integer from 1 to 18446744073709551615, got {v}"),
        })
}

#[inline]
pub(super) fn u16_field(field: &'static str, col: &IntCol, row: usize) -> Result<u16, Rejection> {
    let v = col.get(row).ok_or_else(|| null(field))?;
    u16::try_from(v).map_err(|_| Rejection {
        field,
        rule: format!("must be an integer from 0 to 65535, got {v}"),
    })
}

#[inline]
pub(super) fn ts_field(col: &TsCol, row: usize) -> Result<Ts, Rejection> {
    col.get(row).map_err(|p| match p {
        TsProblem::Null => null(schema::TS),
        TsProblem::Unparsable(why) => Rejection {
            field: schema::TS,
            rule: why,
        },
    })
}
