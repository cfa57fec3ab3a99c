//! The configuration file and profiles (AEMP's `~/.perl-anyevent-mp`, reference §5).
//!
//! One JSON object holds global defaults at the top level and named profiles under
//! `"profile"`; a profile may name a `"parent"` whose keys it inherits. A file written by
//! Perl's `aemp` tool works as it is: `#` comments and trailing commas are accepted, numbers
//! may be written as strings, and keys we do not know are kept (and ignored).
//!
//! ```
//! use aemp::config::ConfigFile;
//!
//! let file = ConfigFile::parse(r#"{
//!     "secret": "s3cret",            # global defaults
//!     "monitor_timeout": "10",
//!     "profile": {
//!         "seed": { "nodeid": "seed", "binds": ["127.0.0.1:4040"] },
//!         "worker": { "parent": "seed", "nodeid": "anon/", },
//!     },
//! }"#)?;
//! let settings = file.settings("worker", &[])?;
//! assert_eq!(settings.node_id, "anon/");
//! assert_eq!(settings.binds, ["127.0.0.1:4040"]); // inherited from "seed"
//! assert_eq!(settings.monitor_timeout.as_secs(), 10);
//! # Ok::<(), aemp::config::ConfigError>(())
//! ```
//!
//! [`configure`] reads the file at [`ConfigFile::default_path`] and starts a node from a
//! profile; [`ConfigFile`] also edits profiles and saves atomically (the `aemp` tool's
//! profile commands).

mod addr;
mod settings;
mod values;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use serde_json::{Map, Value as Json};

pub use addr::{DEFAULT_PORT, parse_spec, resolve_binds, resolve_seeds};
pub use settings::{OPTIONS, Service, Settings, configure, hostname};
pub use values::split_list;

/// Largest config file we read (certificates included, real files are a few KiB).
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// Why a configuration could not be read, resolved, written or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither `$AEMP_RC` nor a home/config directory is set.
    #[error("no config file location: set $AEMP_RC (or $HOME)")]
    NoLocation,
    /// The file exists but could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not a JSON object (after removing comments and trailing commas).
    #[error("config file {}: invalid: {reason}", path.as_deref().map_or("(text)".into(), |p| p.display().to_string()))]
    Parse {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// What is wrong, with line and column.
        reason: String,
    },
    /// The file could not be written; the old file is unchanged.
    #[error("cannot write config file {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Following `parent` keys came back to a profile already seen.
    #[error("profile {profile:?}: parent chain loops: {chain}")]
    ParentCycle {
        /// The profile being resolved.
        profile: String,
        /// The chain, e.g. `a -> b -> a`.
        chain: String,
    },
    /// A key has a value of the wrong kind.
    #[error("profile {profile:?}: key {key:?}: {reason}")]
    Key {
        /// The profile being resolved.
        profile: String,
        /// The key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A bind or seed address could not be resolved.
    #[error("profile {profile:?}: key {key:?}: cannot resolve {spec:?}: {reason}")]
    Resolve {
        /// The profile being resolved.
        profile: String,
        /// `binds` or `seeds`.
        key: String,
        /// The address as written.
        spec: String,
        /// Why.
        reason: String,
    },
    /// A service names no registered init function.
    #[error(
        "profile {profile:?}: service {name:?} is not registered (register it with Node::register_init in the setup of Settings::start_with)"
    )]
    UnknownService {
        /// The profile being resolved.
        profile: String,
        /// The service name.
        name: String,
    },
    /// The setup function given to [`Settings::start_with`] failed.
    #[error("profile {profile:?}: setup failed: {reason}")]
    Setup {
        /// The profile being started.
        profile: String,
        /// The error the setup returned.
        reason: String,
    },
    /// The node could not be started.
    #[error("profile {profile:?}: {source}")]
    Node {
        /// The profile being resolved.
        profile: String,
        /// Why.
        #[source]
        source: crate::NodeError,
    },
}

/// A config file: its JSON object, where it lives, and whether it was changed.
///
/// Editing methods take a `profile`: `None` is the top level (global defaults), `Some(name)`
/// the profile `name` (created when a key is set in it).
#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: Option<PathBuf>,
    root: Map<String, Json>,
    modified: bool,
}

impl Default for ConfigFile {
    fn default() -> Self {
        Self::empty()
    }
}

impl ConfigFile {
    /// A file with nothing but `"version": 1`, not tied to a path.
    pub fn empty() -> Self {
        let mut root = Map::new();
        root.insert("version".to_owned(), Json::from(1));
        Self {
            path: None,
            root,
            modified: false,
        }
    }

    /// Where the config file lives: `$AEMP_RC` if set, else `aemp/config.json` in the
    /// platform's config directory (`$XDG_CONFIG_HOME` or `~/.config` on Linux and other
    /// Unix systems, `~/Library/Application Support` on macOS, `%APPDATA%` on Windows).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoLocation`] if none of these variables is set.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        if let Some(rc) = std::env::var_os("AEMP_RC").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(rc));
        }
        config_dir()
            .map(|dir| dir.join("aemp").join("config.json"))
            .ok_or(ConfigError::NoLocation)
    }

    /// Opens the file at [`default_path`](Self::default_path).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`ConfigError::NoLocation`].
    pub fn open_default() -> Result<Self, ConfigError> {
        Self::open(Self::default_path()?)
    }

    /// Reads the file at `path`. A missing file gives an empty configuration that
    /// [`save`](Self::save) creates.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file exists but cannot be read (or is larger than
    /// [`MAX_FILE_SIZE`]), [`ConfigError::Parse`] if it is not a JSON object.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let read_error = |reason: String| ConfigError::Read {
            path: path.clone(),
            reason,
        };
        let text = match fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut file = Self::empty();
                file.path = Some(path);
                return Ok(file);
            }
            Err(e) => return Err(read_error(e.to_string())),
            Ok(meta) if meta.len() > MAX_FILE_SIZE => {
                return Err(read_error(format!(
                    "{} bytes, larger than the limit of {MAX_FILE_SIZE}",
                    meta.len()
                )));
            }
            Ok(_) => fs::read_to_string(&path).map_err(|e| read_error(e.to_string()))?,
        };
        let mut file = Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { reason, .. } => ConfigError::Parse {
                path: Some(path.clone()),
                reason,
            },
            other => other,
        })?;
        file.path = Some(path);
        Ok(file)
    }

    /// Parses config text (relaxed JSON: `#` comments to the end of the line and trailing
    /// commas are allowed, as in Perl's reader).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] if the text is not a JSON object.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let parse_error = |reason: String| ConfigError::Parse { path: None, reason };
        let strict = relax(text);
        let value: Json = serde_json::from_str(&strict).map_err(|e| parse_error(e.to_string()))?;
        let Json::Object(root) = value else {
            return Err(parse_error(
                "the top level must be a JSON object".to_owned(),
            ));
        };
        if let Some(profiles) = root.get("profile")
            && !profiles.is_object()
        {
            return Err(parse_error("\"profile\" must be an object".to_owned()));
        }
        Ok(Self {
            path: None,
            root,
            modified: false,
        })
    }

    /// The file this configuration was read from (or will be saved to).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// `true` if an editing method changed something since it was read or saved.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The whole JSON object.
    pub fn root(&self) -> &Map<String, Json> {
        &self.root
    }

    /// The names of the profiles, sorted.
    pub fn profile_names(&self) -> Vec<&str> {
        self.profiles()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The keys of profile `name` as written (not inherited), if it exists.
    pub fn profile(&self, name: &str) -> Option<&Map<String, Json>> {
        self.profiles()?.get(name)?.as_object()
    }

    /// The value of `key` as written in `profile` (`None`: the top level).
    pub fn get(&self, profile: Option<&str>, key: &str) -> Option<&Json> {
        match profile {
            None => self.root.get(key),
            Some(name) => self.profile(name)?.get(key),
        }
    }

    /// Creates profile `name` if it does not exist.
    pub fn ensure_profile(&mut self, name: &str) {
        self.section_mut(Some(name));
    }

    /// Sets `key` in `profile` (`None`: the top level), creating the profile if needed.
    pub fn set(&mut self, profile: Option<&str>, key: &str, value: Json) {
        let section = self.section_mut(profile);
        if section.get(key) != Some(&value) {
            section.insert(key.to_owned(), value);
            self.modified = true;
        }
    }

    /// Removes `key` from `profile`; returns the old value.
    pub fn remove(&mut self, profile: Option<&str>, key: &str) -> Option<Json> {
        let old = match profile {
            None => self.root.remove(key),
            Some(name) => self
                .root
                .get_mut("profile")?
                .as_object_mut()?
                .get_mut(name)?
                .as_object_mut()?
                .remove(key),
        };
        self.modified |= old.is_some();
        old
    }

    /// Deletes profile `name`; `false` if there was none.
    pub fn delete_profile(&mut self, name: &str) -> bool {
        let removed = self
            .root
            .get_mut("profile")
            .and_then(Json::as_object_mut)
            .and_then(|p| p.remove(name))
            .is_some();
        self.modified |= removed;
        removed
    }

    /// The effective keys for `profile`, merged (later wins) from: the built-in defaults,
    /// `overrides`, the top level, the profile's ancestors (farthest first), the profile
    /// (reference §5.3: `overrides` are defaults that the file overrides). The `profile` and
    /// `parent` keys are left out. A profile that does not exist contributes nothing.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ParentCycle`] if the `parent` keys loop, [`ConfigError::Key`] if a
    /// `parent` is not a string.
    pub fn effective(
        &self,
        profile: &str,
        overrides: &[(&str, Json)],
    ) -> Result<Map<String, Json>, ConfigError> {
        let mut merged = settings::builtin_defaults();
        for (key, value) in overrides {
            merged.insert((*key).to_owned(), value.clone());
        }
        for layer in self.layers(profile)? {
            for (key, value) in layer {
                merged.insert(key.clone(), value.clone());
            }
        }
        merged.remove("profile");
        merged.remove("parent");
        Ok(merged)
    }

    /// The typed settings of `profile` (see [`effective`](Self::effective) for the merge).
    ///
    /// # Errors
    ///
    /// As [`effective`](Self::effective), and [`ConfigError::Key`] naming the key whose value
    /// is unusable.
    pub fn settings(
        &self,
        profile: &str,
        overrides: &[(&str, Json)],
    ) -> Result<Settings, ConfigError> {
        Settings::from_map(profile, &self.effective(profile, overrides)?)
    }

    /// The file as pretty-printed JSON (keys sorted), as [`save`](Self::save) writes it.
    pub fn to_pretty_string(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.root).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    }

    /// Writes the file if it was modified: to `<file>~new~` first (mode 0600 on Unix: it
    /// holds secrets), then the old file becomes `<file>~` and the new one is renamed over
    /// it, so a crash leaves either the old or the new file, never half of one.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Write`] (the old file is then unchanged), [`ConfigError::NoLocation`]
    /// if this configuration has no path.
    pub fn save(&mut self) -> Result<(), ConfigError> {
        if !self.modified {
            return Ok(());
        }
        let path = self.path.clone().ok_or(ConfigError::NoLocation)?;
        write_atomically(&path, self.to_pretty_string().as_bytes()).map_err(|e| {
            ConfigError::Write {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        self.modified = false;
        Ok(())
    }

    fn profiles(&self) -> Option<&Map<String, Json>> {
        self.root.get("profile")?.as_object()
    }

    fn section_mut(&mut self, profile: Option<&str>) -> &mut Map<String, Json> {
        let Some(name) = profile else {
            return &mut self.root;
        };
        let profiles = self
            .root
            .entry("profile")
            .or_insert_with(|| Json::Object(Map::new()));
        if !profiles.is_object() {
            *profiles = Json::Object(Map::new());
            self.modified = true;
        }
        let Json::Object(profiles) = profiles else {
            unreachable!("replaced by an object above")
        };
        if !profiles.get(name).is_some_and(Json::is_object) {
            profiles.insert(name.to_owned(), Json::Object(Map::new()));
            self.modified = true;
        }
        match profiles.get_mut(name) {
            Some(Json::Object(section)) => section,
            _ => unreachable!("inserted as an object above"),
        }
    }

    /// The sections that apply to `profile`, lowest precedence first: the top level, then
    /// the ancestors (farthest first), then the profile itself. A top-level `parent` is the
    /// farthest ancestor of every profile.
    fn layers(&self, profile: &str) -> Result<Vec<&Map<String, Json>>, ConfigError> {
        let mut chain: Vec<&str> = Vec::new();
        let mut sections = Vec::new();
        let mut next = Some(profile);
        let mut top_parent_used = false;
        while let Some(name) = next.take() {
            if chain.contains(&name) {
                chain.push(name);
                return Err(ConfigError::ParentCycle {
                    profile: profile.to_owned(),
                    chain: chain.join(" -> "),
                });
            }
            chain.push(name);
            let Some(section) = self.profile(name) else {
                break;
            };
            sections.push(section);
            next = parent_of(profile, section)?;
            if next.is_none() && !top_parent_used {
                // The top level's parent continues every chain.
                top_parent_used = true;
                next = parent_of(profile, &self.root)?;
            }
        }
        sections.push(&self.root);
        sections.reverse();
        Ok(sections)
    }
}

fn parent_of<'a>(
    profile: &str,
    section: &'a Map<String, Json>,
) -> Result<Option<&'a str>, ConfigError> {
    match section.get("parent") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(p)) => Ok(Some(p)),
        Some(_) => Err(ConfigError::Key {
            profile: profile.to_owned(),
            key: "parent".to_owned(),
            reason: "must be a profile name (a string)".to_owned(),
        }),
    }
}

/// The platform's per-user config directory.
fn config_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if cfg!(windows) {
        return var("APPDATA").map(PathBuf::from);
    }
    if cfg!(target_os = "macos") {
        return var("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"));
    }
    var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push("~new~");
    let tmp = PathBuf::from(tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        if path.exists() {
            let mut backup = path.as_os_str().to_owned();
            backup.push("~");
            let backup = PathBuf::from(backup);
            let _ = fs::remove_file(&backup);
            if fs::hard_link(path, &backup).is_err() {
                fs::copy(path, &backup)?;
            }
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Turns relaxed JSON into strict JSON: removes `#` comments (to the end of the line) and
/// commas that directly precede `]` or `}`, leaving strings untouched. Line numbers stay the
/// same, so parse errors point at the right line.
fn relax(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    // Index in `out` of a comma that may turn out to be trailing.
    let mut pending_comma: Option<usize> = None;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                pending_comma = None;
                out.push(c);
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                out.push(escaped);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ',' => {
                pending_comma = Some(out.len());
                out.push(c);
            }
            ']' | '}' => {
                if let Some(at) = pending_comma.take() {
                    out.replace_range(at..=at, " ");
                }
                out.push(c);
            }
            c if c.is_whitespace() => out.push(c),
            c => {
                pending_comma = None;
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
