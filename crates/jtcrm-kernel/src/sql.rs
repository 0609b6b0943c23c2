//! SQL building blocks every domain shares.

use sea_orm::sea_query::LikeExpr;

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character `\` escaped by `\`, so that a
/// pattern built from it matches the text itself. Use it with `ESCAPE '\'` (see [`contains`]).
pub fn escape_like(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// `LIKE '%text%' ESCAPE '\'`: values that contain `text`, wildcards included, literally.
pub fn contains(text: &str) -> LikeExpr {
    LikeExpr::new(format!("%{}%", escape_like(text))).escape('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_wildcards_and_the_escape() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(escape_like("joão"), "joão");
    }
}
