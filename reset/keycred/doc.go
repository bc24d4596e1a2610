// Package keycred implements the wire formats in which Active Directory and
// Microsoft Entra ID hold a Windows Hello for Business key, so that what the
// simulated directory stores is byte for byte what tools written for the real
// directories (DSInternals, pywhisker, roadtx, AADInternals) read and write.
//
// Three formats, each strict in both directions:
//
//   - BCRYPT public key blobs (Windows CNG, bcrypt.h): BCRYPT_RSAPUBLIC_BLOB
//     ("RSA1"), the form in which Windows sends a Hello login key to the
//     device registration service as "kngc" and stores it as KeyMaterial;
//     and BCRYPT_ECCPUBLIC_BLOB with the P-256 ECDSA magic ("ECS1"). Windows
//     Hello for Business login keys are RSA-2048; Entra's registration
//     service is not known to take an ECS1 blob as "kngc", so ECS1 key
//     material is this module's extension for its optional P-256 login keys.
//   - KEYCREDENTIALLINK_BLOB (MS-ADTS 2.2.20), the binary value of the
//     msDS-KeyCredentialLink attribute: a version and entries in ascending
//     identifier order. KeyCredential is one decoded value; Parse checks
//     every length, the order, KeyID = SHA-256(KeyMaterial) and KeyHash =
//     SHA-256 of the entries after it, and refuses trailing bytes.
//   - DN-Binary (the attribute's LDAP syntax, Object(DN-Binary)):
//     "B:<number of hex digits>:<hex>:<DN of the owner>".
//
// # Timestamps
//
// MS-ADTS 2.2.20.6 gives KeyApproximateLastLogonTimeStamp and KeyCreationTime
// as FILETIME (100 ns intervals since 1601-01-01 UTC). That holds for values
// whose KeySource is AD. Values whose KeySource is Azure AD — the ones Entra
// holds and writes back to AD for hybrid key trust — carry the .NET
// DateTime binary form instead (DateTime.ToBinary: 100 ns ticks since
// 0001-01-01 with the DateTimeKind in the top two bits); DSInternals and
// other parsers of real directory data decode them so. This package follows
// the data: the encoding of both timestamps is chosen by KeySource, on
// writing and on reading, and KeyCredential holds them as time.Time.
//
// # Identifiers
//
// The KeyID entry is SHA-256 of the key material. Its base64 (standard
// alphabet, padded) is the key's identifier everywhere the directory shows
// it: DSInternals' "Id", the "kid" the registration service answers, and the
// "kid" in the header of the assertion Windows signs with the Hello key at
// sign-in. Identifier computes it.
//
// The package imports nothing else of this module: it is the leaf the
// simulated directory and its clients share.
package keycred
