#!/usr/bin/env bash
# Builds the golden vectors in this directory from the specifications alone
# (bcrypt.h for the key blobs, MS-ADTS 2.2.20 for KEYCREDENTIALLINK_BLOB,
# the Object(DN-Binary) syntax), with openssl, sha256sum and shell
# arithmetic: nothing here runs the package's own encoder. The two public
# keys were made once with openssl and their private halves thrown away.
# Usage: make-vectors.sh   (rewrites *.hex and *.txt next to it)
set -euo pipefail
cd "$(dirname "$0")"

le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
le16() { printf '%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)); }
le64() { local v=$1 out= i; for i in 0 1 2 3 4 5 6 7; do out+=$(printf '%02x' $((v >> (8 * i) & 255))); done; echo "$out"; }
sha() { xxd -r -p | sha256sum | cut -c1-64; }
# entry ID HEX: Length (uint16 LE) · Identifier · Value
entry() { echo "$(le16 $((${#2} / 2)))$(printf '%02x' "$1")$2"; }
# guid STRING: Windows layout, Data1..Data3 little-endian (MS-DTYP 2.3.4.2)
guid() { local g=${1//-/}; echo "${g:6:2}${g:4:2}${g:2:2}${g:0:2}${g:10:2}${g:8:2}${g:14:2}${g:12:2}${g:16:16}"; }

# BCRYPT_RSAPUBLIC_BLOB: Magic "RSA1", BitLength, cbPublicExp, cbModulus,
# cbPrime1 = cbPrime2 = 0, then exponent and modulus big-endian.
mod=$(openssl rsa -pubin -in rsa2048.pub.pem -noout -modulus | cut -d= -f2 | tr A-F a-f)
rsa1="52534131$(le32 2048)$(le32 3)$(le32 $((${#mod} / 2)))$(le32 0)$(le32 0)010001${mod}"
# BCRYPT_ECCPUBLIC_BLOB: Magic "ECS1", cbKey = 32, X, Y big-endian.
xy=$(openssl ec -pubin -in p256.pub.pem -outform DER 2>/dev/null | xxd -p | tr -d '\n' | tail -c 128)
ecs1="45435331$(le32 32)${xy}"

# Times. FILETIME: 100 ns since 1601-01-01 (MS-DTYP 2.3.3).
# .NET DateTime.ToBinary for a UTC DateTime: ticks since 0001-01-01 | 1<<62.
created=1796306400                 # 2026-12-03T14:00:00Z
logon_s=1796306730 logon_100ns=1234567 # 2026-12-03T14:05:30.1234567Z
ft() { echo $(($1 * 10000000 + $2 + 116444736000000000)); }
dn() { echo $((($1 * 10000000 + $2 + 621355968000000000) | (1 << 62))); }

# blob SOURCE DEVICE FLAGS CREATED LOGON: a KEYCREDENTIALLINK_BLOB, Version
# 0x00000200, entries in increasing identifier order.
blob() {
	local material=$1 source=$2 device=$3 flags=$4 created=$5 logon=$6
	local tail
	tail=$(entry 3 "$material")$(entry 4 01)$(entry 5 "$source")$(entry 6 "$(guid "$device")")
	tail+=$(entry 7 "01$flags")$(entry 8 "$logon")$(entry 9 "$created")
	echo "$(le32 512)$(entry 1 "$(echo "$material" | sha)")$(entry 2 "$(echo "$tail" | sha)")${tail}"
}

emit() { # emit FILE COMMENT HEX
	{ echo "# $2"; echo "$3" | fold -w 64; } >"$1"
}

emit rsa1.hex "BCRYPT_RSAPUBLIC_BLOB of rsa2048.pub.pem" "$rsa1"
emit ecs1.hex "BCRYPT_ECCPUBLIC_BLOB (ECDSA P-256) of p256.pub.pem" "$ecs1"
ad=$(blob "$rsa1" 00 cfe9a872-13ff-4751-a777-aec88c30a762 00 \
	"$(le64 "$(ft $created 0)")" "$(le64 "$(ft $logon_s $logon_100ns)")")
emit link-ad.hex "NGC key, KeySource AD, device cfe9a872-13ff-4751-a777-aec88c30a762, flags none, created 2026-12-03T14:00:00Z, last logon 2026-12-03T14:05:30.1234567Z (FILETIME)" "$ad"
aad=$(blob "$rsa1" 01 0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9 01 \
	"$(le64 "$(dn $created 0)")" "$(le64 "$(dn $logon_s $logon_100ns)")")
emit link-azuread.hex "NGC key, KeySource Azure AD, device 0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9, flags Attestation, same times (.NET DateTime binary, UTC)" "$aad"
ecc=$(blob "$ecs1" 01 0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9 02 \
	"$(le64 "$(dn $created 0)")" "$(le64 "$(dn $created 0)")")
emit link-ecs1.hex "NGC key (P-256, ECS1), KeySource Azure AD, device 0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9, flags MFANotUsed, created = last logon = 2026-12-03T14:00:00Z" "$ecc"
# DN-Binary: B:<number of hex digits>:<hex, upper case>:<DN>
echo "B:${#ad}:$(echo "$ad" | tr a-f A-F):CN=Jane Doe,OU=Users,DC=contoso,DC=com" >link-ad.dnbinary.txt
echo "$(echo "$rsa1" | sha)" >rsa1.sha256
