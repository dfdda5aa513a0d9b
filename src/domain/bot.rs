use std::fmt;

/// A ChatofAI bot identifier, safe to put in a URL path and in logs.
///
/// ChatofAI documents UUIDs; we accept any non-empty run of ASCII letters, digits, `-` and `_`
/// so that a format change on their side does not lock anyone out, while nothing that could
/// escape the path segment gets through.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BotUid(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidBotUid {
    #[error("is empty")]
    Empty,
    #[error("is longer than 128 characters")]
    TooLong,
    #[error("may only contain ASCII letters, digits, '-' and '_'")]
    BadCharacter,
}

impl BotUid {
    pub fn parse(raw: &str) -> Result<Self, InvalidBotUid> {
        if raw.is_empty() {
            return Err(InvalidBotUid::Empty);
        }
        if raw.len() > 128 {
            return Err(InvalidBotUid::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidBotUid::BadCharacter);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BotUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BotUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotUid({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_a_valid_bot_uid() {
        let uid = BotUid::parse("86a2eb21-9711-4950-8ffd-50c04317956c").expect("valid");
        assert_eq!(uid.as_str(), "86a2eb21-9711-4950-8ffd-50c04317956c");
    }

    #[test]
    fn path_breaking_characters_are_refused() {
        assert_eq!(BotUid::parse(""), Err(InvalidBotUid::Empty));
        assert_eq!(BotUid::parse("../x"), Err(InvalidBotUid::BadCharacter));
        assert_eq!(BotUid::parse("a b"), Err(InvalidBotUid::BadCharacter));
        assert_eq!(BotUid::parse(&"a".repeat(129)), Err(InvalidBotUid::TooLong));
    }
}
