#!/usr/bin/env bash
# Makes a SoftHSM2 token for the PKCS #11 tests in a temporary SOFTHSM2_CONF,
# and removes it again.
#
# Usage:
#   softhsm.sh init    make a token labelled hellosim-ci with a random user
#                      PIN; prints export lines for SOFTHSM2_CONF,
#                      HELLOSIM_PKCS11_MODULE, HELLOSIM_PKCS11_TOKEN and
#                      HELLOSIM_PKCS11_PIN, to eval
#   softhsm.sh clean   remove the token directory named by SOFTHSM2_CONF
set -euo pipefail

module=${HELLOSIM_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

init() {
  command -v softhsm2-util >/dev/null || { echo "softhsm2-util is not installed (Debian: apt-get install softhsm2)" >&2; exit 1; }
  [[ -f $module ]] || { echo "no PKCS #11 module at $module" >&2; exit 1; }
  local dir pin so
  dir=$(mktemp -d "${TMPDIR:-/tmp}/hellosim-softhsm-XXXXXX")
  mkdir -p "$dir/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" >"$dir/softhsm2.conf"
  pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  so=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label hellosim-ci \
    --pin "$pin" --so-pin "$so" >&2
  echo "export SOFTHSM2_CONF=$dir/softhsm2.conf HELLOSIM_PKCS11_MODULE=$module HELLOSIM_PKCS11_TOKEN=hellosim-ci HELLOSIM_PKCS11_PIN=$pin"
}

clean() {
  local conf=${SOFTHSM2_CONF:-}
  [[ -n $conf && $conf == */hellosim-softhsm-*/softhsm2.conf ]] || return 0
  rm -rf "$(dirname "$conf")"
}

case ${1:-} in
  init) init ;;
  clean) clean ;;
  *) echo "usage: $0 init|clean" >&2; exit 2 ;;
esac
