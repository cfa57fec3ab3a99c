//! Profile editing commands (reference §5.7): they change the config file, which is saved
//! once at the end, atomically, and only if every command succeeded.

use std::path::Path;

use aemp::config::{ConfigFile, Json, split_list};
use anyhow::{Context, Result, bail};

use super::args;

/// The low-level options of reference §5.4, settable with `set OPTION VALUE`.
pub(crate) use aemp::config::OPTIONS;

/// Options whose value is a list.
const LIST_OPTIONS: [&str; 3] = ["framing_format", "auth_offer", "auth_accept"];

/// Rewrites Perl's spellings of the option commands: `setmonitor_timeout 5` and
/// `monitor_timeout 5` become `set monitor_timeout 5`, `delnodelay` becomes `del nodelay`.
pub(crate) fn option_alias(mut args: Vec<String>) -> Vec<String> {
    let Some(first) = args.first() else {
        return args;
    };
    let (verb, option) = if let Some(o) = first.strip_prefix("set").filter(|o| OPTIONS.contains(o))
    {
        ("set", o)
    } else if let Some(o) = first.strip_prefix("del").filter(|o| OPTIONS.contains(o)) {
        ("del", o)
    } else if OPTIONS.contains(&first.as_str()) {
        ("set", first.as_str())
    } else {
        return args;
    };
    let replacement = [verb.to_owned(), option.to_owned()];
    args.splice(0..1, replacement);
    args
}

/// The list keys with add/del commands.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ListKey {
    Binds,
    Seeds,
    Services,
}

impl ListKey {
    /// An argument of this list's commands: JSON, or (binds and seeds) an IPv6 spec such as
    /// `[::1]:4040` as written.
    fn parse(self, arg: &str) -> Result<Json> {
        match self {
            Self::Services => args::json(arg),
            Self::Binds | Self::Seeds => args::json_or_address(arg),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Binds => "binds",
            Self::Seeds => "seeds",
            Self::Services => "services",
        }
    }
}

/// The config file being edited and the profile the commands apply to.
pub(crate) struct Editor {
    file: ConfigFile,
    /// `None`: the top level.
    profile: Option<String>,
}

impl Editor {
    /// Opens the config file. An unreadable or invalid file is an error (and is never
    /// overwritten).
    pub(crate) fn open() -> Result<Self> {
        Ok(Self {
            file: ConfigFile::open_default()?,
            profile: None,
        })
    }

    /// Saves the file if a command changed it.
    pub(crate) fn save(&mut self) -> Result<()> {
        self.file.save()?;
        Ok(())
    }

    /// Where edits apply, for messages.
    fn place(&self) -> String {
        self.profile
            .as_ref()
            .map_or_else(|| "the top level".to_owned(), |p| format!("profile {p:?}"))
    }

    /// `profile NAME`: later commands edit NAME (created if missing).
    pub(crate) fn select(&mut self, name: &str) {
        self.file.ensure_profile(name);
        self.profile = Some(name.to_owned());
    }

    pub(crate) fn delete_profile(&mut self, name: &str) -> Result<()> {
        if !self.file.delete_profile(name) {
            bail!("there is no profile {name:?}");
        }
        if self.profile.as_deref() == Some(name) {
            self.profile = None;
        }
        Ok(())
    }

    pub(crate) fn show_profile(&self, name: &str) -> Result<()> {
        let profile = self
            .file
            .profile(name)
            .with_context(|| format!("there is no profile {name:?}"))?;
        println!("{}", serde_json::to_string_pretty(profile)?);
        Ok(())
    }

    /// `showconfig [NAME [KEY VALUE]...]`: the effective keys of a profile.
    pub(crate) fn show_config(&self, args: &[String]) -> Result<()> {
        let (name, pairs) = match args.split_first() {
            Some((name, rest)) => (name.clone(), args::pairs(rest)?),
            None => (aemp::config::hostname(), Vec::new()),
        };
        let overrides: Vec<(&str, Json)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        // Check that a node could start from it (addresses resolved), then print the keys.
        let settings = self.file.settings(&name, &overrides)?;
        settings.bind_addrs()?;
        settings.seed_addrs()?;
        let effective = self.file.effective(&name, &overrides)?;
        println!("{}", serde_json::to_string_pretty(&effective)?);
        Ok(())
    }

    /// Checks the syntax of bind and seed specs (names are resolved when a node starts).
    fn check_specs(list: ListKey, items: &[Json]) -> Result<()> {
        if matches!(list, ListKey::Services) {
            return Ok(());
        }
        for item in items {
            let Json::String(spec) = item else {
                bail!("{} entries must be strings, not {item}", list.key());
            };
            for part in split_list(spec) {
                aemp::config::parse_spec(&part)
                    .map_err(|why| anyhow::anyhow!("{} entry {part:?}: {why}", list.key()))?;
            }
        }
        Ok(())
    }

    /// Sets a key, then checks that the section still gives usable settings (so a typo is
    /// reported at once, and nothing is saved).
    fn set(&mut self, key: &str, value: Json) -> Result<()> {
        let old = self.file.get(self.profile.as_deref(), key).cloned();
        self.file.set(self.profile.as_deref(), key, value);
        if let Err(e) = self.check() {
            match old {
                Some(old) => self.file.set(self.profile.as_deref(), key, old),
                None => {
                    self.file.remove(self.profile.as_deref(), key);
                }
            }
            return Err(e).with_context(|| format!("{key} not set in {}", self.place()));
        }
        Ok(())
    }

    /// Resolves the settings the edited section takes part in.
    fn check(&self) -> Result<()> {
        let name = self.profile.clone().unwrap_or_else(aemp::config::hostname);
        self.file.settings(&name, &[])?;
        Ok(())
    }

    pub(crate) fn set_string(&mut self, key: &str, value: &str) -> Result<()> {
        let value = match args::json(value)? {
            Json::String(s) => s,
            other => bail!("{key} must be a string, not {other}"),
        };
        if key == "nodeid" && value != "anon/" {
            value
                .parse::<aemp::NodeId>()
                .with_context(|| format!("invalid node id {value:?}"))?;
        }
        self.set(key, Json::String(value))
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<()> {
        if self.file.remove(self.profile.as_deref(), key).is_none() {
            tracing::debug!(key, "nothing to delete");
        }
        Ok(())
    }

    pub(crate) fn gen_secret(&mut self) -> Result<()> {
        let mut bytes = [0_u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random source failed: {e}"))?;
        self.set("secret", Json::String(base62(&bytes)))
    }

    pub(crate) fn set_cert_file(&mut self, file: &Path) -> Result<()> {
        let pem = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read certificate file {}", file.display()))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") || !pem.contains("PRIVATE KEY-----") {
            bail!(
                "{} must hold a PEM certificate and its private key",
                file.display()
            );
        }
        self.set("cert", Json::String(pem))
    }

    pub(crate) fn gen_cert(&mut self) -> Result<()> {
        self.set("cert", Json::String(self_signed_cert()?))
    }

    pub(crate) fn set_parent(&mut self, name: &str) -> Result<()> {
        if self.profile.is_none() {
            tracing::debug!("setting the top level's parent: every profile inherits it");
        }
        self.set("parent", Json::String(name.to_owned()))
    }

    pub(crate) fn set_option(&mut self, option: &str, value: &str) -> Result<()> {
        let value = match args::json(value)? {
            Json::String(s) if LIST_OPTIONS.contains(&option) => Json::from(split_list(&s)),
            other => other,
        };
        self.set(option, value)
    }

    /// `setbinds`/`setseeds`/`setservices`: a JSON array or a comma list.
    pub(crate) fn set_list(&mut self, list: ListKey, value: &str) -> Result<()> {
        let value = match list.parse(value)? {
            Json::String(s) => Json::from(split_list(&s)),
            v @ Json::Array(_) => v,
            other => bail!(
                "{} must be a comma list or a JSON array, not {other}",
                list.key()
            ),
        };
        if let Json::Array(items) = &value {
            Self::check_specs(list, items)?;
        }
        self.set(list.key(), value)
    }

    /// `addbind`/`addseed` (no duplicates) and `addservice` (appends).
    pub(crate) fn add_to_list(&mut self, list: ListKey, item: &str) -> Result<()> {
        let item = list.parse(item)?;
        let mut items = self.current_list(list)?;
        Self::check_specs(list, std::slice::from_ref(&item))?;
        if matches!(list, ListKey::Services) || !items.contains(&item) {
            items.push(item);
        }
        self.set(list.key(), Json::Array(items))
    }

    /// `delbind`/`delseed`/`delservice`: removes the first equal entry.
    pub(crate) fn remove_from_list(&mut self, list: ListKey, item: &str) -> Result<()> {
        let item = list.parse(item)?;
        let mut items = self.current_list(list)?;
        let Some(at) = items.iter().position(|i| *i == item) else {
            bail!("{item} is not in the {} of {}", list.key(), self.place());
        };
        items.remove(at);
        self.set(list.key(), Json::Array(items))
    }

    fn current_list(&self, list: ListKey) -> Result<Vec<Json>> {
        match self.file.get(self.profile.as_deref(), list.key()) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => Ok(items.clone()),
            Some(Json::String(s)) => Ok(split_list(s).into_iter().map(Json::from).collect()),
            Some(other) => bail!("{} in {} is not a list: {other}", list.key(), self.place()),
        }
    }
}

/// Bytes as a base-62 number (Perl's `alnumbits`), ~86 characters for 64 bytes.
fn base62(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut number: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0_u32;
        for byte in &mut number {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(acc / 62).unwrap_or(u8::MAX);
            remainder = acc % 62;
        }
        out.push(DIGITS[remainder as usize]);
    }
    if out.is_empty() {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A self-signed CA certificate with its key, one PEM (certificate first), as Perl's
/// `gencert` makes (reference §4.5). ECDSA P-256 instead of RSA-2048: ring, our TLS crypto
/// provider, cannot generate RSA keys, and OpenSSL (Perl's side) accepts ECDSA.
pub(crate) fn self_signed_cert() -> Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let key = KeyPair::generate().context("generating a key")?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "AnyEvent::MP");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // 365.2425 days a year; a day off at new year does not matter for a validity start.
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_spellings() {
        let v = |a: &[&str]| option_alias(a.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            v(&["setmonitor_timeout", "5"]),
            ["set", "monitor_timeout", "5"]
        );
        assert_eq!(v(&["nodelay", "0", "x"]), ["set", "nodelay", "0", "x"]);
        assert_eq!(v(&["delautocork"]), ["del", "autocork"]);
        assert_eq!(v(&["setsecret", "s"]), ["setsecret", "s"]);
        assert_eq!(v(&["setfoo"]), ["setfoo"]);
        assert!(v(&[]).is_empty());
    }

    #[test]
    fn base62_of_bytes() {
        assert_eq!(base62(&[0]), "0");
        assert_eq!(base62(&[61]), "z");
        assert_eq!(base62(&[62]), "10");
        assert_eq!(base62(&[1, 0]), "48"); // 256 = 4 * 62 + 8
        let s = base62(&[0xff; 64]);
        assert!((85..=87).contains(&s.len()), "{}", s.len());
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn generated_certificates_start_a_tls_node() {
        let pem = self_signed_cert().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert!(pem.contains("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let node = aemp::Node::builder().cert_pem(pem).start().unwrap();
        node.shutdown();
    }
}
