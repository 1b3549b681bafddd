//! A secured Kafka-protocol cluster for the TLS and SASL tests: tansu behind stunnel.
//!
//! tansu serves the Kafka protocol in plaintext (its SCRAM authentication on with
//! [`Auth::Scram`], its users made before and kept in its SQLite engine); stunnel, from Debian's packages, terminates
//! TLS in front of it with a server certificate signed by a CA made here, and tansu advertises
//! stunnel's address, so every client connection goes through TLS. A second CA, which signed
//! nothing the cluster shows, stands for an untrusted certificate.
//!
//! The binaries: `CHOREOSCOPE_TANSU` (else `tansu` on the `PATH`) and `CHOREOSCOPE_STUNNEL`
//! (else `stunnel4`, then `stunnel`); `scripts/test` installs both.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::TestBroker;

/// How clients authenticate to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth<'a> {
    /// Anyone who completes the TLS handshake.
    None,
    /// SASL SCRAM, with these users: `(name, password, mechanism)`, the mechanism `scram256` or
    /// `scram512`.
    Scram(&'a [(&'a str, &'a str, &'a str)]),
}

/// tansu and stunnel, stopped (killed) when dropped.
pub struct SecureCluster {
    dir: tempfile::TempDir,
    tansu: Child,
    stunnel: Child,
    tls_port: u16,
}

/// A process of the cluster that did not come up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClusterError(String);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn binary(env: &str, names: &[&str]) -> String {
    std::env::var(env).unwrap_or_else(|_| {
        names
            .iter()
            .find(|n| {
                std::env::var_os("PATH").is_some_and(|path| {
                    std::env::split_paths(&path).any(|dir| dir.join(n).is_file())
                })
            })
            .map(|n| n.to_string())
            .unwrap_or_else(|| {
                panic!("{env} is not set and none of {names:?} is on the PATH: run scripts/test, which installs it")
            })
    })
}

fn wait_for_port(port: u16, what: &str, log: &Path) -> Result<(), ClusterError> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ClusterError(format!(
        "{what} does not listen on 127.0.0.1:{port} after 30 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    )))
}

/// A CA: its self-signed certificate, and the issuer that signs with its key.
struct Authority {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Self {
            ca: CertifiedIssuer::self_signed(params, key).expect("self-signed CA"),
        }
    }

    /// The CA's certificate in PEM.
    fn pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1, and its key, in PEM.
    fn server(&self) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// Adds a SCRAM user with tansu's own command, sent to its plaintext listener on `port`.
fn add_user(port: u16, name: &str, password: &str, mechanism: &str) -> Result<(), ClusterError> {
    let output = Command::new(binary("CHOREOSCOPE_TANSU", &["tansu"]))
        .args(["user", "create", "--broker"])
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(["--mechanism", mechanism, name, password])
        .output()
        .map_err(|e| ClusterError(format!("cannot run tansu user create: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ClusterError(format!(
            "tansu user create {name} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

impl SecureCluster {
    /// Starts tansu (with SCRAM when `auth` says so) and stunnel in front of it.
    pub fn start(auth: Auth) -> Result<Self, ClusterError> {
        let dir = tempfile::tempdir().map_err(|e| ClusterError(e.to_string()))?;
        let ca = Authority::new("choreoscope test CA");
        let other = Authority::new("some other CA");
        let (server_cert, server_key) = ca.server();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write into the test folder")
        };
        write("ca.pem", &ca.pem());
        write("other-ca.pem", &other.pem());
        write("server.pem", &server_cert);
        write("server.key", &server_key);

        let (plain_port, tls_port) = (free_port(), free_port());
        let tansu_log = dir.path().join("tansu.log");
        let start_tansu = |authentication: bool| -> Result<Child, ClusterError> {
            let mut tansu = Command::new(binary("CHOREOSCOPE_TANSU", &["tansu"]));
            tansu
                .current_dir(dir.path())
                .args(["broker", "--storage-engine", "sqlite://tansu.db"])
                .args(["--listener-url", &format!("tcp://127.0.0.1:{plain_port}")])
                .args([
                    "--advertised-listener-url",
                    &format!("tcp://localhost:{tls_port}"),
                ]);
            if authentication {
                tansu.arg("--authentication");
            }
            let child = tansu
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&tansu_log).map_err(|e| ClusterError(e.to_string()))?)
                .spawn()
                .map_err(|e| ClusterError(format!("cannot start tansu: {e}")))?;
            Ok(child)
        };
        let tansu = match auth {
            Auth::None => start_tansu(false)?,
            // tansu refuses every request of an unauthenticated client once authentication is
            // on, its own `user create` included: the users are made first, without it, into the
            // SQLite engine, which keeps them for the restart with it.
            Auth::Scram(users) => {
                let mut open = start_tansu(false)?;
                let made = wait_for_port(plain_port, "tansu", &tansu_log).and_then(|()| {
                    users.iter().try_for_each(|(name, password, mechanism)| {
                        add_user(plain_port, name, password, mechanism)
                    })
                });
                let _ = open.kill();
                let _ = open.wait();
                made?;
                start_tansu(true)?
            }
        };

        let conf = dir.path().join("stunnel.conf");
        let stunnel_log = dir.path().join("stunnel.log");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\noutput = {log}\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{plain_port}\ncert = {dir}/server.pem\nkey = {dir}/server.key\n",
                log = stunnel_log.display(),
                dir = dir.path().display()
            ),
        )
        .map_err(|e| ClusterError(e.to_string()))?;
        let stunnel = Command::new(binary("CHOREOSCOPE_STUNNEL", &["stunnel4", "stunnel"]))
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ClusterError(format!("cannot start stunnel: {e}")))?;
        let cluster = Self {
            dir,
            tansu,
            stunnel,
            tls_port,
        };
        wait_for_port(plain_port, "tansu", &tansu_log)?;
        wait_for_port(tls_port, "stunnel", &stunnel_log)?;
        Ok(cluster)
    }

    /// `localhost:PORT` of the TLS listener, the address the cluster advertises.
    pub fn bootstrap(&self) -> String {
        format!("localhost:{}", self.tls_port)
    }

    /// The PEM file of the CA that signed the broker's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The PEM file of a CA that signed nothing the cluster shows.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// A folder for the test's own files (password files, stores), removed with the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A test broker handle whose clients connect over TLS (trusting the cluster's CA) with
    /// `extra` client properties (SASL, say).
    pub fn broker(&self, extra: &[(&str, &str)]) -> TestBroker {
        let mut properties = vec![
            ("security.protocol".to_owned(), "ssl".to_owned()),
            (
                "ssl.ca.location".to_owned(),
                self.ca_file().display().to_string(),
            ),
        ];
        properties.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        TestBroker::with_properties(self.bootstrap(), properties)
    }
}

impl Drop for SecureCluster {
    fn drop(&mut self) {
        for child in [&mut self.stunnel, &mut self.tansu] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
