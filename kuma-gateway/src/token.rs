//! `token`: Kuma's dataplane tokens from the command line — a new signing
//! key as a `Secret` to add to the resources, and tokens signed with the
//! newest key of a mesh (`kumactl generate signing-key` and
//! `kumactl generate dataplane-token`, offline).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::Subcommand;
use kuma_xds_server::tokens::{self, DataplaneClaims, SIGNING_KEY_PREFIX, SigningKey};

/// `kuma-gateway token ...`
#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a new signing-key Secret for a mesh (YAML): add it to the
    /// resources, and tokens can be signed with it. A higher serial than the
    /// mesh's other keys makes it the one new tokens are signed with.
    SigningKey {
        /// The mesh.
        #[arg(long, default_value = "default")]
        mesh: String,
        /// The key's serial (its `kid`).
        #[arg(long, default_value_t = 1)]
        serial: u64,
    },
    /// Print a dataplane token signed with the mesh's newest signing key
    /// found in the resources.
    Generate {
        /// The resources holding the signing key, and the data plane the
        /// token is for (its `Name` and `Mesh`).
        #[command(flatten)]
        target: crate::Target,
        /// How long the token is valid (`24h`, `90m`, `8760h`).
        #[arg(long, default_value = "24h")]
        valid_for: String,
        /// Tags the data plane must carry: `key=value` or `key=v1,v2`
        /// (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
}

pub(crate) fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::SigningKey { mesh, serial } => {
            let key = SigningKey::generate(&serial.to_string())?;
            let data = base64::engine::general_purpose::STANDARD.encode(key.to_pem()?);
            println!("type: Secret\nmesh: {mesh}\nname: {SIGNING_KEY_PREFIX}{mesh}-{serial}\ndata: {data}");
            Ok(())
        }
        TokenCommand::Generate { target: crate::Target { resources, dataplane, mesh }, valid_for, tags } => {
            let Some((set, _)) = crate::store::load(&resources)? else { bail!("the resources are invalid") };
            let (keys, problems) = tokens::signing_keys(&set, &mesh);
            for p in problems {
                eprintln!("{p}");
            }
            let Some(key) = keys.first() else {
                bail!(
                    "no signing key for mesh {mesh:?} in the resources (a Secret named {SIGNING_KEY_PREFIX}{mesh}-<serial>); make one with: kuma-gateway token signing-key --mesh {mesh}"
                )
            };
            let valid_for = parse_validity(&valid_for)?;
            let claims = DataplaneClaims::new(&dataplane, &mesh, parse_tags(&tags)?, SystemTime::now(), valid_for);
            println!("{}", key.issue(&claims)?);
            Ok(())
        }
    }
}

fn parse_validity(text: &str) -> Result<Duration> {
    let d: kuma_model::Duration = text.parse().map_err(|e| anyhow::anyhow!("--valid-for {text:?}: {e}"))?;
    let nanos = u64::try_from(d.as_nanos()).ok().filter(|n| *n > 0);
    nanos.map(Duration::from_nanos).with_context(|| format!("--valid-for {text:?}: must be positive"))
}

/// `--tag k=v1,v2` as kumactl reads it.
fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tags {
        let (k, v) = t.split_once('=').with_context(|| format!("--tag {t:?}: expected KEY=VALUE"))?;
        out.entry(k.to_string()).or_default().extend(v.split(',').map(str::to_string));
    }
    Ok(out)
}
