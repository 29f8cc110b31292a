//! Pages from minijinja templates (`templates/*.html`), with the words of each locale from
//! `locales/{locale}.json` (every locale has every key of English: a test checks).

use minijinja::Environment;
use serde_json::{json, Value};

use bonus_domain::site::SITE_LOCALES;
use bonus_lambda::api::{internal, Error};

macro_rules! files {
    ($dir:literal: [$($name:literal),*]) => {
        &[$(($name, include_str!(concat!("../", $dir, "/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = files!("templates": [
    "base.html", "login.html", "login_sent.html", "link.html", "account.html",
    "statement.html", "shop.html", "transfer.html", "profile.html", "data.html", "erased.html", "error.html",
    "mail_login.html", "mail_login.txt", "mail_code.txt"
]);

const LOCALES: &[(&str, &str)] =
    files!("locales": ["en.json", "de.json", "nl.json", "sv.json", "fi.json"]);

/// The words of every locale, parsed once.
pub fn words(locale: &str) -> &'static Value {
    static ALL: std::sync::OnceLock<Vec<(String, Value)>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        LOCALES
            .iter()
            .map(|(file, text)| {
                let locale = file.trim_end_matches(".json").to_string();
                // The files are fixed at build time and checked by a test.
                (locale, serde_json::from_str(text).unwrap_or(Value::Null))
            })
            .collect()
    });
    all.iter()
        .find(|(l, _)| l == locale)
        .or_else(|| all.first())
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

/// The names of the languages, each in itself (for the switch).
pub fn languages() -> Value {
    Value::Array(
        SITE_LOCALES
            .iter()
            .map(|l| json!({ "code": l, "name": words(l)["language_name"] }))
            .collect(),
    )
}

fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // Fixed at build time; a broken one fails its render (and the tests).
            let _ = env.add_template(name, source);
        }
        env
    })
}

/// Render a page with `vars` (which include `t`, the locale's words).
pub fn page(name: &str, vars: &Value) -> Result<String, Error> {
    environment()
        .get_template(name)
        .and_then(|t| t.render(vars))
        .map_err(|e| internal(format!("template {name}: {e:#}")))
}

/// The error page; never fails (a plain sentence if the template did).
pub fn error(
    base: &str,
    locale: &str,
    programme_id: Option<&str>,
    status: u16,
    code: &str,
) -> String {
    let t = words(locale);
    let message = t["errors"][code]
        .as_str()
        .or_else(|| t["errors"][format!("status_{status}")].as_str())
        .unwrap_or_else(|| {
            t["errors"]["other"]
                .as_str()
                .unwrap_or("Something went wrong.")
        });
    let vars = json!({
        "t": t, "locale": locale, "languages": languages(), "css": crate::web::stylesheet_name(),
        "base": base, "programme_id": programme_id, "programme_name": Value::Null,
        "member": Value::Null, "page": "error", "back": Value::Null,
        "status": status, "code": code, "message": message, "title": t["error_title"],
    });
    page("error.html", &vars).unwrap_or_else(|_| {
        format!(
            "<!doctype html><html lang=\"{locale}\"><title>{status}</title><p>{message}</p></html>"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                keys(v, &format!("{prefix}{k}."), out);
            }
        } else {
            out.push(prefix.trim_end_matches('.').to_string());
        }
    }

    #[test]
    fn every_locale_has_every_word_of_english_and_no_more() {
        let mut en = Vec::new();
        keys(words("en"), "", &mut en);
        assert!(en.len() > 80, "{} words", en.len());
        for l in SITE_LOCALES {
            let mut other = Vec::new();
            keys(words(l), "", &mut other);
            assert_eq!(other, en, "{l}");
            assert_eq!(words(l)["language_code"], l);
        }
    }

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            environment()
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
