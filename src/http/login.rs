//! Who may look at the pages: with a token set, every page and "Build now" need a login. The
//! login form takes the token; the right one gets a session cookie (HttpOnly, SameSite=Strict,
//! Secure over HTTPS, signed, expiring after 12 hours); a wrong one is refused without saying
//! which part was wrong. The webhook routes keep their own authentication.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::pages::params;
use super::{Dispatch, FrontDoor};
use crate::pages;
use crate::secret::Secret;

const COOKIE: &str = "pushbuild_session";
const SESSION_SECONDS: i64 = 12 * 60 * 60;

/// The token the login form asks for, and the key sessions are signed with.
pub struct Login {
    token: Secret,
    key: [u8; 32],
    /// Whether the cookie is only sent over HTTPS (on AWS; not on a loopback `serve`).
    secure: bool,
}

impl Login {
    /// Sessions signed with a key drawn from the token: every process (each function instance)
    /// accepts the others' sessions, and a new token ends them all.
    pub fn new(token: Secret, secure: bool) -> Login {
        use sha2::Digest;
        let mut hasher = Sha256::new();
        hasher.update(b"pushbuild session key\0");
        hasher.update(token.expose().as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        Login { token, key, secure }
    }

    fn sign(&self, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(expires.to_string().as_bytes());
        let tag: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{expires}.{tag}")
    }

    /// The token "Build now" forms carry behind this login: the same in every process that has
    /// the login's token (each function instance), so a form drawn by one is accepted by another.
    pub fn form_token(&self) -> String {
        self.sign(0)
    }

    /// Whether the request carries a session this process signed that has not expired.
    pub fn signed_in(&self, headers: &HeaderMap) -> bool {
        let now = chrono::Utc::now().timestamp();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|value| {
                let Some((expires, _)) = value.split_once('.') else {
                    return false;
                };
                let Ok(expires) = expires.parse::<i64>() else {
                    return false;
                };
                expires > now && constant_time_eq(self.sign(expires).as_bytes(), value.as_bytes())
            })
    }

    fn cookie(&self) -> String {
        let expires = chrono::Utc::now().timestamp() + SESSION_SECONDS;
        format!(
            "{COOKIE}={}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{}",
            self.sign(expires),
            if self.secure { "; Secure" } else { "" }
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A relative path on this site to go back to after the login (nothing else).
fn local_path(next: Option<&String>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next.clone()
        }
        _ => "/".to_string(),
    }
}

fn login_page(status: StatusCode, next: &str, error: bool) -> Response {
    let message = if error {
        "<p class=\"s FAILED\" id=\"error\">That token is not right.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Log in</h1>{message}<form method=\"post\" action=\"/login\" id=\"login-form\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label>Token<br><input type=\"password\" name=\"token\" required size=\"40\" \
         autocomplete=\"current-password\"></label></p><p><button type=\"submit\">Log in</button></p></form>",
        pages::escape(next)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        pages::page("Log in", &body),
    )
        .into_response()
}

/// The pages' gate: a request without a session goes to the login form (a page) or gets 401
/// (a form post, the live log's JSON, a download).
pub(super) async fn require<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(login) = front.pages.as_ref().and_then(|p| p.login.as_ref()) else {
        return next.run(request).await;
    };
    if login.signed_in(request.headers()) {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    if request.method() != Method::GET
        || path.starts_with("/live/")
        || path.starts_with("/download/")
    {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_string());
    let location = format!("/login?next={}", pages::encode(&wanted));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// `GET /login`.
pub(super) async fn form<D: Dispatch>(
    State(_front): State<Arc<FrontDoor<D>>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = params(query.as_deref());
    login_page(StatusCode::OK, &local_path(params.get("next")), false)
}

/// `POST /login`: the right token gets a session and goes on; a wrong one is refused.
pub(super) async fn submit<D: Dispatch>(
    State(front): State<Arc<FrontDoor<D>>>,
    body: Bytes,
) -> Response {
    let form = params(Some(&String::from_utf8_lossy(&body)));
    let next = local_path(form.get("next"));
    let Some(login) = front.pages.as_ref().and_then(|p| p.login.as_ref()) else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    };
    let given = form.get("token").map_or("", String::as_str);
    if !constant_time_eq(given.as_bytes(), login.token.expose().as_bytes()) {
        return login_page(StatusCode::UNAUTHORIZED, &next, true);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, next),
            (header::SET_COOKIE, login.cookie()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, value.parse().unwrap());
        headers
    }

    #[test]
    fn sessions_and_form_tokens_hold_across_processes_with_the_same_token() {
        let one = Login::new(Secret::new("ui-token"), true);
        let other = Login::new(Secret::new("ui-token"), true);
        let cookie = one.cookie();
        assert!(cookie.ends_with("; Secure"));
        let session = cookie.split(';').next().unwrap().to_string();
        assert!(other.signed_in(&with_cookie(&format!("theme=dark; {session}"))));
        assert_eq!(one.form_token(), other.form_token());
        // A new token ends every session and form.
        let rotated = Login::new(Secret::new("new-token"), true);
        assert!(!rotated.signed_in(&with_cookie(&session)));
        assert_ne!(rotated.form_token(), one.form_token());
        // The form token is no session, and an expired or edited session is refused.
        assert!(!one.signed_in(&with_cookie(&format!("{COOKIE}={}", one.form_token()))));
        let expired = format!("{COOKIE}={}", one.sign(chrono::Utc::now().timestamp() - 1));
        assert!(!one.signed_in(&with_cookie(&expired)));
        let edited = session.replacen('.', "9.", 1);
        assert!(!one.signed_in(&with_cookie(&edited)));
        assert!(!session.contains("ui-token"));
    }

    #[test]
    fn only_a_path_on_this_site_is_gone_back_to() {
        for (next, expected) in [
            ("/billing?month=2026-11", "/billing?month=2026-11"),
            ("//evil.example.com/", "/"),
            ("https://evil.example.com/", "/"),
            ("/\\evil", "/"),
        ] {
            assert_eq!(local_path(Some(&next.to_string())), expected, "{next}");
        }
        assert_eq!(local_path(None), "/");
    }
}
