//! Amounts in words, pt-BR (`mil duzentos e trinta e quatro reais e cinquenta e seis centavos`),
//! as contracts write them next to the figures.

const UNITS: [&str; 20] = [
    "zero",
    "um",
    "dois",
    "três",
    "quatro",
    "cinco",
    "seis",
    "sete",
    "oito",
    "nove",
    "dez",
    "onze",
    "doze",
    "treze",
    "quatorze",
    "quinze",
    "dezesseis",
    "dezessete",
    "dezoito",
    "dezenove",
];
const TENS: [&str; 10] = [
    "",
    "",
    "vinte",
    "trinta",
    "quarenta",
    "cinquenta",
    "sessenta",
    "setenta",
    "oitenta",
    "noventa",
];
const HUNDREDS: [&str; 10] = [
    "",
    "cento",
    "duzentos",
    "trezentos",
    "quatrocentos",
    "quinhentos",
    "seiscentos",
    "setecentos",
    "oitocentos",
    "novecentos",
];
/// (singular, plural) of each group of three digits above the units.
const SCALES: [(&str, &str); 6] = [
    ("", ""),
    ("mil", "mil"),
    ("milhão", "milhões"),
    ("bilhão", "bilhões"),
    ("trilhão", "trilhões"),
    ("quatrilhão", "quatrilhões"),
];

/// 1–999 in words.
fn group(n: u64) -> String {
    debug_assert!((1..1000).contains(&n));
    if n == 100 {
        return "cem".into();
    }
    let (h, rest) = (n / 100, n % 100);
    let mut parts: Vec<String> = vec![];
    if h > 0 {
        parts.push(HUNDREDS[h as usize].into());
    }
    if rest > 0 {
        if rest < 20 {
            parts.push(UNITS[rest as usize].into());
        } else {
            let (t, u) = (rest / 10, rest % 10);
            if u == 0 {
                parts.push(TENS[t as usize].into());
            } else {
                parts.push(format!("{} e {}", TENS[t as usize], UNITS[u as usize]));
            }
        }
    }
    parts.join(" e ")
}

/// A non-negative integer in words (masculine): `0` → `zero`, `1000` → `mil`,
/// `2000001` → `dois milhões e um`.
pub fn number(n: u64) -> String {
    if n == 0 {
        return "zero".into();
    }
    let mut groups = vec![];
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    // (scale index, group value) from the highest, non-zero groups only.
    let parts: Vec<(usize, u64)> = groups
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, g)| **g > 0)
        .map(|(i, g)| (i, *g))
        .collect();
    let mut out = String::new();
    for (k, (scale, g)) in parts.iter().enumerate() {
        let words = match (*scale, *g) {
            (1, 1) => "mil".to_string(),
            (0, g) => group(g),
            (s, g) => {
                let (one, many) = SCALES.get(s).copied().unwrap_or(("", ""));
                format!("{} {}", group(g), if g == 1 { one } else { many })
            }
        };
        if k > 0 {
            // "e" before the last group when it is below 100 or a round hundred.
            let last = k == parts.len() - 1;
            if last && (*g < 100 || g % 100 == 0) {
                out.push_str(" e ");
            } else {
                out.push(' ');
            }
        }
        out.push_str(&words);
    }
    out
}

/// An amount in cents in words, in reais and centavos.
pub fn brl(cents: i64) -> String {
    let neg = cents < 0;
    let c = cents.unsigned_abs();
    let (reais, centavos) = (c / 100, c % 100);
    let mut out = String::new();
    if neg {
        out.push_str("menos ");
    }
    if reais == 0 && centavos == 0 {
        out.push_str("zero reais");
        return out;
    }
    if reais > 0 {
        out.push_str(&number(reais));
        // "um milhão de reais", "dois bilhões de reais".
        if reais >= 1_000_000 && reais % 1_000_000 == 0 {
            out.push_str(" de");
        }
        out.push_str(if reais == 1 { " real" } else { " reais" });
    }
    if centavos > 0 {
        if reais > 0 {
            out.push_str(" e ");
        }
        out.push_str(&number(centavos));
        out.push_str(if centavos == 1 {
            " centavo"
        } else {
            " centavos"
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(0), "zero");
        assert_eq!(number(1), "um");
        assert_eq!(number(10), "dez");
        assert_eq!(number(16), "dezesseis");
        assert_eq!(number(21), "vinte e um");
        assert_eq!(number(100), "cem");
        assert_eq!(number(101), "cento e um");
        assert_eq!(number(110), "cento e dez");
        assert_eq!(number(999), "novecentos e noventa e nove");
        assert_eq!(number(1000), "mil");
        assert_eq!(number(1001), "mil e um");
        assert_eq!(number(1100), "mil e cem");
        assert_eq!(number(1234), "mil duzentos e trinta e quatro");
        assert_eq!(number(2000), "dois mil");
        assert_eq!(number(21_500), "vinte e um mil e quinhentos");
        assert_eq!(number(1_000_000), "um milhão");
        assert_eq!(number(2_000_001), "dois milhões e um");
        assert_eq!(
            number(1_250_300),
            "um milhão duzentos e cinquenta mil e trezentos"
        );
        assert_eq!(number(3_000_000_000), "três bilhões");
    }

    #[test]
    fn money() {
        assert_eq!(brl(0), "zero reais");
        assert_eq!(brl(100), "um real");
        assert_eq!(brl(1), "um centavo");
        assert_eq!(brl(2), "dois centavos");
        assert_eq!(brl(101), "um real e um centavo");
        assert_eq!(
            brl(123_456),
            "mil duzentos e trinta e quatro reais e cinquenta e seis centavos"
        );
        assert_eq!(brl(100_000_000), "um milhão de reais");
        assert_eq!(brl(200_000_000), "dois milhões de reais");
        assert_eq!(brl(200_000_101), "dois milhões e um reais e um centavo");
        assert_eq!(brl(150_000), "mil e quinhentos reais");
        assert_eq!(brl(-500), "menos cinco reais");
    }
}
