//! Error messages for people: one line, each cause once, in the database's own words.

use std::error::Error;

/// `err` and its causes as one line, `outer: inner: innermost`, leaving out a cause whose
/// text the line already carries (thiserror and sqlx wrappers often print their source
/// inside their own message, and `{:#}` would print it again) and sqlx's "error returned from
/// database: " prefix (the server's words follow it).
pub fn describe(err: &anyhow::Error) -> String {
    describe_chain(err.chain())
}

/// [`describe`] for a plain error.
pub fn describe_error(err: &(dyn Error + 'static)) -> String {
    describe_chain(std::iter::successors(Some(err), |&err| err.source()))
}

fn describe_chain<'a>(chain: impl Iterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause
            .to_string()
            .replace("error returned from database: ", "");
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database error: {0}")]
    struct Wrapper(#[from] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: database \"x\" does not exist")]
    struct Inner(#[source] Innermost);

    #[derive(Debug, thiserror::Error)]
    #[error("database \"x\" does not exist")]
    struct Innermost;

    #[test]
    fn each_cause_is_named_once() {
        let err = anyhow::Error::from(Wrapper(Inner(Innermost))).context("applying migrations");
        assert_eq!(
            describe(&err),
            "applying migrations: database error: database \"x\" does not exist"
        );
    }

    #[test]
    fn a_cause_the_message_lacks_is_kept() {
        let err = anyhow::anyhow!("connection refused").context("reaching the database");
        assert_eq!(describe(&err), "reaching the database: connection refused");
    }
}
