//! Who may use the endpoints, as `--web.config.file` says now: TLS settings for new connections and
//! basic-auth checks that never stall a scrape.
//!
//! bcrypt is slow on purpose, so a check runs on the blocking pool, at most `MAX_CHECKS` at once,
//! and a request waits at most `CHECK_QUEUE_WAIT` for a slot before it is refused. No lock is held
//! across a check. Results are remembered by user and SHA-256 of the password, good and bad apart,
//! so an authorised scraper pays bcrypt once and a repeated wrong password costs a hash lookup.
//! The file (and the certificates it names) is re-read when it changes, as exporter-toolkit does,
//! so certificates rotate without a restart; a file that no longer validates is logged and the
//! running settings stay.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use super::web_config::{WebConfig, WebConfigError};

/// bcrypt checks in flight at once: a flood of wrong passwords takes this many blocking threads,
/// never the async workers.
const MAX_CHECKS: usize = 2;
/// How long a request waits for a check slot before it is refused (401).
const CHECK_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Remembered results of each kind; the set is emptied when full.
const CACHE_ENTRIES: usize = 1024;
/// How often the web config's files are looked at for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(5);

type CacheKey = (String, [u8; 32]);

#[derive(Default)]
struct Results {
    good: HashSet<CacheKey>,
    bad: HashSet<CacheKey>,
}

impl Results {
    fn remember(set: &mut HashSet<CacheKey>, key: CacheKey) {
        if set.len() >= CACHE_ENTRIES {
            set.clear();
        }
        set.insert(key);
    }
}

/// The modification time and length of every file a reading depends on.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(file).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

pub struct Access {
    path: Option<PathBuf>,
    current: RwLock<Arc<WebConfig>>,
    stamp: Mutex<Stamp>,
    results: Mutex<Results>,
    checks: Semaphore,
}

impl Access {
    /// No web config file: plain HTTP, no authentication.
    pub fn open() -> Self {
        Self::with(None, WebConfig::open())
    }

    /// Reads the web config file; an invalid one is an error here (start-up), a logged warning later.
    pub fn load(path: PathBuf) -> Result<Self, WebConfigError> {
        let config = WebConfig::load(&path)?;
        Ok(Self::with(Some(path), config))
    }

    fn with(path: Option<PathBuf>, config: WebConfig) -> Self {
        Access {
            path,
            stamp: Mutex::new(stamp(&config.files)),
            current: RwLock::new(Arc::new(config)),
            results: Mutex::default(),
            checks: Semaphore::new(MAX_CHECKS),
        }
    }

    fn config(&self) -> Arc<WebConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The TLS settings for a new connection, if TLS is configured.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.config().tls.clone()
    }

    /// Whether an `Authorization` header value carries a configured user's password.
    pub async fn authorized(&self, header: Option<&str>) -> bool {
        let config = self.config();
        if !config.requires_auth() {
            return true;
        }
        let Some(credentials) = config.credentials(header) else {
            return false;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, credentials.password.as_bytes());
        let mut hashed = [0u8; 32];
        hashed.copy_from_slice(digest.as_ref());
        let key: CacheKey = (credentials.user.clone(), hashed);
        {
            let results = self.lock_results();
            if results.good.contains(&key) {
                return true;
            }
            if results.bad.contains(&key) {
                return false;
            }
        }
        let Ok(Ok(_permit)) = tokio::time::timeout(CHECK_QUEUE_WAIT, self.checks.acquire()).await else {
            tracing::debug!("basic-auth checks saturated; request refused");
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || credentials.verify())
            .await
            .unwrap_or(false);
        // A reload while the check ran must not file its result under the new settings.
        if Arc::ptr_eq(&config, &self.config()) {
            let mut results = self.lock_results();
            let set = if ok { &mut results.good } else { &mut results.bad };
            Results::remember(set, key);
        }
        ok
    }

    fn lock_results(&self) -> std::sync::MutexGuard<'_, Results> {
        self.results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-reads the web config when it or a file it names changed. Blocking I/O: run it off the
    /// async workers. Returns whether new settings took effect.
    pub fn reload_if_changed(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let files = self.config().files.clone();
        let now = stamp(&files);
        {
            let mut last = self.stamp.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if *last == now {
                return false;
            }
            *last = now;
        }
        match WebConfig::load(path) {
            Ok(config) => {
                *self.stamp.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = stamp(&config.files);
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
                *self.lock_results() = Results::default();
                tracing::info!(path = %path.display(), "web config reloaded");
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "web config changed but does not load; the running settings stay");
                false
            }
        }
    }
}

/// Looks at the web config's files every few seconds until shutdown.
pub async fn watch(access: Arc<Access>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RELOAD_CHECK_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        let access = access.clone();
        let _ = tokio::task::spawn_blocking(move || access.reload_if_changed()).await;
    }
}
