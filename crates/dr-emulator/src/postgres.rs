//! Two real PostgreSQL servers in streaming replication, standing for the RDS primary in Paris and
//! its cross-region read replica in Ireland: moto has no data, no replication and no lag, so the
//! database path (promotion, rows written before it) is shown on real PostgreSQL while every RDS
//! API call still goes to the emulator. `rds.py` promotes the standby when the emulated replica it
//! backs is promoted (`control::back_instance_with`).
//!
//! Debian's PostgreSQL (`apt-get install postgresql`, which `scripts/test` runs when it is
//! missing). The servers listen on loopback only, trust local connections, and keep their data in
//! a temporary directory removed on drop. PostgreSQL refuses to run as root: as root, the
//! servers run as the `postgres` user the package creates.
//!
//! As RDS serves them: over TLS, with a certificate for the endpoint (`IP:127.0.0.1`) signed by
//! the local stack's database CA (`DR_DB_CA_BUNDLE`, made by `scripts/lambdas`; the functions
//! trust it as they trust the RDS CA bundle on AWS), and set up with `docs/database.sql`, whose
//! least-privilege role `dr_orchestrator` is the one the seeded credentials secret names.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One server of the pair.
#[derive(Debug, Clone)]
pub struct Server {
    pub port: u16,
    data: PathBuf,
}

impl Server {
    /// `postgresql://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// Who signs the primary's certificate (the standby's is a copy, as its base backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The local stack's database CA, which the functions trust (`DR_DB_CA_BUNDLE`).
    LocalCa,
    /// A CA nobody trusts: a server the orchestrator must refuse.
    Unknown,
}

/// The environment variable naming the local database CA's certificate (its key beside it,
/// `.key` for `.pem`).
pub const CA_BUNDLE_ENV: &str = "DR_DB_CA_BUNDLE";

/// The least-privilege role and its grants, as the customer runs them (docs/database.sql).
const DATABASE_SETUP: &str = include_str!("../../../docs/database.sql");

/// A primary and its streaming standby, stopped and removed on drop.
#[derive(Debug)]
pub struct Pair {
    pub primary: Server,
    pub standby: Server,
    dir: PathBuf,
    bin: PathBuf,
    /// As root, the servers run as the `postgres` user.
    as_postgres: bool,
}

/// What went wrong starting or asking a server: the command and what it printed.
#[derive(Debug, thiserror::Error)]
#[error("{command}: {output}")]
pub struct PostgresError {
    pub command: String,
    pub output: String,
}

fn failed(command: &str, output: impl ToString) -> PostgresError {
    PostgresError { command: command.to_string(), output: output.to_string() }
}

/// The directory of Debian's PostgreSQL server programs (the newest installed).
pub fn server_bin_dir() -> Result<PathBuf, PostgresError> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| failed("ls /usr/lib/postgresql", format!("{e}: install Debian's postgresql package")))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| failed("initdb", "no PostgreSQL server installed"))
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// What PostgreSQL logs when its port was taken between [`free_port`] and its start.
const PORT_TAKEN: &str = "Address already in use";

fn free_port() -> Result<u16, PostgresError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| failed("bind", e))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| failed("bind", e))
}

impl Pair {
    /// Starts a primary and a standby that streams from it, in a new directory under the system's
    /// temporary directory, with a certificate of the local database CA.
    pub fn start(name: &str) -> Result<Pair, PostgresError> {
        Pair::start_signed_by(name, Signer::LocalCa)
    }

    /// [`Pair::start`], the certificate signed by `signer`. A free port is free when asked, not
    /// necessarily when the server binds it: the suite's own connections take ephemeral ports from
    /// the same range. A pair whose server lost its port to one is started again on other ports.
    pub fn start_signed_by(name: &str, signer: Signer) -> Result<Pair, PostgresError> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            match Pair::start_once(name, signer) {
                Err(err) if attempt < ATTEMPTS && err.output.contains(PORT_TAKEN) => attempt += 1,
                started => return started,
            }
        }
    }

    fn start_once(name: &str, signer: Signer) -> Result<Pair, PostgresError> {
        let bin = server_bin_dir()?;
        let dir = std::env::temp_dir().join(format!("dr-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| failed("mkdir", e))?;
        let pair = Pair {
            primary: Server { port: free_port()?, data: dir.join("primary") },
            standby: Server { port: free_port()?, data: dir.join("standby") },
            dir,
            bin,
            as_postgres: running_as_root(),
        };
        if pair.as_postgres {
            let chown = Command::new("chown").arg("postgres:postgres").arg(&pair.dir).output();
            check("chown", chown)?;
        }
        pair.run(
            "initdb",
            &["-D", path(&pair.primary.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        )?;
        // TLS, as RDS serves it (the product verifies it): a certificate for the endpoint, which
        // the standby's base backup copies.
        pair.issue_certificate(signer)?;
        // Replication as RDS runs it: WAL streamed to a hot standby that serves reads.
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\n\
             max_wal_senders = 4\nhot_standby = on\nfsync = off\nsynchronous_commit = on\nssl = on\n",
            pair.dir.display()
        );
        pair.append(&pair.primary.data.join("postgresql.conf"), &settings)?;
        pair.start_server(&pair.primary)?;
        pair.set_up_database()?;
        let port = pair.primary.port.to_string();
        pair.run(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", path(&pair.standby.data), "-R", "-X", "stream"],
        )?;
        pair.start_server(&pair.standby)?;
        Ok(pair)
    }

    /// A key and a certificate for `IP:127.0.0.1` in the primary's data directory, signed by
    /// `signer` (an unknown CA is made for the pair and thrown away).
    fn issue_certificate(&self, signer: Signer) -> Result<(), PostgresError> {
        let openssl = |args: &[&str]| check("openssl", Command::new("/usr/bin/openssl").args(args).output());
        let (ca_certificate, ca_key) = match signer {
            Signer::LocalCa => {
                let bundle = std::env::var(CA_BUNDLE_ENV).map_err(|_| {
                    failed(CA_BUNDLE_ENV, "not set: the local database CA is made by scripts/lambdas (scripts/lib.sh)")
                })?;
                let key = PathBuf::from(&bundle).with_extension("key");
                (PathBuf::from(bundle), key)
            }
            Signer::Unknown => {
                let (certificate, key) = (self.dir.join("unknown-ca.pem"), self.dir.join("unknown-ca.key"));
                openssl(&[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=an unknown CA",
                    "-keyout",
                    path(&key),
                    "-out",
                    path(&certificate),
                ])?;
                (certificate, key)
            }
        };
        let (key, request, certificate) =
            (self.dir.join("server.key"), self.dir.join("server.csr"), self.dir.join("server.crt"));
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            path(&key),
            "-out",
            path(&request),
        ])?;
        let extensions = self.dir.join("server.ext");
        std::fs::write(&extensions, "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n")
            .map_err(|e| failed("server.ext", e))?;
        let serial = format!(
            "0x{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos())
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&request),
            "-CA",
            path(&ca_certificate),
            "-CAkey",
            path(&ca_key),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            path(&extensions),
            "-out",
            path(&certificate),
        ])?;
        // The server reads them as its own user, the key readable by it only.
        for (from, name) in [(&key, "server.key"), (&certificate, "server.crt")] {
            let to = self.primary.data.join(name);
            std::fs::copy(from, &to).map_err(|e| failed(name, e))?;
            if self.as_postgres {
                check("chown", Command::new("chown").arg("postgres:postgres").arg(&to).output())?;
            }
            check("chmod", Command::new("chmod").arg("600").arg(&to).output())?;
        }
        Ok(())
    }

    /// Runs docs/database.sql on the primary, as its superuser (the RDS master user's part).
    fn set_up_database(&self) -> Result<(), PostgresError> {
        let script = self.dir.join("database.sql");
        std::fs::write(&script, DATABASE_SETUP).map_err(|e| failed("database.sql", e))?;
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.primary.port.to_string(), "-U", "postgres", "-d", "postgres"])
            .args(["-X", "-q", "-v", "password=local", "-f"])
            .arg(&script)
            .output();
        check("psql -f docs/database.sql", output).map(drop)
    }

    /// Starts `server`; a failure carries the server's log, which says why (its port taken:
    /// [`PORT_TAKEN`]).
    fn start_server(&self, server: &Server) -> Result<(), PostgresError> {
        let log = self.dir.join(format!("{}.log", server.port));
        let options = format!("-p {}", server.port);
        self.run("pg_ctl", &["-D", path(&server.data), "-l", path(&log), "-o", &options, "-w", "start"])
            .map(|_| ())
            .map_err(|mut err| {
                err.output.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
                err
            })
    }

    /// Runs a server program (as `postgres` when root).
    fn run(&self, program: &str, args: &[&str]) -> Result<String, PostgresError> {
        self.run_program(&self.bin.join(program), args)
    }

    /// Runs `binary` (as `postgres` when root), in the pair's directory.
    fn run_program(&self, binary: &Path, args: &[&str]) -> Result<String, PostgresError> {
        let program = binary.file_name().and_then(|n| n.to_str()).unwrap_or("program").to_string();
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(binary)
                .args(args)
                .current_dir(&self.dir)
                .output()
        } else {
            Command::new(binary).args(args).current_dir(&self.dir).output()
        };
        check(&program, output)
    }

    fn append(&self, file: &Path, text: &str) -> Result<(), PostgresError> {
        use std::io::Write;
        let mut handle =
            std::fs::OpenOptions::new().append(true).open(file).map_err(|e| failed("postgresql.conf", e))?;
        handle.write_all(text.as_bytes()).map_err(|e| failed("postgresql.conf", e))
    }

    /// Runs one SQL statement on `server` with psql; its output, unaligned, without headers.
    pub fn sql(&self, server: &Server, statement: &str) -> Result<String, PostgresError> {
        psql(server.port, statement)
    }

    /// Pauses or resumes the standby's replay of WAL (WAL still arrives; nothing new is visible).
    pub fn pause_replay(&self, paused: bool) -> Result<(), PostgresError> {
        let call = if paused { "pg_wal_replay_pause()" } else { "pg_wal_replay_resume()" };
        self.sql(&self.standby, &format!("SELECT {call}")).map(|_| ())
    }
}

/// Runs one statement on the server at `port` of loopback (psql, as the `postgres` role).
pub fn psql(port: u16, statement: &str) -> Result<String, PostgresError> {
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", statement])
        .output();
    check("psql", output).map(|out| out.trim().to_string())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn check(command: &str, output: std::io::Result<Output>) -> Result<String, PostgresError> {
    let output = output.map_err(|e| failed(command, e))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(command, String::from_utf8_lossy(&output.stderr)))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // The pair's servers, and the standbys the emulator started beside them (a replica created
        // of a backed instance, `moto/rds.py`): every data directory with a running server.
        let running: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).collect())
            .unwrap_or_default();
        for data in running.iter().filter(|data| data.join("postmaster.pid").exists()) {
            let _ = self.run("pg_ctl", &["-D", path(data), "-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
