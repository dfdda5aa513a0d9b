//! A leads answer's body turned into a page: the envelope first, then each record on its own,
//! so that one record the JSON parser cannot take (bytes that are not UTF-8, a raw control
//! character inside a string, a lone surrogate, nesting past the parser's limit) is rejected
//! alone instead of failing the page, and the bot, on every run. (Numbers of any size parse:
//! serde_json's `arbitrary_precision` keeps their text.)

use serde_json::{Value, value::RawValue};

use super::wire::{Envelope, LeadsData};
use crate::domain::{BotUid, Lead, RejectReason, RejectedLead};

/// A page as leadsync needs it: every record parsed or rejected, and the listing's figures.
#[derive(Debug)]
pub struct LeadsPage {
    pub records: Vec<Result<Lead, RejectedLead>>,
    /// What the server says the page size is (it may clamp what we asked for).
    pub page_size: Option<u32>,
    /// How many leads match the query, as the server counted them when it answered.
    pub total: Option<u64>,
    pub request_id: Option<String>,
    /// The size of the answer's body: what storing the page costs, roughly.
    pub bytes: usize,
}

/// The parts of a successful answer, before the records are turned into leads.
pub(super) struct Parsed<'a> {
    pub envelope: Envelope<LeadsData<'a>>,
    /// Offsets (in the body) of the bytes replaced to make it parse: empty for a clean body.
    pub mended: Vec<usize>,
    /// The text the records borrow from (the body, mended where it had to be).
    pub text: &'a str,
}

/// Parses the envelope, mending the body first if (and only if) it does not parse as it came.
/// `scratch` holds a mended copy when one is needed.
pub(super) fn parse_envelope<'a>(
    body: &'a [u8],
    scratch: &'a mut String,
) -> Result<Parsed<'a>, serde_json::Error> {
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(envelope) = serde_json::from_str(text)
    {
        return Ok(Parsed {
            envelope,
            mended: Vec::new(),
            text,
        });
    }
    // A body with nothing to mend fails here again, with the same error.
    let mended = mend(body, scratch);
    let text: &'a String = scratch;
    Ok(Parsed {
        envelope: serde_json::from_str(text)?,
        mended,
        text,
    })
}

/// Copies `body` into `out` byte for byte, except that every byte of an invalid UTF-8
/// sequence, and every raw control character inside a JSON string, becomes `?`: the copy has
/// the same length and offsets, is valid UTF-8, and parses wherever the JSON around those bytes
/// is sound. Returns the offsets replaced.
fn mend(body: &[u8], out: &mut String) -> Vec<usize> {
    let mut bytes = Vec::with_capacity(body.len());
    let mut mended = Vec::new();
    for chunk in body.utf8_chunks() {
        bytes.extend_from_slice(chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            mended.push(bytes.len());
            bytes.push(b'?');
        }
    }
    let (mut in_string, mut escaped) = (false, false);
    for (at, byte) in bytes.iter_mut().enumerate() {
        if !in_string {
            in_string = *byte == b'"';
        } else if escaped {
            escaped = false;
        } else if *byte == b'\\' {
            escaped = true;
        } else if *byte == b'"' {
            in_string = false;
        } else if *byte < 0x20 {
            mended.push(at);
            *byte = b'?';
        }
    }
    mended.sort_unstable();
    *out = String::from_utf8(bytes).expect("every invalid sequence was replaced by ASCII");
    mended
}

/// One record of the listing: a lead, or a rejection saying why not.
pub(super) fn record(
    bot: &BotUid,
    raw: &RawValue,
    text: &str,
    mended: &[usize],
) -> Result<Lead, RejectedLead> {
    let json = raw.get();
    let start = json.as_ptr() as usize - text.as_ptr() as usize;
    let touched = mended
        .get(mended.partition_point(|&at| at < start))
        .is_some_and(|&at| at < start + json.len());
    let parsed = serde_json::from_str::<Value>(json).map(|value| (value, touched));
    // A lone surrogate (`\ud800`) is the one escape no parser takes: mend it to U+FFFD.
    let parsed = parsed.or_else(|err| match without_lone_surrogates(json) {
        Some(mended) => serde_json::from_str::<Value>(&mended).map(|value| (value, true)),
        None => Err(err),
    });
    match parsed {
        Ok((value, true)) => {
            let conversation_uid = value
                .get("conversation_uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Err(RejectedLead::new(
                RejectReason::InvalidText,
                conversation_uid,
                value,
            ))
        }
        Ok((value, false)) => Lead::from_raw(bot, value),
        // Kept as its text, so nothing of it is lost.
        Err(_) => Err(RejectedLead::new(
            if touched {
                RejectReason::InvalidText
            } else {
                RejectReason::UnparseableValue
            },
            None,
            Value::String(json.to_owned()),
        )),
    }
}

/// `json` with every `\uXXXX` escape of a surrogate that is not half of a pair replaced by
/// `\ufffd` (the same length), or `None` if it has none.
fn without_lone_surrogates(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let surrogate = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if !hex.starts_with(b"\\u") {
            return None;
        }
        let unit = u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()?;
        (0xD800..=0xDFFF).contains(&unit).then_some(unit)
    };
    let mut out = bytes.to_vec();
    let mut mended = false;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            at += 1;
            continue;
        }
        match surrogate(at) {
            Some(0xD800..=0xDBFF) if surrogate(at + 6).is_some_and(|low| low >= 0xDC00) => {
                at += 12;
            }
            Some(_) => {
                out[at..at + 6].copy_from_slice(b"\\ufffd");
                mended = true;
                at += 6;
            }
            // Another escape: skip the backslash and the character it escapes.
            None => at += 2,
        }
    }
    mended.then(|| String::from_utf8(out).expect("ASCII replaced by ASCII"))
}

/// serde_json's messages can quote the offending value, which may be personal data: keep only
/// the category and the position.
pub(super) fn describe_json_error(err: &serde_json::Error) -> String {
    let category = match err.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{category} at line {} column {}", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &[u8]) -> Vec<Result<Lead, RejectedLead>> {
        let bot = BotUid::parse("b").expect("uid");
        let mut scratch = String::new();
        let parsed = parse_envelope(body, &mut scratch).expect("the envelope parses");
        let data = parsed.envelope.data.expect("data");
        data.leads
            .into_iter()
            .map(|raw| record(&bot, raw, parsed.text, &parsed.mended))
            .collect()
    }

    fn reasons(records: &[Result<Lead, RejectedLead>]) -> Vec<Option<&'static str>> {
        records
            .iter()
            .map(|record| {
                record
                    .as_ref()
                    .err()
                    .map(|rejected| rejected.reason.as_str())
            })
            .collect()
    }

    const LEAD: &str = r#"{"conversation_uid":"c","created_at":"2024-01-01T00:00:00Z"}"#;

    #[test]
    fn a_clean_body_is_parsed_as_it_came() {
        let body = format!(r#"{{"code":0,"data":{{"leads":[{LEAD},{LEAD}],"total":2}}}}"#);
        let mut scratch = String::new();
        let parsed = parse_envelope(body.as_bytes(), &mut scratch).expect("parses");
        assert!(parsed.mended.is_empty());
        assert!(scratch.is_empty(), "no copy made");
        assert_eq!(reasons(&records(body.as_bytes())), [None, None]);
    }

    #[test]
    fn only_the_record_holding_a_bad_byte_is_rejected() {
        // A bad byte in the first, the last, and a middle record; the ones between are fine.
        let bad = |uid: &str, tail: &[u8]| {
            let mut record = format!(
                r#"{{"conversation_uid":"{uid}","created_at":"2024-01-01T00:00:00Z","x":""#
            )
            .into_bytes();
            record.extend_from_slice(tail);
            record.extend_from_slice(b"\"}");
            record
        };
        // A space is not a control character: the records between stay leads.
        let spaced = br#"{"conversation_uid":"s","created_at":"2024-01-01T00:00:00Z","x":"a b"}"#;
        let list = [
            bad("a", b"\xff"),
            spaced.to_vec(),
            bad("b", b"\n"),
            LEAD.as_bytes().to_vec(),
            bad("c", b"\xc3"),
        ]
        .join(&b","[..]);
        let mut body = br#"{"code":0,"data":{"leads":["#.to_vec();
        body.extend_from_slice(&list);
        body.extend_from_slice(b"]}}");
        let parsed = records(&body);
        assert_eq!(
            reasons(&parsed),
            [
                Some("invalid_text"),
                None,
                Some("invalid_text"),
                None,
                Some("invalid_text")
            ]
        );
        let rejected = parsed[2].as_ref().expect_err("rejected");
        assert_eq!(rejected.conversation_uid.as_deref(), Some("b"));
        assert_eq!(rejected.raw["x"], "?");
    }

    #[test]
    fn a_control_character_outside_a_string_and_escapes_inside_one_are_left_alone() {
        // Whitespace between tokens is legal; an escaped quote does not end the string.
        let body = b"{\"code\":0,\r\n\t\"data\":{\"leads\":[{\"conversation_uid\":\"c\\\"\\n\",\
                     \"created_at\":\"2024-01-01T00:00:00Z\",\"x\":\"\x01\"}]}}";
        let mut out = String::new();
        let mended = mend(body, &mut out);
        assert_eq!(mended, [body.len() - 6]);
        assert_eq!(out.len(), body.len());
        assert_eq!(reasons(&records(body)), [Some("invalid_text")]);
    }

    #[test]
    fn numbers_keep_their_exact_text_however_large() {
        let body = br#"{"code":0,"data":{"leads":[{"conversation_uid":"c","created_at":"2024-01-01T00:00:00Z","n":123456789012345678901234567890,"f":1e400,"g":0.10000000000000000001}]}}"#;
        let parsed = records(body);
        let raw = &parsed[0].as_ref().expect("stored, not rejected").raw;
        // The text goes to Postgres as written; jsonb's numeric keeps it exact.
        assert_eq!(raw["n"].to_string(), "123456789012345678901234567890");
        assert_eq!(raw["f"].to_string(), "1e+400");
        assert_eq!(raw["g"].to_string(), "0.10000000000000000001");
    }

    #[test]
    fn a_lone_surrogate_is_mended_and_its_record_kept_aside() {
        let body = br#"{"code":0,"data":{"leads":[{"conversation_uid":"c","x":"a\udc00b"},{"conversation_uid":"d","x":"\ud800"},{"conversation_uid":"e","created_at":"2024-01-01T00:00:00Z","x":"\ud83d\ude00 \\ud800"}]}}"#;
        let parsed = records(body);
        assert_eq!(
            reasons(&parsed),
            [Some("invalid_text"), Some("invalid_text"), None],
            "a pair, and an escaped backslash before ud800, are fine"
        );
        let rejected = parsed[0].as_ref().expect_err("rejected");
        assert_eq!(rejected.conversation_uid.as_deref(), Some("c"));
        assert_eq!(rejected.raw["x"], "a\u{fffd}b");
        assert_eq!(
            parsed[2].as_ref().expect("a lead").raw["x"],
            "\u{1f600} \\ud800"
        );
    }

    #[test]
    fn only_lone_surrogates_are_mended_and_pairs_and_other_escapes_kept() {
        assert_eq!(
            without_lone_surrogates(r#"{"x":"\n\ud83d\ude00\ud800\t\\ud800 \udc00\ud800\u0041"}"#)
                .as_deref(),
            Some(r#"{"x":"\n\ud83d\ude00\ufffd\t\\ud800 \ufffd\ufffd\u0041"}"#)
        );
        assert_eq!(
            without_lone_surrogates(r#"{"x":"\ud83d\ude00 \\ud800"}"#),
            None
        );
        // A high surrogate last in the text, with no room for a low one after it.
        assert_eq!(
            without_lone_surrogates(r#"\ud800"#).as_deref(),
            Some(r#"\ufffd"#)
        );
    }

    #[test]
    fn a_json_error_is_described_by_its_kind_and_place_only() {
        let error = |text: &str| {
            describe_json_error(&serde_json::from_str::<Value>(text).expect_err("invalid"))
        };
        assert_eq!(error("{\"a\":"), "truncated JSON at line 1 column 5");
        assert_eq!(
            error("{\"email\": nope}"),
            "invalid JSON at line 1 column 12"
        );
    }

    #[test]
    fn a_record_nested_past_the_parser_limit_is_kept_as_its_text() {
        // The envelope's parser skips what it does not look into; the record's own parse
        // stops at serde_json's depth limit of 128.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let body = format!(
            r#"{{"code":0,"data":{{"leads":[{{"conversation_uid":"c","x":{deep}}},{LEAD}]}}}}"#
        );
        let parsed = records(body.as_bytes());
        assert_eq!(reasons(&parsed), [Some("unparseable_value"), None]);
        let rejected = parsed[0].as_ref().expect_err("too deep");
        assert!(
            rejected
                .raw
                .as_str()
                .is_some_and(|text| text.contains("[[["))
        );
    }

    #[test]
    fn a_body_that_is_not_an_envelope_still_fails() {
        let mut scratch = String::new();
        for body in [
            &b"{\"code\":0,\"data\":{\"leads\":[{\"a\":1}"[..],
            b"<html>\xff</html>",
        ] {
            assert!(parse_envelope(body, &mut scratch).is_err());
        }
    }
}
