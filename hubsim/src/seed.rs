//! `hubsim seed`: builds a synthetic repo directly in a data directory, fast enough for
//! multi-gigabyte benchmark repos (content is generated, hashed and written in one pass, LFS
//! files in parallel). Content is deterministic: file bytes are a pure function of `--seed` and
//! the file's path ([`content_block`]), so tests can predict every sha256; `--manifest` writes
//! the list anyway.
//!
//! Layout: `--files N` small regular files under `files/part-PPP/file-NNNNN.txt` (500 per
//! folder), `--lfs-files M` files `weights/model-NNNNN.bin`, plus every `--lfs-file PATH=SIZE`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::SeedArgs;
use crate::gitlab::projects::Visibility;
use crate::repo::{RepoId, RepoKind, check_path};
use crate::state::Flavor;
use crate::store::tree::pointer_text;
use crate::store::{Op, RepoMeta, Store};
use crate::util::{now_secs, parse_size, random_hex, random_u64};

/// Regular files per folder in the generated layout.
const PER_FOLDER: u64 = 500;

/// One generated file, as written to `--manifest`.
#[derive(Serialize, Debug, Clone)]
pub struct ManifestEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub lfs: bool,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator state for a file: FNV-1a of the path mixed with the seed.
fn file_state(seed: u64, path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in path.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Fills `buf` with the next bytes of a file's deterministic content. Text files use printable
/// characters and newlines; binary files use the raw generator output.
pub fn content_block(state: &mut u64, buf: &mut [u8], text: bool) {
    for chunk in buf.chunks_mut(8) {
        let v = splitmix(state).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    if text {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = if i % 64 == 63 { b'\n' } else { b'a' + (*b % 26) };
        }
    }
}

/// The whole content of a generated text file (small files only).
pub fn text_content(seed: u64, path: &str, size: u64) -> Vec<u8> {
    let mut state = file_state(seed, path);
    let mut buf = vec![0u8; size as usize];
    content_block(&mut state, &mut buf, true);
    buf
}

/// Generates an LFS file straight into the object store; returns its sha256.
fn write_lfs_object(store: &Store, seed: u64, path: &str, size: u64) -> anyhow::Result<String> {
    let tmp = store.lfs.temp_path("seed");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut state = file_state(seed, path);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        content_block(&mut state, &mut buf[..n], false);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    drop(out);
    let oid = hex::encode(hasher.finalize());
    let dest = store.lfs.path(&oid);
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::rename(&tmp, &dest)?;
    Ok(oid)
}

/// The files `args` asks for: (path, size, is_lfs), in a stable order.
fn plan(args: &SeedArgs) -> anyhow::Result<Vec<(String, u64, bool)>> {
    let mut files = Vec::new();
    for i in 0..args.files {
        files.push((
            format!("files/part-{:03}/file-{i:05}.txt", i / PER_FOLDER),
            args.file_size,
            false,
        ));
    }
    for i in 0..args.lfs_files {
        files.push((format!("weights/model-{i:05}.bin"), args.lfs_size, true));
    }
    for spec in &args.lfs_file {
        let (path, size) = spec.rsplit_once('=').context("--lfs-file takes PATH=SIZE")?;
        check_path(path).map_err(anyhow::Error::msg)?;
        files.push((path.to_string(), parse_size(size).map_err(anyhow::Error::msg)?, true));
    }
    let mut seen = std::collections::HashSet::new();
    for (p, _, _) in &files {
        if !seen.insert(p.clone()) || p == ".gitattributes" {
            bail!("the file {p} is given twice");
        }
    }
    Ok(files)
}

/// Builds the repo described by `args`.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let kind = RepoKind::from_singular(&args.repo_type).context("--repo-type is model, dataset or space")?;
    let id = if args.flavor == Flavor::Git {
        if kind != RepoKind::Model {
            bail!("the git flavor has projects only: leave out --repo-type");
        }
        RepoId::from_full_path(kind, &args.repo).map_err(anyhow::Error::msg)?
    } else {
        let (ns, name) = args.repo.split_once('/').context("--repo takes NAMESPACE/NAME")?;
        RepoId::new(kind, ns, name).map_err(anyhow::Error::msg)?
    };
    let files = plan(&args)?;
    let store =
        std::sync::Arc::new(Store::open(&args.data).with_context(|| format!("cannot open {}", args.data.display()))?);
    if store.meta(&id).await?.is_some() {
        bail!("{} already exists in {}", id.full(), args.data.display());
    }

    // LFS objects first, generated in parallel on every core.
    let lfs: Vec<(String, u64)> = files.iter().filter(|f| f.2).map(|f| (f.0.clone(), f.1)).collect();
    let seed = args.seed;
    let st = store.clone();
    let oids: Vec<String> = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(lfs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<String>>> = lfs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| -> anyhow::Result<()> {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| -> anyhow::Result<()> {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((path, size)) = lfs.get(i) else {
                                return Ok(());
                            };
                            let oid = write_lfs_object(&st, seed, path, *size)?;
                            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(oid);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| anyhow::anyhow!("a seed worker panicked"))??;
            }
            Ok(())
        })?;
        Ok(results
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_default())
            .collect())
    })
    .await??;

    let attrs = match args.flavor {
        // GitLab has no default `.gitattributes`: track what we create, as `git lfs track` would.
        Flavor::Git => {
            let lfs_paths: Vec<String> = files.iter().filter(|f| f.2).map(|f| f.0.clone()).collect();
            let base = if args.lfs_files > 0 {
                "*.bin filter=lfs diff=lfs merge=lfs -text\n".to_string()
            } else {
                String::new()
            };
            crate::glob::add_lfs_rules(&base, &lfs_paths).unwrap_or(base)
        }
        Flavor::Hf | Flavor::Ms => kind.default_gitattributes(),
    };
    let mut manifest = vec![ManifestEntry {
        path: ".gitattributes".into(),
        size: attrs.len() as u64,
        sha256: crate::util::sha256_hex(attrs.as_bytes()),
        lfs: false,
    }];
    let mut ops = vec![Op::Put {
        path: ".gitattributes".into(),
        data: attrs.into_bytes(),
    }];
    if let Some(license) = &args.license {
        let data = format!("---\nlicense: {license}\n---\n\n# {}\n", args.repo).into_bytes();
        manifest.push(ManifestEntry {
            path: "README.md".into(),
            size: data.len() as u64,
            sha256: crate::util::sha256_hex(&data),
            lfs: false,
        });
        ops.push(Op::Put {
            path: "README.md".into(),
            data,
        });
    }
    let mut oid_iter = oids.iter();
    for (path, size, is_lfs) in &files {
        if *is_lfs {
            let oid = oid_iter.next().context("missing object")?;
            ops.push(Op::Put {
                path: path.clone(),
                data: pointer_text(oid, *size).into_bytes(),
            });
            manifest.push(ManifestEntry {
                path: path.clone(),
                size: *size,
                sha256: oid.clone(),
                lfs: true,
            });
        } else {
            let data = text_content(seed, path, *size);
            manifest.push(ManifestEntry {
                path: path.clone(),
                size: *size,
                sha256: crate::util::sha256_hex(&data),
                lfs: false,
            });
            ops.push(Op::Put {
                path: path.clone(),
                data,
            });
        }
    }
    let branch = match args.flavor {
        Flavor::Hf | Flavor::Git => "main",
        Flavor::Ms => "master",
    };
    let target = format!("refs/heads/{branch}");
    if args.flavor == Flavor::Git {
        let visibility = if args.private {
            Visibility::Private
        } else {
            Visibility::Public
        };
        crate::gitlab::projects::create(&store, &id, visibility).await?;
        let _guard = store.lock(&id).await;
        store
            .write_commit(&id, &target, None, &ops, "hubsim-seed", "Seed synthetic repo")
            .await?;
    } else {
        let meta = RepoMeta {
            id: random_hex(12),
            num_id: random_u64() % 1_000_000_000,
            private: args.private,
            gated: args.gated.clone(),
            granted: Default::default(),
            created: now_secs(),
            default_branch: branch.into(),
            next_pr: 1,
            extra: args
                .license
                .iter()
                .map(|l| ("license".to_string(), serde_json::json!(l)))
                .collect(),
        };
        let _guard = store.lock(&id).await;
        store.create(&id, &meta, Vec::new(), "system", "initial commit").await?;
        let base = store.branch_head(&id, branch).await?;
        store
            .write_commit(
                &id,
                &target,
                base.as_deref(),
                &ops,
                "hubsim-seed",
                "Seed synthetic repo",
            )
            .await?;
    }
    for oid in &oids {
        store.link_object(&id, oid).await?;
    }
    if args.flavor == Flavor::Hf {
        store
            .install_pre_receive(&id, &crate::hf::commit::pre_receive_hook())
            .await?;
    }
    if let Some(path) = &args.manifest {
        write_manifest(path, &manifest)?;
    }
    let bytes: u64 = manifest.iter().map(|m| m.size).sum();
    tracing::info!(repo = %id, files = manifest.len(), bytes, secs = started.elapsed().as_secs_f64(), "seeded repo");
    Ok(())
}

fn write_manifest(path: &Path, manifest: &[ManifestEntry]) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(manifest)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_per_path_and_seed() {
        assert_eq!(text_content(0, "a.txt", 100), text_content(0, "a.txt", 100));
        assert_ne!(text_content(0, "a.txt", 100), text_content(0, "b.txt", 100));
        assert_ne!(text_content(0, "a.txt", 100), text_content(1, "a.txt", 100));
        assert!(
            text_content(0, "a.txt", 200)
                .iter()
                .all(|b| b.is_ascii_lowercase() || *b == b'\n')
        );
    }
}
