use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;

use super::BotUid;

/// A lead as leadsync stores it: parsed, keyed, and carrying the exact JSON it came from.
///
/// `Debug` shows only the key and the timestamp: the other fields are personal data.
#[derive(Clone, PartialEq)]
pub struct Lead {
    pub conversation_uid: String,
    pub created_at: DateTime<Utc>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub remark: Option<String>,
    /// The record as received (with U+0000 replaced, see [`Lead::from_raw`]).
    pub raw: Value,
}

/// Why a record could not become a [`Lead`]. The code (`as_str`) goes to logs and the
/// rejects table; it never contains the record's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    NotAnObject,
    MissingConversationUid,
    MissingCreatedAt,
    InvalidCreatedAt,
    BotUidMismatch,
    /// Bytes that are not UTF-8, a raw control character inside a string, or a lone surrogate
    /// `\ud800`: kept with each such byte replaced by `?`, each such escape by U+FFFD.
    InvalidText,
    /// JSON the parser will not hold (nested deeper than 128 levels): kept as its text.
    UnparseableValue,
    /// The `conversation_uid` is already stored under another bot, which keeps it.
    OwnedByAnotherBot,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAnObject => "not_an_object",
            Self::MissingConversationUid => "missing_conversation_uid",
            Self::MissingCreatedAt => "missing_created_at",
            Self::InvalidCreatedAt => "invalid_created_at",
            Self::BotUidMismatch => "bot_uid_mismatch",
            Self::InvalidText => "invalid_text",
            Self::UnparseableValue => "unparseable_value",
            Self::OwnedByAnotherBot => "owned_by_another_bot",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record the API sent that cannot be stored as a lead. Kept, with its raw payload, in the
/// rejects table so an operator can see and repair it; never silently dropped.
#[derive(Clone, PartialEq)]
pub struct RejectedLead {
    pub reason: RejectReason,
    /// The conversation uid when the record had a usable one (it is an id, safe to log).
    pub conversation_uid: Option<String>,
    pub raw: Value,
}

impl Lead {
    /// Parses one record of a leads listing for `bot`.
    ///
    /// Text fields are kept exactly as received: a string stays that string (empty included),
    /// `null` or a missing key becomes `None`, and any other JSON value keeps its JSON text so
    /// nothing is lost. PostgreSQL cannot store U+0000 in `text` or `jsonb`, so that one
    /// character is replaced by U+FFFD everywhere in the record; everything else is untouched.
    pub fn from_raw(bot: &BotUid, mut raw: Value) -> Result<Lead, RejectedLead> {
        replace_nul(&mut raw);
        let Some(record) = raw.as_object() else {
            return Err(RejectedLead::new(RejectReason::NotAnObject, None, raw));
        };
        let conversation_uid = match record.get("conversation_uid") {
            Some(Value::String(uid)) if !uid.trim().is_empty() => uid.clone(),
            _ => {
                return Err(RejectedLead::new(
                    RejectReason::MissingConversationUid,
                    None,
                    raw,
                ));
            }
        };
        let reject = |reason, raw| {
            Err(RejectedLead::new(
                reason,
                Some(conversation_uid.clone()),
                raw,
            ))
        };
        match record.get("bot_uid") {
            None | Some(Value::Null) => {}
            Some(Value::String(listed)) if listed == bot.as_str() => {}
            Some(_) => return reject(RejectReason::BotUidMismatch, raw),
        }
        let created_at = match record.get("created_at") {
            None | Some(Value::Null) => return reject(RejectReason::MissingCreatedAt, raw),
            Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text.trim()) {
                Ok(at) => without_leap_second(at.with_timezone(&Utc)),
                Err(_) => return reject(RejectReason::InvalidCreatedAt, raw),
            },
            Some(_) => return reject(RejectReason::InvalidCreatedAt, raw),
        };
        Ok(Lead {
            name: text_field(record, "name"),
            email: text_field(record, "email"),
            phone: text_field(record, "phone"),
            remark: text_field(record, "remark"),
            conversation_uid,
            created_at,
            raw,
        })
    }
}

impl Lead {
    /// About how many bytes of data the lead carries into a statement: its text columns and
    /// the text of `raw` (strings, keys and a little for every other value).
    pub fn approx_bytes(&self) -> usize {
        fn json(value: &Value) -> usize {
            match value {
                Value::String(text) => text.len() + 2,
                Value::Array(items) => items.iter().map(json).sum::<usize>() + 2,
                Value::Object(map) => map.iter().map(|(k, v)| k.len() + 4 + json(v)).sum(),
                _ => 8,
            }
        }
        let columns = [&self.name, &self.email, &self.phone, &self.remark]
            .iter()
            .map(|field| field.as_deref().map_or(0, str::len))
            .sum::<usize>();
        self.conversation_uid.len() + columns + json(&self.raw) + 16
    }
}

/// chrono keeps a leap second (`23:59:60`) as 23:59:59 plus more than a second of nanoseconds,
/// which Postgres would store as the next day's midnight: the lead would be filed under a day
/// the API does not list it for. It is kept in its own day, at its last microsecond.
fn without_leap_second(at: DateTime<Utc>) -> DateTime<Utc> {
    if at.nanosecond() >= 1_000_000_000 {
        at.with_nanosecond(999_999_000).unwrap_or(at)
    } else {
        at
    }
}

impl RejectedLead {
    pub fn new(reason: RejectReason, conversation_uid: Option<String>, raw: Value) -> Self {
        Self {
            reason,
            conversation_uid,
            raw,
        }
    }
}

fn text_field(record: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn replace_nul(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            if map.keys().any(|key| key.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, value)| (key.replace('\0', "\u{FFFD}"), value))
                    .collect();
            }
            map.values_mut().for_each(replace_nul);
        }
        _ => {}
    }
}

impl fmt::Debug for Lead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lead")
            .field("conversation_uid", &self.conversation_uid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RejectedLead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectedLead")
            .field("reason", &self.reason)
            .field("conversation_uid", &self.conversation_uid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_leads_size_counts_its_columns_and_every_string_key_and_value_of_raw() {
        let bot = BotUid::parse("b").expect("uid");
        let lead = Lead::from_raw(
            &bot,
            json!({"conversation_uid": "c", "created_at": "2024-01-01T00:00:00Z",
                   "tags": ["ab", "cde"], "meta": {"k": "vv"}, "n": 5, "remark": "xyz"}),
        )
        .expect("a lead");
        // raw: 23 + 36 + 19 (the array) + 17 (the object) + 13 (the number) + 15 = 123; the
        // remark column 3, the uid 1, and 16.
        assert_eq!(lead.approx_bytes(), 143);
    }

    fn bot() -> BotUid {
        BotUid::parse("bot-1").expect("valid")
    }

    #[test]
    fn a_leap_second_stays_in_its_own_day() {
        let lead = Lead::from_raw(
            &bot(),
            json!({"conversation_uid": "c-1", "created_at": "2016-12-31T23:59:60Z"}),
        )
        .expect("parses");
        assert_eq!(
            lead.created_at.timestamp_micros(),
            "2016-12-31T23:59:59.999999Z"
                .parse::<DateTime<Utc>>()
                .expect("timestamp")
                .timestamp_micros()
        );
        let ordinary = Lead::from_raw(
            &bot(),
            json!({"conversation_uid": "c-2", "created_at": "2016-12-31T23:59:59.5Z"}),
        )
        .expect("parses");
        assert_eq!(ordinary.created_at.timestamp_subsec_millis(), 500);
    }

    #[test]
    fn a_complete_record_parses_with_its_offset_normalised_to_utc() {
        let lead = Lead::from_raw(
            &bot(),
            json!({"bot_uid": "bot-1", "conversation_uid": "c1", "created_at": "2023-11-13T20:02:52.25+05:30",
                   "name": "Zoë", "email": "", "phone": null, "remark": "a\n\"b\""}),
        )
        .expect("valid lead");
        assert_eq!(
            lead.created_at.to_rfc3339(),
            "2023-11-13T14:32:52.250+00:00"
        );
        assert_eq!(lead.name.as_deref(), Some("Zoë"));
        assert_eq!(lead.email.as_deref(), Some(""));
        assert_eq!(lead.phone, None);
        assert_eq!(lead.remark.as_deref(), Some("a\n\"b\""));
    }

    #[test]
    fn missing_fields_are_none_and_non_strings_keep_their_json_text() {
        let lead = Lead::from_raw(
            &bot(),
            json!({"conversation_uid": "c1", "created_at": "2023-11-13T20:02:52Z", "phone": 491701234, "extra": {"a": 1}}),
        )
        .expect("valid lead");
        assert_eq!(lead.name, None);
        assert_eq!(lead.phone.as_deref(), Some("491701234"));
        assert_eq!(lead.raw["extra"], json!({"a": 1}));
    }

    #[test]
    fn records_without_key_or_timestamp_are_rejected_with_a_reason() {
        let cases = [
            (json!([1]), RejectReason::NotAnObject),
            (
                json!({"created_at": "2023-11-13T20:02:52Z"}),
                RejectReason::MissingConversationUid,
            ),
            (
                json!({"conversation_uid": "  ", "created_at": "2023-11-13T20:02:52Z"}),
                RejectReason::MissingConversationUid,
            ),
            (
                json!({"conversation_uid": 7, "created_at": "2023-11-13T20:02:52Z"}),
                RejectReason::MissingConversationUid,
            ),
            (
                json!({"conversation_uid": "c1"}),
                RejectReason::MissingCreatedAt,
            ),
            (
                json!({"conversation_uid": "c1", "created_at": "yesterday"}),
                RejectReason::InvalidCreatedAt,
            ),
            (
                json!({"conversation_uid": "c1", "created_at": 1700000000}),
                RejectReason::InvalidCreatedAt,
            ),
            (
                json!({"conversation_uid": "c1", "created_at": "2023-11-13T20:02:52"}),
                RejectReason::InvalidCreatedAt,
            ),
            (
                json!({"conversation_uid": "c1", "bot_uid": "other", "created_at": "2023-11-13T20:02:52Z"}),
                RejectReason::BotUidMismatch,
            ),
        ];
        for (raw, reason) in cases {
            let rejected = Lead::from_raw(&bot(), raw.clone()).expect_err("must be rejected");
            assert_eq!(rejected.reason, reason, "{raw}");
            assert_eq!(rejected.raw, raw);
        }
    }

    #[test]
    fn nul_characters_become_replacement_characters_because_postgres_cannot_store_them() {
        let lead = Lead::from_raw(
            &bot(),
            json!({"conversation_uid": "c1", "created_at": "2023-11-13T20:02:52Z", "remark": "a\u{0}b", "k\u{0}": ["\u{0}"]}),
        )
        .expect("valid lead");
        assert_eq!(lead.remark.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(lead.raw["k\u{FFFD}"], json!(["\u{FFFD}"]));
    }

    #[test]
    fn debug_output_carries_no_personal_data() {
        let lead = Lead::from_raw(
            &bot(),
            json!({"conversation_uid": "c1", "created_at": "2023-11-13T20:02:52Z", "email": "secret@example.com"}),
        )
        .expect("valid lead");
        assert!(!format!("{lead:?}").contains("secret@example.com"));
    }
}
