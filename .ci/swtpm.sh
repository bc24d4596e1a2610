#!/usr/bin/env bash
# Runs the tpm test suite against swtpm, a software TPM speaking the TCG
# reference simulator's TCP protocol.
#
# Usage:
#   swtpm.sh start [PORT]   manufacture a fresh swtpm state (swtpm_setup: EK
#                           and platform certificates from swtpm's local CA,
#                           the CA's intermediate written to NV 0x01C00100 as a
#                           manufacturer would), start swtpm on 127.0.0.1:PORT
#                           (commands) and PORT+1 (control); prints the
#                           HELLOSIM_TPM and HELLOSIM_TPM_ROOTS values to use
#   swtpm.sh stop [PORT]    orderly TPM2_Shutdown, then stop swtpm and remove its state
#   swtpm.sh suite [PORT]   start, run the tests with
#                           HELLOSIM_TPM=tcp://127.0.0.1:PORT (one package at a
#                           time: swtpm serves one client), the tpm2-tools
#                           cross-check, then stop (also on failure)
# PORT defaults to $SWTPM_PORT or 2321; the suite tests the packages in
# $SWTPM_PKGS (default ./...).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-}
port=${2:-${SWTPM_PORT:-2321}}
ctrl=$((port + 1))
dir="${TMPDIR:-/tmp}/hellosim-swtpm-$port"

tcti() { echo "swtpm:host=127.0.0.1,port=$port"; }

start() {
  command -v swtpm >/dev/null || { echo "swtpm is not installed (Debian: apt-get install swtpm swtpm-tools)" >&2; exit 1; }
  if [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "swtpm already running on port $port (pid $(cat "$dir/pid")); stop it first" >&2
    exit 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir/state" "$dir/ca"
  manufacture
  swtpm socket --tpm2 \
    --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$ctrl,bindaddr=127.0.0.1" \
    --flags not-need-init,startup-clear \
    --tpmstate "dir=$dir/state" \
    --log "file=$dir/swtpm.log,level=1" \
    --pid "file=$dir/pid" \
    --daemon
  # Wait until both ports accept connections.
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$ctrl") 2>/dev/null; then
      write_chain
      echo "HELLOSIM_TPM=tcp://127.0.0.1:$port"
      echo "HELLOSIM_TPM_ROOTS=$dir/ca/swtpm-localca-rootca-cert.pem"
      return 0
    fi
    sleep 0.05
  done
  echo "swtpm did not start; log:" >&2
  cat "$dir/swtpm.log" >&2 || true
  exit 1
}

# manufacture makes the TPM state as a vendor would: an RSA-2048 and an ECC
# P-384 EK with certificates (NV 0x01C00002, 0x01C00016) and a platform
# certificate, signed by swtpm's local CA kept in $dir/ca (a root and an
# intermediate that signs the certificates).
manufacture() {
  command -v swtpm_setup >/dev/null || { echo "swtpm_setup is not installed (Debian: apt-get install swtpm-tools)" >&2; exit 1; }
  printf '%s\n' "statedir = $dir/ca" "signingkey = $dir/ca/signkey.pem" \
    "issuercert = $dir/ca/issuercert.pem" "certserial = $dir/ca/certserial" >"$dir/localca.conf"
  printf '%s\n' "create_certs_tool = /usr/bin/swtpm_localca" \
    "create_certs_tool_config = $dir/localca.conf" \
    "create_certs_tool_options = /etc/swtpm-localca.options" \
    "active_pcr_banks = sha256" >"$dir/setup.conf"
  swtpm_setup --tpm2 --tpmstate "$dir/state" --create-ek-cert --create-platform-cert \
    --config "$dir/setup.conf" >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; exit 1; }
}

# write_chain stores the local CA's intermediate certificate in the first EK
# certificate chain index (TCG EK Credential Profile §2.2.1.5), where a
# manufacturer puts the certificates between the EK certificate and its root.
write_chain() {
  local der="$dir/ca/issuercert.der" size
  openssl x509 -in "$dir/ca/issuercert.pem" -outform der -out "$der"
  size=$(stat -c %s "$der")
  tpm2_nvdefine 0x01C00100 -C p -s "$size" -a "ppwrite|ppread|ownerread|authread|no_da|platformcreate" --tcti "$(tcti)" >/dev/null
  tpm2_nvwrite 0x01C00100 -C p -i "$der" --tcti "$(tcti)"
}

stop() {
  [[ -f $dir/pid ]] || { echo "no swtpm on port $port"; return 0; }
  local pid
  pid=$(cat "$dir/pid")
  # An orderly TPM2_Shutdown(CLEAR) first: stopping swtpm without it counts as
  # an attack on its dictionary-attack counter.
  if command -v tpm2_shutdown >/dev/null; then
    tpm2_shutdown --tcti "$(tcti)" >/dev/null 2>&1 || echo "warning: TPM2_Shutdown failed" >&2
  fi
  # Then ask swtpm to exit through its control channel, and make sure it did.
  swtpm_ioctl --tcp "127.0.0.1:$ctrl" -s >/dev/null 2>&1 || true
  for _ in $(seq 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  echo "swtpm on port $port stopped"
}

suite() {
  start
  trap stop EXIT
  export HELLOSIM_TPM="tcp://127.0.0.1:$port"
  export HELLOSIM_TPM_ROOTS="$dir/ca/swtpm-localca-rootca-cert.pem"
  local pkgs=${SWTPM_PKGS:-./...}
  echo "go test $pkgs with HELLOSIM_TPM=$HELLOSIM_TPM"
  # shellcheck disable=SC2086 # a list of package patterns
  local rc=0
  go test -p 1 -count=1 -timeout "${SWTPM_TEST_TIMEOUT:-10m}" $pkgs || rc=$?
  # The cross-check runs even when a test failed, so one run reports both.
  bash .ci/crosscheck.sh "$port" || rc=$?
  return "$rc"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  suite) suite ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
