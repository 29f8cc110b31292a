//! Member messages rendered: the minijinja templates in `templates/{locale}/{message}.j2`,
//! built into the binary, with the blocks subject, text, html and sms. Which message an event
//! becomes, and the variables it gets, are rules of the domain crate (`bonus_domain::notify`).

pub mod send;

use bonus_domain::notify::{template_locale, Rendered, MESSAGES};

macro_rules! templates {
    ($($loc:literal: [$($msg:literal),*]),*) => {
        &[$($((concat!($loc, "/", $msg), include_str!(concat!("../templates/", $loc, "/", $msg, ".j2")))),*),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "en": ["points_earned", "points_earned_digest", "points_available", "points_expiring", "points_expired", "tier_changed", "points_redeemed", "monthly_statement", "points_sent", "points_received", "offer"],
    "de": ["points_earned", "points_earned_digest", "points_available", "points_expiring", "points_expired", "tier_changed", "points_redeemed", "monthly_statement", "points_sent", "points_received", "offer"],
    "nl": ["points_earned", "points_earned_digest", "points_available", "points_expiring", "points_expired", "tier_changed", "points_redeemed", "monthly_statement", "points_sent", "points_received", "offer"],
    "sv": ["points_earned", "points_earned_digest", "points_available", "points_expiring", "points_expired", "tier_changed", "points_redeemed", "monthly_statement", "points_sent", "points_received", "offer"],
    "fi": ["points_earned", "points_earned_digest", "points_available", "points_expiring", "points_expired", "tier_changed", "points_redeemed", "monthly_statement", "points_sent", "points_received", "offer"]
);

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no template for message '{0}'")]
    UnknownMessage(String),
    #[error("template {0}: {1}")]
    Template(String, String),
}

/// The templates, built once per process (building takes about 0.8 ms; rendering 20 µs).
pub fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(environment)
}

/// All templates, with undefined variables as errors (a missing variable is a bug).
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        // The sources are fixed at build time and checked by a test; a broken one is a
        // build-time bug, reported when rendered.
        let _ = env.add_template(name, source);
    }
    env
}

/// Render a message in a locale (English when the locale has no templates).
pub fn render(
    env: &minijinja::Environment<'_>,
    message: &str,
    locale: &str,
    vars: &serde_json::Value,
) -> Result<Rendered, RenderError> {
    if !MESSAGES.contains(&message) {
        return Err(RenderError::UnknownMessage(message.to_string()));
    }
    let locale = template_locale(locale);
    render_template(env, &format!("{locale}/{message}"), locale, vars)
}

/// Render a template with the blocks subject, text, html and sms.
pub fn render_template(
    env: &minijinja::Environment<'_>,
    name: &str,
    locale: &str,
    vars: &serde_json::Value,
) -> Result<Rendered, RenderError> {
    let err = |e: minijinja::Error| RenderError::Template(name.to_string(), format!("{e:#}"));
    let template = env.get_template(name).map_err(err)?;
    let mut captured = template.render_captured(vars).map_err(err)?;
    let mut block = |b: &str| {
        captured
            .with_state_mut(|state| state.render_block(b))
            .map(|s| s.trim().to_string())
            .map_err(err)
    };
    Ok(Rendered {
        locale: locale.to_string(),
        subject: block("subject")?,
        text: block("text")?,
        html: block("html")?,
        sms: block("sms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bonus_domain::notify::{sample, sms, LOCALES};

    #[test]
    fn every_template_renders_in_every_locale_with_no_missing_variable() {
        let env = environment();
        for locale in LOCALES {
            for message in MESSAGES {
                let r = render(&env, message, locale, &sample(message, locale))
                    .unwrap_or_else(|e| panic!("{locale}/{message}: {e}"));
                assert_eq!(r.locale, locale);
                assert!(!r.subject.is_empty() && !r.text.is_empty() && !r.sms.is_empty());
                assert!(
                    r.html.contains("https://example.com/unsubscribe/M-1001"),
                    "{locale}/{message}: unsubscribe link"
                );
                assert!(r.text.contains("https://example.com/unsubscribe/M-1001"));
                assert!(!r.text.contains("{{") && !r.html.contains("{%"));
            }
        }
        // A variable left out is an error, not an empty string.
        let mut vars = sample("points_earned", "en");
        vars.as_object_mut().unwrap().remove("available_on");
        assert!(render(&env, "points_earned", "nl", &vars).is_err());
    }

    #[test]
    fn locales_fall_back_to_english() {
        assert_eq!(template_locale("nl-BE"), "nl");
        assert_eq!(template_locale("pt"), "en");
        let r = render(
            &environment(),
            "points_available",
            "pt-BR",
            &sample("points_available", "en"),
        )
        .unwrap();
        assert_eq!(r.subject, "99 points are ready to spend");
        let r = render(
            &environment(),
            "points_available",
            "nl",
            &sample("points_available", "en"),
        )
        .unwrap();
        assert_eq!(r.subject, "99 punten zijn te besteden");
    }

    #[test]
    fn every_rendered_sms_fits_two_segments() {
        // Every rendered SMS in every locale fits one segment with the sample data.
        let env = environment();
        for locale in LOCALES {
            for message in MESSAGES {
                let r = render(&env, message, locale, &sample(message, locale)).unwrap();
                let s = sms(&r.sms);
                assert!(
                    s.segments <= 2,
                    "{locale}/{message}: {} segments: {}",
                    s.segments,
                    s.text
                );
            }
        }
    }
}
