#!/usr/bin/env bash
# Runs every check medic's CI runs, on a fresh Debian machine: installs what the tests need
# (Debian packages, cargo-nextest), then formatting, lints, and all tests.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -E 'test(crash)'   # extra arguments go to `cargo nextest run`
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests run against (never faked): Prometheus 2.42 (remote write, rules, alerts
# sent to medic), Alertmanager 0.25 and amtool (side by side, API v2 client), PostgreSQL and
# Redis (heal scenarios).
packages=()
command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || packages+=(prometheus-alertmanager)
command -v amtool >/dev/null 2>&1 || packages+=(prometheus-alertmanager)
# The blackbox exporter, probing URLs through medic's scrape relabelling.
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || packages+=(prometheus-blackbox-exporter)
# Remote write out is tested against a real VictoriaMetrics, killed for a minute.
command -v victoria-metrics >/dev/null 2>&1 || packages+=(victoria-metrics)
# The heal scenarios break a real PostgreSQL and a real Redis.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || packages+=(postgresql)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || packages+=(redis-tools)
# Syslog: Debian's rsyslog forwards to medic (logger from bsdutils sends to it).
[ -x /usr/sbin/rsyslogd ] || packages+=(rsyslog)
command -v logger >/dev/null 2>&1 || packages+=(bsdutils)
# The systemd units are checked with systemd-analyze verify.
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
# TLS tests make their certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# Reports and pages are opened in Debian's headless Chromium, driven by playwright-core (npm).
[ -x /usr/bin/chromium ] || packages+=(chromium)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if ((${#packages[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> installing Debian packages: ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# A real SMTP server for the e-mail receiver test.
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "==> installing Python packages: aiosmtpd"
  python3 -m pip install --quiet aiosmtpd
fi
# Real log clients: python-logging-loki (Loki push) and the OpenTelemetry SDK (OTLP/HTTP).
py_packages=()
python3 -c 'import logging_loki' >/dev/null 2>&1 || py_packages+=(python-logging-loki)
python3 -c 'import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1 ||
  py_packages+=(opentelemetry-sdk opentelemetry-exporter-otlp-proto-http)
# The Kubernetes manifests are checked against the API's schemas offline (no cluster runs here).
command -v kubernetes-validate >/dev/null 2>&1 || py_packages+=(kubernetes-validate)
if ((${#py_packages[@]})); then
  echo "==> installing Python packages: ${py_packages[*]}"
  python3 -m pip install --quiet "${py_packages[@]}"
fi
if [ ! -d crates/cli/tests/browser/node_modules/playwright-core ] ||
  [ ! -d crates/cli/tests/browser/node_modules/axe-core ]; then
  echo "==> installing npm packages for the browser tests (playwright-core, axe-core)"
  npm ci --prefix crates/cli/tests/browser --no-audit --no-fund --silent
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo nextest run"
cargo nextest run --workspace --locked --no-fail-fast "$@"
