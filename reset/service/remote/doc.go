// Package remote connects the PIN reset service to a directory in another
// process, as the Microsoft PIN reset service trusts Entra ID: it finds the
// directory's token-signing keys by OpenID Connect discovery (Keys), caches
// them, and fetches them again only when a token names a key it has not
// seen — at most once per Config.MinRefetch, so tokens with made-up key
// IDs cannot make it fetch on every request. While the directory cannot be
// reached and no cached key verifies a token, it fails closed: the
// Verifier's error matches service.ErrUnavailable, the service answers 503
// (and audits it), and nothing is unwrapped. The request-time questions (tenant, user, device) go to the
// directory's lookup API through package lookup.
//
//	keys, err := remote.NewKeys(remote.Config{Issuer: "https://login.example/common/v2.0", HTTPClient: hc})
//	verifier, err := remote.NewVerifier(keys)
//	dir, err := lookup.NewClient(lookup.ClientConfig{BaseURL: "https://login.example", ...})
//	svc, err := service.New(service.Config{Verifier: verifier, Directory: dir, Keys: serviceKeys})
//	http.Handle("/v1/", svc)
package remote
