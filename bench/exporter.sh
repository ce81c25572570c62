#!/usr/bin/env bash
# The exporter's cost per scrape, against Pacemaker's real crm_mon reading
# a saved CIB (CIB_file: no cluster needed, the same parse): wall time per
# scrape (hyperfine over curl, median), the exporter's CPU per scrape with
# its crm_mon child's (from /proc, N sequential scrapes), processes per
# scrape, and the daemon's memory. Numbers, not pass/fail.
#   bench/exporter.sh                   # the shipped (musl, release) build
#   MAILHA_BIN=target/debug/mailha N=50 bench/exporter.sh
#   TLS=1 bench/exporter.sh             # over HTTPS (a certificate made here)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
N=${N:-200}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp tests/fixtures/status/cib-healthy.xml "$work/cib.xml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{ cat examples/postfix.toml; printf '\n[exporter]\nlisten = "127.0.0.1:%s"\n' "$port"; } >"$work/mailha.toml"
scheme=http
curl_tls=()
if [ "${TLS:-0}" = 1 ]; then
    # A self-signed P-256 certificate for 127.0.0.1 (what a CA would sign).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    chmod 600 "$work/key.pem"
    printf 'tls_cert_file = "%s"\ntls_key_file = "%s"\n' "$work/cert.pem" "$work/key.pem" >>"$work/mailha.toml"
    scheme=https
    curl_tls=(--cacert "$work/cert.pem")
fi
mkdir -p "$work/spool/pending" "$work/spool/outbox"
CIB_file=$work/cib.xml "$bin" --config "$work/mailha.toml" exporter --spool "$work/spool" \
    --lease-socket mailha-bench-no-keeper --cib-file "$work/cib.xml" 2>"$work/log" &
pid=$!
url=$scheme://127.0.0.1:$port/metrics
for _ in $(seq 100); do curl -sf "${curl_tls[@]}" -o /dev/null "$url" && break; sleep 0.1; done
first=$(curl -sf "${curl_tls[@]}" "$url" || true)
grep -q '^mailha_scrape_ok 1$' <<<"$first" || { echo "exporter not serving: $(cat "$work/log")" >&2; exit 1; }

# utime+stime of the exporter and of its reaped children (crm_mon), ticks.
cpu() { awk '{print $14+$15+$16+$17}' "/proc/$pid/stat"; }
own() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(cpu)
own_before=$(own)
forks_before=$(awk '/^processes/ {print $2}' /proc/stat)
start=$(date +%s.%N)
for _ in $(seq "$N"); do curl -sf "${curl_tls[@]}" -o /dev/null "$url"; done
end=$(date +%s.%N)
forks=$(( $(awk '/^processes/ {print $2}' /proc/stat) - forks_before ))
after=$(cpu)
own_after=$(own)
echo "scrapes: $N sequential (curl, $scheme), crm_mon on a saved CIB ($(crm_mon --version | head -1))"
awk -v s="$start" -v e="$end" -v n="$N" 'BEGIN {printf "wall per scrape (curl included): %.2f ms\n", (e-s)*1000/n}'
awk -v a="$after" -v b="$before" -v n="$N" -v hz="$hz" 'BEGIN {printf "CPU per scrape, exporter + crm_mon: %.2f ms\n", (a-b)*1000/hz/n}'
awk -v a="$own_after" -v b="$own_before" -v n="$N" -v hz="$hz" 'BEGIN {printf "CPU per scrape, the exporter alone (parse, render, HTTP): %.2f ms\n", (a-b)*1000/hz/n}'
echo "clone()s on the machine per scrape (curl, crm_mon, exec::run's two pipe threads; other work adds): $(awk -v f="$forks" -v n="$N" 'BEGIN {printf "%.2f", f/n}')"
last=$(curl -sf "${curl_tls[@]}" "$url")
awk '/^mailha_scrape_duration_seconds / {printf "crm_mon + parse in the exporter (last scrape): %.2f ms\n", $2*1000}' <<<"$last"
grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status"
hyperfine -N --warmup 5 --runs "$N" "curl -sf ${curl_tls[*]} -o /dev/null $url"
# What crm_mon alone costs on the same CIB, for comparison.
CIB_file=$work/cib.xml hyperfine -N --warmup 5 --runs "$N" "crm_mon --one-shot --output-as=xml --include=all"
