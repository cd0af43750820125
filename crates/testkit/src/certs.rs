//! Test certificates made with the `openssl` command (Debian package `openssl`): two CAs and
//! leaves signed by them, EC P-256, valid for two days.

use std::path::Path;
use std::process::Command;

use crate::require_binary;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A leaf `name.crt`/`name.key` signed by `ca`, with the extensions `ext`.
fn leaf(dir: &Path, name: &str, ca: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let (key, csr, crt, cnf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    let mut a = vec!["req"];
    a.extend(EC);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=medic-test"]);
    openssl(dir, &a);
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &cnf,
        ],
    );
}

/// Writes into `dir`: `ca` and `other-ca` (`.crt`, `.key`); `server` for 127.0.0.1 and
/// localhost, `client` (SAN `prometheus`, client auth) and `elsewhere` (a server certificate
/// for `elsewhere.example` only), all signed by `ca`; `stranger`, a client certificate signed
/// by `other-ca`.
pub fn make_certs(dir: &Path) {
    require_binary("/usr/bin/openssl", "openssl");
    for ca in ["ca", "other-ca"] {
        let mut a = vec!["req", "-x509"];
        a.extend(EC);
        let (key, crt, subj) = (
            format!("{ca}.key"),
            format!("{ca}.crt"),
            format!("/CN=medic test {ca}"),
        );
        a.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
        openssl(dir, &a);
    }
    let server = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    leaf(
        dir,
        "server",
        "ca",
        &format!("subjectAltName=IP:127.0.0.1,DNS:localhost\n{server}"),
    );
    leaf(
        dir,
        "elsewhere",
        "ca",
        &format!("subjectAltName=DNS:elsewhere.example\n{server}"),
    );
    let client = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    leaf(
        dir,
        "client",
        "ca",
        &format!("subjectAltName=DNS:prometheus\n{client}"),
    );
    leaf(
        dir,
        "stranger",
        "other-ca",
        &format!("subjectAltName=DNS:prometheus\n{client}"),
    );
}
