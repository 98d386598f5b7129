//! The deployment files are safe to run as shipped (issue #15):
//!
//! - `docker-compose.yml` publishes no port on every interface, serve connects as the read-only
//!   role `playsource_reader`, no password or object-store key is written in the file (only
//!   `${VAR:?message}` substitutions, which Compose fills from `.env` and refuses to run
//!   without), `.env.example` names every variable the file uses, with no value for the required
//!   ones, and the stream and batch services share the archive through the `minio` service with
//!   credentials of their own (not MinIO's root user);
//! - the Kubernetes manifests of `deploy/kubernetes` parse, the stream's static membership comes
//!   from the pod name, serve reads as `playsource_reader`, and passwords come only from the
//!   Secret.
//!
//! The YAML is read by the venv's Python (`$PLAYSOURCE_PYTHON`, as the other tests do) into JSON;
//! the checks are here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const READER: &str = "playsource_reader";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("PLAYSOURCE_PYTHON")
        .map_or_else(|| root().join(".services/venv/bin/python"), PathBuf::from)
}

/// Every YAML document of `path`, as JSON (PyYAML's safe loader, which resolves `<<` merges).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/services.sh or set PLAYSOURCE_PYTHON to a Python with PyYAML",
                python().display()
            )
        });
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn compose() -> Value {
    yaml_documents(&root().join("docker-compose.yml"))
        .pop()
        .expect("docker-compose.yml is empty")
}

fn services(compose: &Value) -> Vec<(&str, &Value)> {
    compose["services"]
        .as_object()
        .expect("docker-compose.yml has no services")
        .iter()
        .map(|(name, s)| (name.as_str(), s))
        .collect()
}

/// A service's environment, from either Compose form (mapping or `KEY=VALUE` list).
fn environment(service: &Value) -> BTreeMap<String, String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match &service["environment"] {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let item = text(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Whether a host address is the loopback interface (or a `${VAR:-default}` whose default is).
fn is_loopback(host: &str) -> bool {
    let host = match host.strip_prefix("${").and_then(|h| h.strip_suffix('}')) {
        Some(sub) => sub.split_once(":-").map_or("", |(_, default)| default),
        None => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// The host address of a short-syntax port (`[HOST:]HOST_PORT:CONTAINER_PORT[/PROTO]`), if any.
fn short_port_host(port: &str) -> Option<&str> {
    let port = port.split('/').next().unwrap_or(port);
    if let Some(rest) = port.strip_prefix('[') {
        // [::1]:8080:8080
        return rest.split_once(']').map(|(host, _)| host);
    }
    let parts: Vec<&str> = port.rsplitn(3, ':').collect();
    (parts.len() == 3).then(|| parts[2])
}

/// `${NAME...}` references of a Compose file, with whether each is required (`:?` / `?`).
/// `$$` is Compose's escape for a literal `$` (a variable of the container's shell).
fn substitutions(text: &str) -> BTreeMap<String, bool> {
    let mut found = BTreeMap::<String, bool>::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let rest = &text[i + 2..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let required = rest[end..].starts_with(":?") || rest[end..].starts_with('?');
                *found.entry(rest[..end].to_owned()).or_default() |= required;
                i += 2 + end;
            }
            _ => i += 1,
        }
    }
    found
}

/// Whether `value` is exactly one `${NAME:?message}` substitution (no default to fall back on).
fn is_required_substitution(value: &str) -> bool {
    value.starts_with("${")
        && value.ends_with('}')
        && value.matches("${").count() == 1
        && substitutions(value).values().all(|&required| required)
}

fn names_a_secret(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    // ACCESS_KEY: an object store's key id (AWS_ACCESS_KEY_ID) is half of a credential.
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "ACCESS_KEY"]
        .iter()
        .any(|word| key.contains(word))
}

/// The user and password of a `scheme://user:password@host/...` URL.
fn url_credentials(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split('/').next()?.rsplit_once('@')?.0;
    Some(match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    })
}

#[test]
fn compose_publishes_ports_on_the_loopback_interface_only() {
    let compose = compose();
    let mut open = Vec::new();
    for (name, service) in services(&compose) {
        if service["network_mode"].as_str() == Some("host") {
            open.push(format!("{name}: network_mode host"));
        }
        for port in service["ports"].as_array().into_iter().flatten() {
            let host = match port {
                Value::String(s) => short_port_host(s).map(str::to_owned),
                Value::Object(long) => long["host_ip"].as_str().map(str::to_owned),
                _ => None,
            };
            if !host.as_deref().is_some_and(is_loopback) {
                open.push(format!("{name}: {port}"));
            }
        }
    }
    assert!(
        open.is_empty(),
        "docker-compose.yml publishes these ports on every interface; bind them to 127.0.0.1 \
         (\"127.0.0.1:HOST:CONTAINER\"): {open:?}"
    );
}

#[test]
fn compose_serve_connects_as_the_read_only_role() {
    let compose = compose();
    let serve = &compose["services"]["serve"];
    let url = environment(serve)
        .remove("DATABASE_URL")
        .expect("the serve service of docker-compose.yml sets no DATABASE_URL");
    let (user, _) = url_credentials(&url)
        .unwrap_or_else(|| panic!("serve's DATABASE_URL {url:?} names no user"));
    assert_eq!(
        user, READER,
        "serve must connect as the read-only role {READER} (migration 0004), not {user:?}"
    );
}

#[test]
fn compose_holds_no_literal_password() {
    let compose = compose();
    let mut literal = Vec::new();
    for (name, service) in services(&compose) {
        for (key, value) in environment(service) {
            if names_a_secret(&key) && !is_required_substitution(&value) {
                literal.push(format!("{name}: {key}={value}"));
            }
            if let Some((_, Some(password))) = url_credentials(&value) {
                if !is_required_substitution(password) {
                    literal.push(format!("{name}: {key}={value}"));
                }
            }
        }
    }
    assert!(
        literal.is_empty(),
        "docker-compose.yml writes these secrets in the file (or lets them default); use \
         ${{VAR:?message}} and name VAR in .env.example: {literal:?}"
    );
}

#[test]
fn compose_shares_the_archive_through_minio() {
    let compose = compose();
    let minio = &compose["services"]["minio"];
    assert!(
        minio["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("minio/minio")),
        "docker-compose.yml has no minio service"
    );
    assert!(
        minio["healthcheck"]["test"].is_array(),
        "minio needs a healthcheck"
    );
    let root = environment(minio);
    for key in ["MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"] {
        let value = root.get(key).map(String::as_str).unwrap_or_default();
        assert!(
            is_required_substitution(value),
            "minio: {key} must come from .env (${{{key}:?...}}), not {value:?}"
        );
    }
    let buckets = &compose["services"]["createbuckets"];
    assert_eq!(
        buckets["depends_on"]["minio"]["condition"], "service_healthy",
        "createbuckets must wait for a healthy minio"
    );
    let archive_users = [
        "stream",
        "batch",
        "batch-shard-1",
        "batch-shard-2",
        "batch-shard-3",
    ];
    for name in archive_users {
        let service = &compose["services"][name];
        let env = environment(service);
        let get = |k: &str| env.get(k).map(String::as_str).unwrap_or_default();
        assert!(
            get("PLAYSOURCE_ARCHIVE").starts_with("s3://"),
            "{name}: PLAYSOURCE_ARCHIVE {:?} is not in the object store",
            get("PLAYSOURCE_ARCHIVE")
        );
        assert_eq!(get("AWS_ENDPOINT_URL"), "http://minio:9000", "{name}");
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let value = get(key);
            assert!(
                is_required_substitution(value) && !value.contains("MINIO_ROOT"),
                "{name}: {key} must be playsource's own MinIO user from .env, not {value:?}"
            );
        }
        assert_eq!(
            service["depends_on"]["createbuckets"]["condition"], "service_completed_successfully",
            "{name} must wait for the bucket"
        );
    }
}

#[test]
fn env_example_names_every_variable_compose_uses() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let example = std::fs::read_to_string(root().join(".env.example"))
        .expect(".env.example is missing: it documents the .env that docker-compose.yml reads");
    let assigned: BTreeMap<&str, &str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let ignored = std::fs::read_to_string(root().join(".gitignore")).unwrap();
    assert!(
        ignored
            .lines()
            .any(|l| l.trim() == "/.env" || l.trim() == ".env"),
        ".gitignore must ignore .env, the file that holds the real secrets"
    );
    let used = substitutions(&text);
    assert!(
        used.values().any(|&required| required),
        "docker-compose.yml requires no variable from .env at all"
    );
    for (name, required) in used {
        if required {
            let value = assigned.get(name.as_str()).unwrap_or_else(|| {
                panic!("docker-compose.yml requires {name}, but .env.example has no `{name}=` line")
            });
            assert!(
                value.is_empty(),
                ".env.example gives {name} a value ({value:?}); leave secrets empty so a copy \
                 that was not filled in is refused"
            );
        } else {
            assert!(
                example.contains(&name),
                "docker-compose.yml reads {name}, but .env.example does not mention it"
            );
        }
    }
}

/// Every document of every manifest in `deploy/kubernetes`, with its file name.
fn manifests() -> Vec<(String, Value)> {
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            yaml_documents(f)
                .into_iter()
                .map(move |d| (name.clone(), d))
        })
        .collect()
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/kubernetes has no {kind} {name}"))
}

/// The containers (and init containers) of a workload's pod template.
fn containers(workload: &Value) -> Vec<&Value> {
    let pod = if workload["kind"] == "CronJob" {
        &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &workload["spec"]["template"]["spec"]
    };
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod[*k].as_array().into_iter().flatten())
        .collect()
}

fn env_var<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn kubernetes_manifests_keep_the_same_properties() {
    let docs = manifests();
    for (file, doc) in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].is_string(), "{file}: a document has no {key}");
        }
        assert_ne!(
            doc["kind"], "Secret",
            "{file}: secrets are created by the operator (README), never committed"
        );
    }
    let config = find(&docs, "ConfigMap", "playsource");

    let stream = find(&docs, "StatefulSet", "playsource-stream");
    let id = env_var(containers(stream)[0], "PLAYSOURCE_INSTANCE_ID")
        .expect("the stream StatefulSet sets no PLAYSOURCE_INSTANCE_ID");
    assert_eq!(
        id["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
        "the stream's static membership must come from the pod's stable name"
    );

    let serve = find(&docs, "Deployment", "playsource-serve");
    let url = env_var(containers(serve)[0], "DATABASE_URL")
        .expect("the serve Deployment sets no DATABASE_URL");
    let url = match url["valueFrom"]["configMapKeyRef"]["key"].as_str() {
        Some(key) => config["data"][key].as_str().unwrap_or_default(),
        None => url["value"].as_str().unwrap_or_default(),
    };
    assert_eq!(
        url_credentials(url).map(|(user, _)| user),
        Some(READER),
        "serve must connect as {READER}, not through {url:?}"
    );
    find(&docs, "CronJob", "playsource-batch");
    find(&docs, "Service", "playsource-serve");

    for (file, doc) in &docs {
        for container in containers(doc) {
            for var in container["env"].as_array().into_iter().flatten() {
                let name = var["name"].as_str().unwrap_or_default();
                if names_a_secret(name) {
                    assert!(
                        var["valueFrom"]["secretKeyRef"].is_object(),
                        "{file}: {name} must come from a Secret (secretKeyRef), not a literal"
                    );
                }
                if let Some((_, Some(_))) = var["value"].as_str().and_then(url_credentials) {
                    panic!("{file}: {name} holds a password in a URL");
                }
            }
        }
    }
    for (key, value) in config["data"].as_object().into_iter().flatten() {
        assert!(
            !names_a_secret(key)
                && !matches!(value.as_str().and_then(url_credentials), Some((_, Some(_)))),
            "the ConfigMap holds a secret ({key}); put it in the Secret"
        );
    }
}
