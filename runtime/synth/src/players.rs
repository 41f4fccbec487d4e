//! synth's players: guests who sign in once and keep their tokens fresh, as a game does.
//!
//! A player signs in as a new guest on first use (`GET login-as-guest`) and keeps its
//! `user_id` and `guest_secret`. It renews its access token shortly before it expires, or when
//! a request is refused with 401: with its refresh token (`GET refresh-access-token`; the
//! answer's refresh token replaces the old one, which a rotating provider no longer accepts),
//! or, if the refresh is refused, by logging in again as the same guest, which `serve` does
//! not count against its limit on new guests. Only a guest the provider has forgotten signs
//! in anew. So a run creates at most as many guests as it has players, however many events it
//! sends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

/// Players a run has by default: half of a default `serve`'s burst of new guests per address
/// (100), so that two runs back to back sign in without a 429 too.
pub const DEFAULT_PLAYERS: u32 = 50;

/// Renew this long before the access token expires: a token sent just before its expiry
/// could arrive after it.
const RENEW_MARGIN: Duration = Duration::from_secs(60);
/// How often a sign-in answered 429 (too many new guests) is tried again.
const THROTTLED_ATTEMPTS: u32 = 5;
/// The longest wait between those attempts (`serve` says 60 s, but refills its quota of new
/// guests continuously).
const THROTTLED_WAIT: Duration = Duration::from_secs(5);

/// How the players' identities went, for the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlayerCounts {
    pub players: usize,
    /// Sign-ins as a new guest (what `serve` limits per address).
    pub new_guests: u64,
    pub refreshes: u64,
    /// Logins as a returning guest, after a refused refresh.
    pub returning_logins: u64,
}

/// A signed-in player.
struct Session {
    user_id: String,
    guest_secret: String,
    auth_token: String,
    refresh_token: String,
    renew_at: Instant,
}

impl Session {
    /// A new guest's login answer.
    fn signed_in(body: &Value) -> Option<Session> {
        Some(Session {
            user_id: body["user_id"].as_str()?.to_string(),
            guest_secret: body["guest_secret"].as_str()?.to_string(),
            auth_token: body["auth_token"].as_str()?.to_string(),
            refresh_token: body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            renew_at: renew_at(body),
        })
    }

    /// Takes the tokens of a refresh or a returning login. The newest refresh token replaces
    /// the old one: where refresh tokens rotate, the old one is refused from now on.
    fn renewed(mut self, body: &Value) -> Session {
        if let Some(token) = body["auth_token"].as_str() {
            self.auth_token = token.to_string();
        }
        if let Some(token) = body["refresh_token"].as_str() {
            self.refresh_token = token.to_string();
        }
        self.renew_at = renew_at(body);
        self
    }
}

/// When to renew the token of a login or refresh answer: `RENEW_MARGIN` (at most half its
/// life) before it expires. An answer without a lifetime is renewed when refused.
fn renew_at(body: &Value) -> Instant {
    let now = Instant::now();
    match body["auth_token_expires_in"].as_u64() {
        Some(seconds) => {
            let life = Duration::from_secs(seconds);
            now + life.saturating_sub(RENEW_MARGIN.min(life / 2))
        }
        None => now + Duration::from_secs(24 * 3600),
    }
}

/// What the identity provider answered.
enum Answer {
    /// A success carrying an access token.
    Granted(Value),
    /// These credentials are refused (400, 401, 403).
    Refused,
    /// Too many new guests from this address: try again after this long.
    Throttled(Duration),
    /// No answer, or none of the above.
    Failed,
}

/// The pool of players; senders take turns with them.
pub struct Players {
    client: reqwest::Client,
    login_url: String,
    refresh_url: String,
    scope: String,
    slots: Vec<Mutex<Option<Session>>>,
    next: AtomicUsize,
    new_guests: AtomicU64,
    refreshes: AtomicU64,
    returning_logins: AtomicU64,
}

impl Players {
    /// `count` players (at least one) of the provider at `login_endpoint` (ending in `/`),
    /// asking for `scope`; none signs in before it sends.
    pub fn new(client: reqwest::Client, login_endpoint: &str, scope: &str, count: usize) -> Self {
        Players {
            client,
            login_url: format!("{login_endpoint}login-as-guest"),
            refresh_url: format!("{login_endpoint}refresh-access-token"),
            scope: scope.to_string(),
            slots: (0..count.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            new_guests: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            returning_logins: AtomicU64::new(0),
        }
    }

    pub fn counts(&self) -> PlayerCounts {
        PlayerCounts {
            players: self.slots.len(),
            new_guests: self.new_guests.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            returning_logins: self.returning_logins.load(Ordering::Relaxed),
        }
    }

    /// The next player's number and access token, signed in or renewed first when needed;
    /// None when it cannot sign in.
    pub async fn token(&self) -> Option<(usize, String)> {
        let player = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[player].lock().await;
        let due = slot.as_ref().is_none_or(|s| Instant::now() >= s.renew_at);
        if due {
            *slot = match slot.take() {
                None => self.sign_in().await,
                Some(session) => Some(self.renew(session).await.unwrap_or_else(|kept| kept)),
            };
        }
        slot.as_ref().map(|s| (player, s.auth_token.clone()))
    }

    /// A new token for `player`, whose token `refused` was answered 401; the player's newer
    /// token if another sender has renewed it meanwhile. None when it cannot be renewed.
    pub async fn renew_refused(&self, player: usize, refused: &str) -> Option<String> {
        let mut slot = self.slots.get(player)?.lock().await;
        let session = slot.take()?;
        let (session, renewed) = if session.auth_token != refused {
            (session, true)
        } else {
            match self.renew(session).await {
                Ok(session) => (session, true),
                Err(kept) => (kept, false),
            }
        };
        let token = renewed.then(|| session.auth_token.clone());
        *slot = Some(session);
        token
    }

    /// A new guest's session; waits and tries again while the provider answers 429.
    async fn sign_in(&self) -> Option<Session> {
        let query = self.scope_query();
        for _ in 0..THROTTLED_ATTEMPTS {
            match self.ask(&self.login_url, &query).await {
                Answer::Granted(body) => {
                    self.new_guests.fetch_add(1, Ordering::Relaxed);
                    return Session::signed_in(&body);
                }
                Answer::Throttled(wait) => tokio::time::sleep(wait).await,
                Answer::Refused | Answer::Failed => return None,
            }
        }
        None
    }

    /// The session with a new access token: refreshed, or else logged in again as the same
    /// guest, or else (a guest the provider has forgotten) signed in anew. Err: the session
    /// as it was, when the provider could not be reached.
    async fn renew(&self, session: Session) -> Result<Session, Session> {
        if !session.refresh_token.is_empty() {
            let query = [("refresh_token", session.refresh_token.as_str())];
            if let Answer::Granted(body) = self.ask(&self.refresh_url, &query).await {
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                return Ok(session.renewed(&body));
            }
        }
        let mut query = vec![
            ("user_id", session.user_id.as_str()),
            ("guest_secret", session.guest_secret.as_str()),
        ];
        query.extend(self.scope_query());
        match self.ask(&self.login_url, &query).await {
            Answer::Granted(body) => {
                self.returning_logins.fetch_add(1, Ordering::Relaxed);
                Ok(session.renewed(&body))
            }
            Answer::Refused => self.sign_in().await.ok_or(session),
            Answer::Throttled(_) | Answer::Failed => Err(session),
        }
    }

    /// The reference's login URL exactly when a guest token will do.
    fn scope_query(&self) -> Vec<(&'static str, &str)> {
        if self.scope == "guest" {
            Vec::new()
        } else {
            vec![("scope", self.scope.as_str())]
        }
    }

    async fn ask(&self, url: &str, query: &[(&str, &str)]) -> Answer {
        let Ok(response) = self.client.get(url).query(query).send().await else {
            return Answer::Failed;
        };
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .map_or(THROTTLED_WAIT, Duration::from_secs);
            return Answer::Throttled(wait.min(THROTTLED_WAIT));
        }
        if status.is_client_error() {
            return Answer::Refused;
        }
        if !status.is_success() {
            return Answer::Failed;
        }
        match response.json::<Value>().await {
            Ok(body) if body["auth_token"].is_string() => Answer::Granted(body),
            _ => Answer::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a fake identity provider on 127.0.0.1 that rotates refresh tokens (each works
    //! once) and can be told to refuse refreshes or to throttle the first sign-in.

    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    struct Fake {
        base: String,
        requests: Arc<std::sync::Mutex<Vec<String>>>,
        refuse_refresh: Arc<AtomicBool>,
    }

    impl Fake {
        fn requests(&self) -> Vec<String> {
            self.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }
    }

    struct Provider {
        expires_in: u64,
        throttle_next: bool,
        issued: u64,
        live_refresh: Option<String>,
    }

    impl Provider {
        fn answer(&mut self, target: &str, refuse_refresh: bool) -> (&'static str, String) {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let refresh = query.strip_prefix("refresh_token=");
            match path {
                "/prod/login-as-guest" if query.is_empty() && self.throttle_next => {
                    self.throttle_next = false;
                    ("429 Too Many Requests", "{}".to_string())
                }
                "/prod/login-as-guest" if query.is_empty() => self.grant(),
                "/prod/login-as-guest" if query == "user_id=u1&guest_secret=s%2F1" => self.grant(),
                "/prod/refresh-access-token"
                    if !refuse_refresh && refresh == self.live_refresh.as_deref() =>
                {
                    self.grant()
                }
                _ => ("401 Unauthorized", "{}".to_string()),
            }
        }

        fn grant(&mut self) -> (&'static str, String) {
            self.issued += 1;
            let n = self.issued;
            self.live_refresh = Some(format!("r{n}"));
            let body = serde_json::json!({
                "user_id": "u1", "guest_secret": "s/1", "auth_token": format!("a{n}"),
                "refresh_token": format!("r{n}"), "auth_token_expires_in": self.expires_in,
            });
            ("200 OK", body.to_string())
        }
    }

    fn fake_provider(expires_in: u64, throttle_first: bool) -> Fake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let fake = Fake {
            base: format!("http://127.0.0.1:{port}/prod/"),
            requests: Arc::default(),
            refuse_refresh: Arc::default(),
        };
        let (requests, refuse_refresh) = (fake.requests.clone(), fake.refuse_refresh.clone());
        let mut provider = Provider {
            expires_in,
            throttle_next: throttle_first,
            issued: 0,
            live_refresh: None,
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let target = request_target(&stream);
                let (status, body) =
                    provider.answer(&target, refuse_refresh.load(Ordering::SeqCst));
                requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(target);
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        fake
    }

    /// The request line's target; the rest of the head is read and dropped.
    fn request_target(stream: &std::net::TcpStream) -> String {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut header = String::new();
        while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
            header.clear();
        }
        target
    }

    fn players(fake: &Fake, count: usize) -> Players {
        Players::new(reqwest::Client::new(), &fake.base, "guest", count)
    }

    #[tokio::test]
    async fn a_player_signs_in_once_and_renews_with_the_newest_refresh_token() {
        let fake = fake_provider(900, false);
        let players = players(&fake, 1);
        assert_eq!(players.token().await, Some((0, "a1".to_string())));
        assert_eq!(players.token().await, Some((0, "a1".to_string())), "kept");
        assert_eq!(players.renew_refused(0, "a1").await.as_deref(), Some("a2"));
        // r1 no longer works: only the refresh token of the last answer renews.
        assert_eq!(players.renew_refused(0, "a2").await.as_deref(), Some("a3"));
        let asked = fake.requests().len();
        // A sender refused with a token another one has renewed since gets the new one.
        assert_eq!(players.renew_refused(0, "a1").await.as_deref(), Some("a3"));
        assert_eq!(fake.requests().len(), asked);
        assert_eq!(
            fake.requests(),
            [
                "/prod/login-as-guest",
                "/prod/refresh-access-token?refresh_token=r1",
                "/prod/refresh-access-token?refresh_token=r2",
            ]
        );
        let counts = players.counts();
        assert_eq!(
            (counts.new_guests, counts.refreshes, counts.returning_logins),
            (1, 2, 0)
        );
    }

    #[tokio::test]
    async fn a_refused_refresh_falls_back_to_logging_in_as_the_same_guest() {
        let fake = fake_provider(900, false);
        let players = players(&fake, 1);
        assert!(players.token().await.is_some());
        fake.refuse_refresh.store(true, Ordering::SeqCst);
        assert_eq!(players.renew_refused(0, "a1").await.as_deref(), Some("a2"));
        assert_eq!(
            fake.requests(),
            [
                "/prod/login-as-guest",
                "/prod/refresh-access-token?refresh_token=r1",
                "/prod/login-as-guest?user_id=u1&guest_secret=s%2F1",
            ]
        );
        let counts = players.counts();
        assert_eq!(
            (counts.new_guests, counts.refreshes, counts.returning_logins),
            (1, 0, 1)
        );
    }

    #[tokio::test]
    async fn a_token_about_to_expire_is_renewed_before_it_is_sent() {
        // A token that expires at once is due at once.
        let fake = fake_provider(0, false);
        let players = players(&fake, 1);
        assert_eq!(players.token().await, Some((0, "a1".to_string())));
        assert_eq!(players.token().await, Some((0, "a2".to_string())));
        assert_eq!(players.counts().refreshes, 1);
    }

    #[tokio::test]
    async fn players_take_turns_and_a_throttled_sign_in_waits_and_tries_again() {
        let fake = fake_provider(900, true);
        let players = players(&fake, 2);
        assert_eq!(players.token().await, Some((0, "a1".to_string())));
        assert_eq!(players.token().await, Some((1, "a2".to_string())));
        assert_eq!(players.token().await, Some((0, "a1".to_string())));
        assert_eq!(
            players.counts(),
            PlayerCounts {
                players: 2,
                new_guests: 2,
                refreshes: 0,
                returning_logins: 0
            }
        );
        assert_eq!(fake.requests().len(), 3, "one 429, two sign-ins");
    }
}
