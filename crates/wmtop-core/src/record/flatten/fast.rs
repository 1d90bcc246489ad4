//! The fast path of flattening: one strict pass over a well-formed message with flat
//! records (scalars only, strings without escapes), straight into rows of values
//! borrowed from the message ([`Fields`]: no owned strings, no row type in between). It
//! gives up — returns None, and the message goes through the serde path instead — on
//! anything else: an escape, a nested value, a duplicate series, a record that would be
//! set aside, a text that is not in the message as such (a number with a fraction given
//! for an identifier), a syntax error. So every outcome other than "all rows good"
//! comes from the one reference implementation, and tests hold the two paths to the same
//! rows.

use std::borrow::Cow;

use super::record::{id_slot, record_time, Flattened};
use crate::record::columns::{
    column_for_json, CompactString, FieldRef, Fields, Kind, COLUMNS, COLUMN_COUNT, EMPTY_FIELDS,
    ID_COLUMNS, KEY_COLUMN, TIMESTAMP_COLUMN, TIMESTAMP_STR_COLUMN, TIMEZONE_COLUMN,
    TRANSACTION_NAME_COLUMN,
};
use crate::record::value::{Convert, Value};

/// Outcome of the fast path: None means "use the serde path". Each row is handed over
/// as values borrowed from the message (and its transaction's identifiers).
pub(super) fn flatten(payload: &[u8], each: &mut dyn FnMut(&Fields<'_>)) -> Option<Flattened> {
    let mut s = Scanner { b: payload, i: 0 };
    let mut ids: [Option<CompactString>; 5] = Default::default();
    // Records run to about 2 KB of JSON: room for them all at once, not grown (and the
    // rows moved) as they come.
    let mut pending: Vec<(Fields<'_>, Option<Value<'_>>)> =
        Vec::with_capacity((payload.len() / 1536).min(4096));
    let mut seen_series = false;
    let mut out = Flattened::default();
    let mut hint = [u8::MAX; COLUMN_COUNT + 1];
    let mut seen = [false; COLUMN_COUNT];
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if !s.eat_if(b'}') {
        loop {
            s.ws();
            let key = s.string()?;
            s.sep(b':')?;
            if key == "transactionSeries" {
                if seen_series {
                    return None;
                }
                seen_series = true;
                s.eat(b'[')?;
                s.ws();
                if !s.eat_if(b']') {
                    loop {
                        s.ws();
                        pending.push((EMPTY_FIELDS, None));
                        let (row, timestamp) = pending.last_mut()?;
                        s.record(row, timestamp, &mut out, &mut hint, &mut seen)?;
                        if !s.more(b']')? {
                            break;
                        }
                    }
                }
            } else {
                let value = s.scalar()?;
                if let Some(n) = id_slot(key) {
                    let mut id = CompactString::default();
                    Convert::convert(value, &mut id).ok()?;
                    ids[n] = (!id.is_empty()).then_some(id);
                }
            }
            if !s.more(b'}')? {
                break;
            }
        }
    }
    s.ws();
    if s.i != s.b.len() || !seen_series || pending.is_empty() {
        // Trailing bytes, no series, an empty one: the serde path says which.
        return None;
    }
    out.records = pending.len();
    for (i, _) in seen.iter().enumerate().filter(|(_, &sent)| sent) {
        out.present_columns |= 1 << i;
    }
    // Identifiers: a record's own value wins; otherwise the transaction's. Then its hour.
    for (row, timestamp) in &mut pending {
        for (&col, from_tx) in ID_COLUMNS.iter().zip(&ids) {
            if let (FieldRef::Id(""), Some(v)) = (row[col], from_tx) {
                row[col] = FieldRef::Id(v);
            }
        }
        if row[TRANSACTION_NAME_COLUMN] == FieldRef::Id("") {
            return None;
        }
        let key = match row[KEY_COLUMN] {
            FieldRef::Int(k) => k,
            _ => None,
        };
        let text = |i: usize| match row[i] {
            FieldRef::Text(t) => t,
            _ => None,
        };
        let ms = record_time(
            timestamp.as_ref(),
            key,
            text(TIMESTAMP_STR_COLUMN),
            text(TIMEZONE_COLUMN),
        )
        .ok()?;
        row[TIMESTAMP_COLUMN] = FieldRef::Time(ms);
    }
    out.transaction_name = ids[0].as_deref().map(String::from);
    out.good = pending.len();
    for (row, _) in &pending {
        each(row);
    }
    Some(out)
}

/// A record's value for a column of this kind, borrowed from the message (`literal` is
/// the value's JSON text); None where the value would need text of its own (a number
/// with a fraction given for a string), or is of the wrong type: the serde path then
/// takes the message and says which.
fn field<'a>(kind: Kind, value: Value<'a>, literal: &'a [u8]) -> Option<FieldRef<'a>> {
    Some(match (kind, value) {
        (Kind::Float, Value::F64(v)) => FieldRef::Float(Some(v)),
        (Kind::Float, v) => {
            let mut x = None;
            Convert::convert(v, &mut x).ok()?;
            FieldRef::Float(x)
        }
        (Kind::Int, Value::U64(n)) => FieldRef::Int(Some(i64::try_from(n).ok()?)),
        (Kind::Int, v) => {
            let mut x = None;
            Convert::convert(v, &mut x).ok()?;
            FieldRef::Int(x)
        }
        (Kind::Flag, Value::Bool(b)) => FieldRef::Flag(Some(b)),
        (Kind::Flag, v) => {
            let mut x = None;
            Convert::convert(v, &mut x).ok()?;
            FieldRef::Flag(x)
        }
        (Kind::Text, Value::Str(Cow::Borrowed(t))) => FieldRef::Text(Some(t)),
        (Kind::Text, Value::Null) => FieldRef::Text(None),
        (Kind::Id, Value::Str(Cow::Borrowed(t))) => FieldRef::Id(t),
        (Kind::Id, Value::Null) => FieldRef::Id(""),
        // An integer's JSON text (no leading zero, no sign but `-`) is its decimal form,
        // as the serde path writes it; `-0` is a float there, and declined here.
        (Kind::Id, Value::U64(_) | Value::I64(_)) => {
            FieldRef::Id(std::str::from_utf8(literal).ok()?)
        }
        _ => return None,
    })
}

/// Reads bytes, not text: outside strings only ASCII is valid JSON, so checking each
/// string as UTF-8 checks the whole message without a pass of its own.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn eat_if(&mut self, c: u8) -> bool {
        self.eat(c).is_some()
    }

    /// A string without escapes or control characters, borrowed. Plain ASCII is passed
    /// over eight bytes at a time; a string that is all ASCII is UTF-8 without a
    /// check of its own.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let mut end = start;
        let mut ascii = true;
        loop {
            while let Some(chunk) = self.b.get(end..end + 8) {
                let flags = string_stops(le_word(chunk));
                if flags != 0 {
                    end += (flags.trailing_zeros() / 8) as usize;
                    break;
                }
                end += 8;
            }
            match *self.b.get(end)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                c => {
                    ascii &= c.is_ascii();
                    end += 1;
                }
            }
        }
        self.i = end + 1;
        let text = &self.b[start..end];
        if ascii {
            // SAFETY: every byte of `text` was found below 0x80 just above (by
            // `string_stops` or the byte match), and ASCII is valid UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(text) })
        } else {
            std::str::from_utf8(text).ok()
        }
    }

    /// The key of column `col` in place, quotes included, if it is the one that comes
    /// next (no copy, no search): one masked compare of a fixed window, with no branch
    /// on the name's length.
    fn key_is(&mut self, col: usize) -> bool {
        let Some(p) = KEY_PATTERNS.get(col) else {
            return false;
        };
        let hit = match self.b.get(self.i..self.i + KEY_WINDOW) {
            Some(at) => {
                let mut diff = 0u64;
                for ((chunk, want), mask) in at.chunks_exact(8).zip(&p.bytes).zip(&p.mask) {
                    diff |= (le_word(chunk) ^ want) & mask;
                }
                diff == 0
            }
            // Near the end of the message: the plain compare.
            None => self.b[self.i..].starts_with(&p.quoted[..p.len]),
        };
        if hit {
            self.i += p.len;
        }
        hit
    }

    /// A JSON number, checked against the grammar, as serde_json would hand it over.
    /// Digits are gathered as they are scanned; the text is parsed again only when they
    /// do not fit the exact paths.
    #[inline(always)]
    fn number(&mut self) -> Option<Value<'a>> {
        let start = self.i;
        let negative = self.eat_if(b'-');
        let mut mantissa: u64 = 0;
        let mut count = 0usize;
        let mut digits = |s: &mut Self| {
            let from = s.i;
            while let Some(&c @ b'0'..=b'9') = s.b.get(s.i) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                s.i += 1;
            }
            count += s.i - from;
            s.i - from
        };
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return None,
        }
        let mut scale = 0usize;
        if self.eat_if(b'.') {
            scale = digits(self);
            if scale == 0 {
                return None;
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            exponent = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            let from = self.i;
            while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            if self.i == from {
                return None;
            }
        }
        // Up to 19 digits cannot overflow the u64 they were gathered in.
        if count <= 19 && !exponent {
            if scale == 0 {
                // serde_json: non-negative integers as u64, negative as i64 ("-0" is
                // the float -0.0).
                if !negative {
                    return Some(Value::U64(mantissa));
                }
                if mantissa == 0 {
                    return Some(Value::F64(-0.0));
                }
                if let Ok(n) = i64::try_from(mantissa) {
                    return Some(Value::I64(-n));
                }
            } else if mantissa < 1 << 53 && scale < POW10.len() {
                // Clinger's fast path: both exact, so one correctly rounded division.
                let v = mantissa as f64 / POW10[scale];
                return Some(Value::F64(if negative { -v } else { v }));
            }
        }
        // Digits, signs, a point and an exponent: ASCII.
        let t = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        if scale == 0 && !exponent {
            if negative {
                if let Ok(n) = t.parse::<i64>() {
                    return Some(Value::I64(n));
                }
            } else if let Ok(n) = t.parse::<u64>() {
                return Some(Value::U64(n));
            }
        }
        t.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Value::F64)
    }

    /// A scalar value; None for arrays, objects and anything malformed.
    #[inline(always)]
    fn scalar(&mut self) -> Option<Value<'a>> {
        match self.b.get(self.i)? {
            b'"' => self.string().map(|s| Value::Str(Cow::Borrowed(s))),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], v: Value<'a>) -> Option<Value<'a>> {
        self.b[self.i..].starts_with(word).then(|| {
            self.i += word.len();
            v
        })
    }

    /// `c`, with any whitespace around it; compact JSON (none) costs one compare.
    #[inline(always)]
    fn sep(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
        } else {
            self.ws();
            self.eat(c)?;
        }
        self.ws();
        Some(())
    }

    /// After a member or an element: a comma (true: more follow) or `close` (false: the
    /// end), either taken, with any whitespace before it; compact JSON costs one compare.
    #[inline(always)]
    fn more(&mut self, close: u8) -> Option<bool> {
        match self.b.get(self.i) {
            Some(b',') => {
                self.i += 1;
                Some(true)
            }
            Some(&c) if c == close => {
                self.i += 1;
                Some(false)
            }
            _ => {
                self.ws();
                if self.eat_if(close) {
                    return Some(false);
                }
                self.eat(b',')?;
                Some(true)
            }
        }
    }

    /// One record object into a row (identifiers and time not yet resolved). `hint`
    /// remembers which column followed which, as records of one message share an order;
    /// `seen` marks the columns sent.
    fn record(
        &mut self,
        row: &mut Fields<'a>,
        timestamp: &mut Option<Value<'a>>,
        out: &mut Flattened,
        hint: &mut [u8; COLUMN_COUNT + 1],
        seen: &mut [bool; COLUMN_COUNT],
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat_if(b'}') {
            return Some(());
        }
        let mut prev = COLUMN_COUNT;
        loop {
            self.ws();
            // Records of one message share an order: the column that followed this one
            // last time is tried in place first.
            let guess = usize::from(hint[prev]);
            let (key, idx) = match COLUMNS.get(guess) {
                Some(c) if self.key_is(guess) => (c.json, Some(guess)),
                _ => {
                    let key = self.string()?;
                    (key, column_for_json(key))
                }
            };
            self.sep(b':')?;
            let at = self.i;
            let value = self.scalar()?;
            match idx {
                Some(TIMESTAMP_COLUMN) => {
                    seen[TIMESTAMP_COLUMN] = true;
                    *timestamp = (value != Value::Null).then_some(value);
                    hint[prev] = TIMESTAMP_COLUMN as u8;
                    prev = TIMESTAMP_COLUMN;
                }
                Some(idx) => {
                    seen[idx] = true;
                    let literal = &self.b[at..self.i];
                    row[idx] = field(COLUMNS[idx].kind, value, literal)?;
                    hint[prev] = idx as u8;
                    prev = idx;
                }
                None => {
                    if !out.unknown_fields.contains(key) {
                        out.unknown_fields.insert(key.to_string());
                    }
                }
            }
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }
}

/// Eight bytes as a word, the first byte lowest.
fn le_word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]))
}

/// The top bit of each byte of a word (first byte lowest) where a string's plain run
/// stops: a quote, a backslash, a control character or a byte of a multi-byte
/// character. Bytes after the first such one may be flagged wrongly (a borrow), the
/// first never is.
pub(super) fn string_stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & (0x80 * ONES);
    zero_byte(word ^ (u64::from(b'"') * ONES))
        | zero_byte(word ^ (u64::from(b'\\') * ONES))
        | (word.wrapping_sub(0x20 * ONES) & !word & (0x80 * ONES))
        | (word & (0x80 * ONES))
}

/// Width of the window a column's key is compared in: the longest key, quoted, fits.
const KEY_WINDOW: usize = 48;

/// A column's JSON key with its quotes, and the mask of its bytes in the window.
struct KeyPattern {
    bytes: [u64; KEY_WINDOW / 8],
    mask: [u64; KEY_WINDOW / 8],
    quoted: [u8; KEY_WINDOW],
    len: usize,
}

const fn key_pattern(json: &str) -> KeyPattern {
    let name = json.as_bytes();
    // A longer key fails the build here.
    assert!(name.len() + 2 <= KEY_WINDOW);
    let mut quoted = [0u8; KEY_WINDOW];
    quoted[0] = b'"';
    let mut i = 0;
    while i < name.len() {
        quoted[i + 1] = name[i];
        i += 1;
    }
    quoted[name.len() + 1] = b'"';
    let len = name.len() + 2;
    let mut bytes = [0u64; KEY_WINDOW / 8];
    let mut mask = [0u64; KEY_WINDOW / 8];
    let mut b = 0;
    while b < len {
        bytes[b / 8] |= (quoted[b] as u64) << (8 * (b % 8));
        mask[b / 8] |= 0xFF << (8 * (b % 8));
        b += 1;
    }
    KeyPattern {
        bytes,
        mask,
        quoted,
        len,
    }
}

/// Each column's key pattern, in the order of [`COLUMNS`].
static KEY_PATTERNS: [KeyPattern; COLUMN_COUNT] = {
    let mut out = [const {
        KeyPattern {
            bytes: [0; KEY_WINDOW / 8],
            mask: [0; KEY_WINDOW / 8],
            quoted: [0; KEY_WINDOW],
            len: 0,
        }
    }; COLUMN_COUNT];
    let mut i = 0;
    while i < COLUMN_COUNT {
        out[i] = key_pattern(COLUMNS[i].json);
        i += 1;
    }
    out
};

/// Powers of ten that f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
