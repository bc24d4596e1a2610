#!/usr/bin/env bash
# Cross-checks package tpm against tpm2-tools on a running swtpm: a blob our
# library sealed, and a key it created, are ordinary TPM objects that
# tpm2-tools loads under the same storage root key, unseals and signs with.
#
# Usage: crosscheck.sh [PORT]   (swtpm already running on 127.0.0.1:PORT,
#                               e.g. from `swtpm.sh start PORT`; default 2321)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-${SWTPM_PORT:-2321}}
tcti="swtpm:host=127.0.0.1,port=$port"
work=$(mktemp -d)
# swtpm has no resource manager and only three object slots: every
# tpm2-tools command that loads a saved context leaves a transient object
# behind, so flush after each one, and before leaving.
flush() {
  tpm2_flushcontext --tcti "$tcti" -t >/dev/null 2>&1 || true
  tpm2_flushcontext --tcti "$tcti" -l >/dev/null 2>&1 || true
}
trap 'flush; rm -rf "$work"' EXIT

# A secret and an authValue with a zero byte inside (and one trailing, which
# the TPM ignores): the case go-tpm v0.9.8's own HMAC session gets wrong.
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
auth="6869006c6c6f00"

go run ./tpm/internal/crosscheck -tpm "tcp://127.0.0.1:$port" -out "$work" -secret "$secret" -auth "$auth"

cd "$work"
# The TCG reference ECC P-256 SRK template, as package tpm uses it. The
# unique field (X and Y, 32 zero bytes each) goes to tpm2-tools as the
# in-memory TPMS_ECC_POINT: a little-endian size and a 128-byte buffer each.
{
  printf '\x20\x00'; head -c 128 /dev/zero
  printf '\x20\x00'; head -c 128 /dev/zero
} >unique.bin
tpm2_createprimary --tcti "$tcti" -C o -g sha256 -G ecc256:aes128cfb \
  -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt' \
  -u unique.bin -c srk.ctx >/dev/null
flush
tpm2_readpublic --tcti "$tcti" -c srk.ctx -n srk.tools.name >/dev/null
flush
tools_name=$(od -An -tx1 srk.tools.name | tr -d ' \n')
if [[ $tools_name != "$(tr -d '\n' <srk.name)" ]]; then
  echo "crosscheck: SRK Name differs: tpm2-tools $tools_name, ours $(cat srk.name)" >&2
  exit 1
fi
echo "crosscheck: SRK Name matches ($tools_name)"

tpm2_load --tcti "$tcti" -C srk.ctx -u seal.pub -r seal.priv -c seal.ctx >/dev/null
flush
tpm2_unseal --tcti "$tcti" -c seal.ctx -p "hex:$auth" -o unsealed.bin
flush
got=$(od -An -tx1 unsealed.bin | tr -d ' \n')
if [[ $got != "$secret" ]]; then
  echo "crosscheck: tpm2_unseal returned other bytes than were sealed" >&2
  exit 1
fi
echo "crosscheck: tpm2-tools loaded and unsealed a blob sealed by package tpm"

# A sealed object is DA-protected: a wrong authValue must fail.
tpm2_load --tcti "$tcti" -C srk.ctx -u seal.pub -r seal.priv -c seal.ctx >/dev/null
flush
if tpm2_unseal --tcti "$tcti" -c seal.ctx -p "hex:00ff" -o /dev/null 2>/dev/null; then
  echo "crosscheck: a wrong authValue unsealed the blob" >&2
  exit 1
fi
flush
tpm2_dictionarylockout --tcti "$tcti" -c >/dev/null

tpm2_load --tcti "$tcti" -C srk.ctx -u key.pub -r key.priv -c key.ctx >/dev/null
flush
echo "hello from hellosim" >msg.txt
tpm2_sign --tcti "$tcti" -c key.ctx -p "hex:$auth" -g sha256 -s rsassa -o msg.sig msg.txt
flush
tpm2_verifysignature --tcti "$tcti" -c key.ctx -g sha256 -m msg.txt -s msg.sig >/dev/null
flush
echo "crosscheck: tpm2-tools loaded a key created by package tpm, signed and verified"
flush
echo "crosscheck passed"
