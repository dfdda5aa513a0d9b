use std::fmt;

/// What `leadsync forget` erases by: every lead with this email, this phone, or from this
/// conversation.
///
/// Only blank values are refused here. Normalising (trimming and lower-casing an email, keeping
/// a phone's digits) and hashing happen in the database, in the functions that the sync's
/// filter uses too (`email_sha256`, `phone_sha256`, `conversation_sha256`), so an erasure and
/// a later sync can never disagree on what matches. `Debug` shows the kind only: the value is
/// personal data.
#[derive(Clone, PartialEq, Eq)]
pub enum ErasureKey {
    Email(String),
    Phone(String),
    Conversation(String),
}

/// Why a value cannot identify leads to erase. Never holds the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidErasureKey {
    #[error("is blank")]
    Blank,
    #[error("has no digits")]
    NoDigits,
}

impl ErasureKey {
    pub fn email(text: &str) -> Result<Self, InvalidErasureKey> {
        if text.trim().is_empty() {
            return Err(InvalidErasureKey::Blank);
        }
        Ok(Self::Email(text.to_owned()))
    }

    /// A phone matches on its ASCII digits, so it needs at least one.
    pub fn phone(text: &str) -> Result<Self, InvalidErasureKey> {
        if !text.bytes().any(|b| b.is_ascii_digit()) {
            return Err(InvalidErasureKey::NoDigits);
        }
        Ok(Self::Phone(text.to_owned()))
    }

    pub fn conversation(text: &str) -> Result<Self, InvalidErasureKey> {
        if text.is_empty() {
            return Err(InvalidErasureKey::Blank);
        }
        Ok(Self::Conversation(text.to_owned()))
    }

    /// The tombstone kind, as `forgotten_leads.kind` says it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Phone(_) => "phone",
            Self::Conversation(_) => "conversation",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Email(value) | Self::Phone(value) | Self::Conversation(value) => value,
        }
    }
}

impl fmt::Debug for ErasureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErasureKey::{}(..)", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_and_phones_without_digits_are_refused() {
        assert_eq!(ErasureKey::email(" \t"), Err(InvalidErasureKey::Blank));
        assert_eq!(
            ErasureKey::phone("call me"),
            Err(InvalidErasureKey::NoDigits)
        );
        assert_eq!(ErasureKey::conversation(""), Err(InvalidErasureKey::Blank));
        assert!(ErasureKey::phone("+1 (555) 0100").is_ok());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let key = ErasureKey::email("someone@example.com").expect("valid");
        assert_eq!(format!("{key:?}"), "ErasureKey::email(..)");
    }
}
