//! Deterministic synthetic leads that are well-formed but nasty: every text
//! shape a website visitor (or a future API version) can produce, so the
//! parser, the database and the upsert all get exercised.
//!
//! Everything derives from one `fastrand::Rng` seeded from the bot and the
//! seed, so a (bot, seed) pair always yields the same leads, and different
//! pairs yield different `conversation_uid`s.

use chrono::{DateTime, FixedOffset, SecondsFormat, SubsecRound, TimeDelta, Utc};
use fastrand::Rng;
use serde_json::{Map, Value, json};

use super::world::FakeLead;

/// `count` leads for `bot_uid` with `filed_at` uniformly spread over
/// `[from, to)` (all at `from` when the range is empty).
pub(super) fn generate(
    bot_uid: &str,
    count: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seed: u64,
) -> Vec<FakeLead> {
    let mut rng = Rng::with_seed(mix_seed(bot_uid, seed));
    (0..count)
        .map(|_| synth_lead(&mut rng, bot_uid, from, to))
        .collect()
}

/// FNV-1a over the bot and the seed: stable across Rust versions, unlike `DefaultHasher`.
fn mix_seed(bot_uid: &str, seed: u64) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    bot_uid
        .as_bytes()
        .iter()
        .chain(&[0xff]) // separator: "ab"+seed never collides with "a"+"b..."
        .chain(&seed.to_le_bytes())
        .fold(FNV_OFFSET, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
        })
}

fn synth_lead(rng: &mut Rng, bot_uid: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> FakeLead {
    let conversation_uid = uuid_shaped(rng);
    let created_at = render_created_at(rng, from, to);
    let filed_at = DateTime::parse_from_rfc3339(&created_at)
        .expect("rendered by chrono as RFC 3339")
        .with_timezone(&Utc);

    let mut raw = Map::new();
    raw.insert("bot_uid".into(), bot_uid.into());
    raw.insert("conversation_uid".into(), conversation_uid.into());
    raw.insert("created_at".into(), created_at.into());
    for field in TextField::ALL {
        if let Some(value) = text_value(rng, field) {
            raw.insert(field.key().into(), value);
        }
    }
    if let Some((key, value)) = extra_field(rng) {
        raw.insert(key.into(), value);
    }
    FakeLead::malformed(Value::Object(raw), filed_at)
}

/// A random UUID (version 4 layout), so it looks like ChatofAI's identifiers.
fn uuid_shaped(rng: &mut Rng) -> String {
    let bits = rng.u128(..);
    let version_4 = (bits & !(0xf << 76)) | (0x4 << 76);
    let rfc_variant = (version_4 & !(0x3 << 62)) | (0x2 << 62);
    uuid::Uuid::from_u128(rfc_variant).to_string()
}

const OFFSETS_SECS: [i32; 5] = [0, 5 * 3600 + 1800, -8 * 3600, 14 * 3600, -12 * 3600];

/// An RFC 3339 time in `[from, to)` with an assorted offset (`Z` or a numeric
/// one) and, a third of the time, microseconds.
fn render_created_at(rng: &mut Rng, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    // PostgreSQL keeps microseconds: start on a whole microsecond so no lead carries more.
    let from = match from.trunc_subsecs(6) {
        whole if whole < from => whole + TimeDelta::microseconds(1),
        whole => whole,
    };
    let span_us = (to - from).num_microseconds().unwrap_or(i64::MAX);
    let exact = if span_us > 0 {
        from + TimeDelta::microseconds(rng.i64(0..span_us))
    } else {
        from
    };
    let wants_fraction = rng.u8(0..3) == 0;
    let precisions: &[u16] = if wants_fraction { &[6] } else { &[0, 6] };
    // Rounding down can fall before `from`; then keep more digits (down to
    // the exact instant) so the lead stays inside the requested range.
    let at = precisions
        .iter()
        .map(|digits| exact.trunc_subsecs(*digits))
        .find(|at| *at >= from)
        .unwrap_or(exact);

    let use_z = rng.u8(0..6) == 0;
    let offset_secs = if use_z {
        0
    } else {
        OFFSETS_SECS[rng.usize(..OFFSETS_SECS.len())]
    };
    let offset = FixedOffset::east_opt(offset_secs).expect("offsets within ±14 h are valid");
    at.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::AutoSi, use_z)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextField {
    Name,
    Email,
    Phone,
    Remark,
}

impl TextField {
    const ALL: [TextField; 4] = [
        TextField::Name,
        TextField::Email,
        TextField::Phone,
        TextField::Remark,
    ];

    fn key(self) -> &'static str {
        match self {
            TextField::Name => "name",
            TextField::Email => "email",
            TextField::Phone => "phone",
            TextField::Remark => "remark",
        }
    }
}

/// Text that has broken parsers, shells, SQL and terminals. No NUL: Postgres
/// `text` cannot hold it, and the real API is not expected to send it.
const NASTY_TEXTS: &[&str] = &[
    "José Ñúñez-Müller",
    "Zoë Ångström",
    "王小明",
    "山田太郎",
    "김민준",
    "😀🚀 great bot 👍🏽",
    "family 👨‍👩‍👧‍👦",
    "مرحبا، أريد عرض سعر",
    "שלום, אני מעוניין",
    "O'Brien",
    "She said \"call me\"",
    "C:\\Users\\lead\\notes.txt",
    "back\\slash \\n is not a newline",
    "line one\nline two",
    "tab\tseparated\r\nCRLF line",
    "'); DROP TABLE leads;--",
    "Robert'); DELETE FROM leads WHERE ('1'='1",
    "1 OR 1=1; --",
    "   padded with spaces   ",
    "zero\u{200B}width\u{FEFF}marks",
    "combining e\u{301} accent",
    "%s %d {} ${HOME} $1 \\x00",
    "<script>alert('x')</script>",
    "bell\u{7} and escape\u{1b}[31m",
];

const NAMES: &[&str] = &["Alice Smith", "Bob Jones", "Carol White", "Dan Brown"];
const REMARKS: &[&str] = &[
    "Please call me back",
    "Interested in pricing",
    "Do you ship to Canada?",
    "Need a demo next week",
];

/// The value of one text field; `None` means the key is left out entirely.
fn text_value(rng: &mut Rng, field: TextField) -> Option<Value> {
    if field == TextField::Remark && rng.u16(0..200) == 0 {
        return Some(long_remark().into());
    }
    let value = match rng.u8(0..100) {
        0..5 => return None,
        5..10 => Value::Null,
        10..15 => "".into(),
        15..45 => NASTY_TEXTS[rng.usize(..NASTY_TEXTS.len())].into(),
        _ => ordinary_text(rng, field).into(),
    };
    Some(value)
}

fn ordinary_text(rng: &mut Rng, field: TextField) -> String {
    match field {
        TextField::Name => NAMES[rng.usize(..NAMES.len())].to_owned(),
        TextField::Email => format!("visitor{}@example.com", rng.u32(..100_000)),
        TextField::Phone => format!("+1 555 {:04}", rng.u32(..10_000)),
        TextField::Remark => REMARKS[rng.usize(..REMARKS.len())].to_owned(),
    }
}

/// About 10 KB of mixed-script text with quotes, backslashes and newlines.
fn long_remark() -> String {
    const SENTENCE: &str = "Long remark — ünïcödé 漢字 🙂 \"quoted\" 'single' \\ back\n";
    SENTENCE.repeat(10_240 / SENTENCE.len() + 1)
}

/// Sometimes a field the documentation does not mention, as a newer API might add.
fn extra_field(rng: &mut Rng) -> Option<(&'static str, Value)> {
    match rng.u8(0..30) {
        0 => Some(("source", "widget".into())),
        1 => Some((
            "metadata",
            json!({ "utm": { "campaign": "spring", "medium": null }, "tags": ["a", "b"] }),
        )),
        2 => Some(("score", json!(0.87))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn range() -> (DateTime<Utc>, DateTime<Utc>) {
        let from = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date");
        (from, from + TimeDelta::days(30))
    }

    fn sample(bot: &str, count: usize, seed: u64) -> Vec<FakeLead> {
        let (from, to) = range();
        generate(bot, count, from, to, seed)
    }

    fn raw_texts(leads: &[FakeLead]) -> Vec<String> {
        leads.iter().map(|lead| lead.raw.to_string()).collect()
    }

    #[test]
    fn same_bot_and_seed_give_the_same_leads() {
        assert_eq!(
            raw_texts(&sample("bot", 300, 7)),
            raw_texts(&sample("bot", 300, 7))
        );
    }

    #[test]
    fn other_seed_or_bot_gives_other_uids() {
        let uids = |leads: Vec<FakeLead>| -> Vec<String> {
            leads
                .iter()
                .map(|l| l.conversation_uid().expect("uid").to_owned())
                .collect()
        };
        let base = uids(sample("bot", 50, 7));
        let mut all = base.clone();
        all.extend(uids(sample("bot", 50, 8)));
        all.extend(uids(sample("bot2", 50, 7)));
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
        for uid in &base {
            let parsed = uuid::Uuid::parse_str(uid).expect("UUID-shaped");
            assert_eq!(parsed.get_version_num(), 4);
        }
    }

    #[test]
    fn leads_are_well_formed_and_inside_the_range() {
        let (from, to) = range();
        for lead in sample("bot", 2000, 1) {
            let truth = lead
                .to_truth("bot")
                .expect("synthetic leads are well-formed");
            assert_eq!(truth.created_at, lead.filed_at);
            assert!(lead.filed_at >= from && lead.filed_at < to);
            assert_eq!(lead.raw["bot_uid"], "bot");
        }
    }

    #[test]
    fn an_empty_range_puts_everything_at_from() {
        let (from, _) = range();
        for lead in generate("bot", 20, from, from, 3) {
            assert_eq!(lead.filed_at, from);
        }
    }

    #[test]
    fn contains_every_nasty_case_and_no_nul() {
        let leads = sample("bot", 2000, 42);
        let texts = raw_texts(&leads);
        let all = texts.join("\n");
        assert!(!all.contains("\\u0000"), "no NUL, escaped or not");

        let field_values = |field: &'static str| leads.iter().map(move |l| l.raw.get(field));
        assert!(field_values("remark").any(|v| v.is_none()), "missing key");
        assert!(
            field_values("name").any(|v| v == Some(&Value::Null)),
            "null"
        );
        assert!(
            field_values("email").any(|v| v == Some(&json!(""))),
            "empty"
        );
        let long = field_values("remark")
            .filter_map(|v| v.and_then(Value::as_str))
            .filter(|s| s.len() >= 10_000)
            .count();
        assert!(
            (1..=30).contains(&long),
            "about 1 in 200 long remarks, got {long}"
        );

        let strings: Vec<&str> = leads
            .iter()
            .flat_map(|l| TextField::ALL.map(|f| l.raw.get(f.key()).and_then(Value::as_str)))
            .flatten()
            .collect();
        let has = |needle: &str| strings.iter().any(|s| s.contains(needle));
        for needle in [
            "é",
            "王",
            "😀",
            "مرحبا",
            "שלום",
            "'",
            "\"",
            "\\",
            "\n",
            "\t",
            "DROP TABLE",
        ] {
            assert!(has(needle), "no text contains {needle:?}");
        }

        let created: Vec<&str> = leads
            .iter()
            .map(|l| l.raw["created_at"].as_str().expect("string"))
            .collect();
        for suffix in ["Z", "+00:00", "+05:30", "-08:00", "+14:00", "-12:00"] {
            assert!(created.iter().any(|c| c.ends_with(suffix)), "no {suffix}");
        }
        assert!(
            created.iter().any(|c| c.contains('.')),
            "fractional seconds"
        );
        assert!(created.iter().any(|c| !c.contains('.')), "whole seconds");
        assert!(leads.iter().any(|l| l.raw.get("source").is_some()));
        assert!(leads.iter().any(|l| l.raw.get("metadata").is_some()));
    }
}
