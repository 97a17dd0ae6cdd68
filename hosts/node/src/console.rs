//! The web console: a page served by the node's HTTP listener at `/` that reads the
//! JSON API ([`crate::api`]) and shows the node's totals, requests (each one's
//! timeline, output, checked versions and games, refreshed live), disputes,
//! models and operators. "Verify in this browser" re-runs a request with the
//! core's WebAssembly module (`hosts/wasm`, served at [`WASM_PATH`]) on the model
//! file fetched from the node, checked against the model's registered root first,
//! and compares the bytes it would post with the recorded output. "Ask" sends a
//! request from the page and the request view follows it on chain, through the
//! chain module served at [`ASK_PATH`] (`hosts/node/console/ask.js` bundled with
//! viem): signed by the devnet's user account on `oracle devnet`, elsewhere by an
//! injected EIP-1193 wallet. Static files compiled into the binary
//! (`hosts/node/console/`), no external resources, and a content security policy
//! that allows nothing but this origin (and, on a devnet, its RPC).

/// Where the console fetches the core's WebAssembly module.
pub const WASM_PATH: &str = "/console/oracle_wasm.wasm";

/// Where the console imports its chain module from.
pub const ASK_PATH: &str = "/console/ask.js";

/// The content security policy of every console file: this origin only, plus
/// `rpc` (an origin) for the page's chain reads and transactions when given.
/// (`'wasm-unsafe-eval'` lets the page compile the module it fetched from here.)
pub fn csp(rpc: Option<&str>) -> String {
    let connect = match rpc {
        Some(origin) => format!("; connect-src 'self' {origin}"),
        None => String::new(),
    };
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data:; frame-ancestors 'none'{connect}"
    )
}

/// The console file at `path`, with its content type.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some((
            "text/html; charset=utf-8",
            include_str!("../console/index.html"),
        )),
        "/console.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("../console/console.js"),
        )),
        "/console.css" => Some((
            "text/css; charset=utf-8",
            include_str!("../console/console.css"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use crate::http::{serve_node, Limits};

    /// The system's Chromium (Debian's `chromium` package), or a failure that says
    /// how to get it: the console's tests never skip silently.
    fn chromium() -> PathBuf {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if let Ok(out) = Command::new("which").arg(name).output() {
                if out.status.success() {
                    return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                }
            }
        }
        panic!("no headless browser: install Debian's `chromium` (bash .ci/install.sh does)");
    }

    /// A node's console served on a free port, and a browser profile to visit it.
    struct Site {
        base: String,
        profile: tempfile::TempDir,
    }

    impl Site {
        fn serve(api: crate::api::Api) -> Site {
            let addr = serve_node("127.0.0.1:0".parse().unwrap(), Some(api), Limits::default())
                .expect("listening");
            Site {
                base: format!("http://{addr}"),
                profile: tempfile::tempdir().unwrap(),
            }
        }

        /// Chromium with `args`, off the runtime's threads.
        async fn browse(&self, args: Vec<String>) -> String {
            let profile = self.profile.path().to_path_buf();
            tokio::task::spawn_blocking(move || browse(&profile, &args))
                .await
                .unwrap()
        }
    }

    /// Chromium, headless, with a fresh profile; `args` come last.
    fn browse(profile: &Path, args: &[String]) -> String {
        let out = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--virtual-time-budget=4000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .output()
            .expect("running chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The page in a real headless browser, against a node's API over a database
    /// with requests in several states, a checked result, a game and an operator:
    /// the list view shows them all, the request view shows one request's
    /// timeline, output, versions and game. Screenshots of both views are taken
    /// (and written to `docs/console/` with `ORACLE_BLESS=1`, for the README).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_console_shows_the_node_in_a_headless_browser() {
        let (_dir, api) = crate::api::tests::api();
        let site = Site::serve(api);
        let base = &site.base;
        let shots = tempfile::tempdir().unwrap();

        let list = site
            .browse(vec!["--dump-dom".into(), format!("{base}/")])
            .await;
        assert!(
            list.contains("data-loaded=\"yes\""),
            "the script ran: {list}"
        );
        for want in [
            "validator 0xacacacacacacacacacacacacacacacacacacacac",
            ">finalized<",
            ">failed<",
            "the deadline passed",
            ">challenging<",
            ">Playing<",
            "0x0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "href=\"#request/3\"",
        ] {
            assert!(list.contains(want), "the list view lacks {want:?}: {list}");
        }
        assert!(!list.contains("the node did not answer"), "{list}");

        let one = site
            .browse(vec!["--dump-dom".into(), format!("{base}/#request/1")])
            .await;
        for want in [
            "validator 0xacacacacacacacacacacacacacacacacacacacac",
            "<b>requested</b>block 11",
            "<b>served</b>",
            "<b>finalized</b>",
            "Once upon a time, there was",
            ">Challenged<",
            ">Agreed<",
            "0..16 (16 wide)",
            "0..8 (8 wide)",
            "0..1024 (1024 wide)",
            "118 s / 118 s",
            "81,024",
        ] {
            assert!(one.contains(want), "the request view lacks {want:?}: {one}");
        }
        let missing = site
            .browse(vec!["--dump-dom".into(), format!("{base}/#request/99")])
            .await;
        // A request the node has not seen (just sent from the page, say) is shown
        // as such; the chain's view needs chain access, which this node lacks.
        assert!(missing.contains("not seen by this node yet"), "{missing}");
        assert!(!missing.contains("the node did not answer"), "{missing}");
        assert!(
            list.contains("cannot ask from here: this node gives the console no chain access")
                && list.contains("data-chain=\"none\""),
            "{list}"
        );

        let bless = std::env::var_os("ORACLE_BLESS").is_some();
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console");
        for (name, page) in [("list", "/"), ("request", "/#request/1")] {
            let file = shots.path().join(format!("{name}.png"));
            site.browse(vec![
                "--window-size=1280,900".into(),
                format!("--screenshot={}", file.display()),
                format!("{base}{page}"),
            ])
            .await;
            let png = std::fs::read(&file).expect("a screenshot");
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
            if bless {
                std::fs::create_dir_all(&docs).unwrap();
                std::fs::copy(&file, docs.join(format!("{name}.png"))).unwrap();
            }
        }
    }

    /// "Verify in this browser" runs the core's WebAssembly module in headless
    /// Chromium on a model file fetched from the node: it agrees with an honest
    /// output, flags a corrupted one, and refuses weights whose root is not the
    /// model's registered root. Image outputs are shown: a PNG posted inline as it
    /// is, one posted as its hash after the page checked the node's file against it
    /// (and not at all when the node lacks it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_in_the_browser_agrees_with_honest_output_and_flags_a_corrupted_one() {
        use std::sync::Arc;

        use alloy::primitives::{Address, Bytes, B256, U256};
        use oracle_core::quant::QType;

        use crate::db::{Db, RequestEvent, RequestState};
        use crate::serve::models::{ModelKind, ModelSet, ServedModel};

        let bytes = Arc::new(oracle_tests::LLAMA_FIXTURES[0].model_file(QType::Q8));
        let root: B256 = oracle_core::commit::merkle::model_root(&bytes).into();
        let served = |id: u64, root: B256| ServedModel {
            id: U256::from(id),
            bytes: bytes.clone(),
            name: "stories260K-q8.bin".into(),
            root,
            kind: ModelKind::Text {
                trace_bound: 1 << 40,
                chat: false,
            },
        };
        let mut models = ModelSet::new();
        models.insert(U256::from(1u64), served(1, root));
        // A model whose file does not hash to the root it is listed under.
        models.insert(U256::from(2u64), served(2, B256::repeat_byte(0xEE)));
        // An image model (listed only: its requests' outputs are PNGs, inline or as
        // their hash).
        let image = ServedModel {
            kind: ModelKind::Image {
                params: oracle_core::ImageParams {
                    steps: 1,
                    seed: 0,
                    guidance_q16: 0,
                },
                trace_bound: 1 << 40,
            },
            ..served(3, root)
        };
        models.insert(U256::from(3u64), image);
        let steps = 16;
        let input = b"Once upon a time";
        let params = models[&U256::from(1u64)]
            .request(input, steps)
            .encode_params();
        let honest = oracle_core::model::outcome::run(
            &bytes,
            oracle_core::Exec::best(1),
            &params,
            input,
            |_| {},
        )
        .posted();
        let mut corrupted = honest.clone();
        corrupted[input.len() + 2] ^= 0x20;

        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("node.redb")).unwrap();
        let event = |id: u64, model: u64| RequestEvent {
            id: U256::from(id),
            model_id: U256::from(model),
            input: Bytes::from_static(input),
            callback: Address::ZERO,
            gas_limit: 100_000,
            callback_data: Bytes::new(),
            block: id,
        };
        let png = |shade: u8| {
            let pixels: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(shade)).collect();
            oracle_core::diffusion::png::encode(
                &pixels,
                8,
                8,
                oracle_core::diffusion::png::ColorType::Gray,
            )
            .unwrap()
        };
        let outputs = crate::serve::outputs::OutputStore::new(dir.path().join("outputs"));
        let stored = outputs.put(&png(3)).unwrap().to_vec();
        let missing = oracle_core::commit::merkle::keccak(&png(5)).to_vec();
        db.record_requests(
            &[
                event(1, 1),
                event(2, 1),
                event(3, 2),
                event(4, 3),
                event(5, 3),
                event(6, 3),
            ],
            6,
            |_| true,
        )
        .unwrap();
        let inline = png(7);
        for (id, output) in [
            (1u64, &honest),
            (2, &corrupted),
            (3, &honest),
            (4, &inline),
            (5, &stored),
            (6, &missing),
        ] {
            let mut r = db.request(U256::from(id)).unwrap().unwrap();
            r.output = Some(Bytes::from(output.clone()));
            r.state = RequestState::Submitted;
            db.put_request(&r).unwrap();
        }
        let wasm = std::fs::read(oracle_tests::wasm_module()).expect("the wasm module");
        let api = crate::api::Api {
            role: "operator",
            account: Address::repeat_byte(1),
            oracle: Address::repeat_byte(2),
            db: Arc::new(db),
            models: Arc::new(models),
            steps,
            wasm: Some(Arc::new(wasm)),
            outputs: Some(outputs),
            ask: None,
            chain: None,
            peers: Vec::new(),
        };
        let site = Site::serve(api);
        let base = &site.base;
        let page = |id: u64| {
            site.browse(vec![
                "--dump-dom".into(),
                format!("{base}/#request/{id}/verify"),
            ])
        };

        let ok = page(1).await;
        assert!(
            ok.contains("verified: this browser's run (text, model root checked) posts the same"),
            "{ok}"
        );
        let bad = page(2).await;
        assert!(
            bad.contains("MISMATCH: this browser's run posts other bytes"),
            "{bad}"
        );
        let refused = page(3).await;
        assert!(
            refused.contains("is not the registered 0xeeeeeeee"),
            "{refused}"
        );
        assert!(refused.contains("not run"), "{refused}");

        let view =
            |id: u64| site.browse(vec!["--dump-dom".into(), format!("{base}/#request/{id}")]);
        let shown = view(4).await;
        assert!(
            shown.contains("src=\"data:image/png;base64,")
                && shown.contains("the PNG posted on chain"),
            "{shown}"
        );
        let checked = view(5).await;
        assert!(
            checked.contains("src=\"data:image/png;base64,")
                && checked.contains("checked in this browser: the PNG hashes to the posted hash"),
            "{checked}"
        );
        let absent = view(6).await;
        assert!(absent.contains("is not on this node"), "{absent}");
        assert!(!absent.contains("<img"), "{absent}");

        if std::env::var_os("ORACLE_BLESS").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console");
            std::fs::create_dir_all(&docs).unwrap();
            site.browse(vec![
                "--window-size=1280,700".into(),
                format!("--screenshot={}", docs.join("verify.png").display()),
                format!("{base}/#request/2/verify"),
            ])
            .await;
        }
    }
}
