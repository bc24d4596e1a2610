package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/protector/pkcs11"
	"github.com/hellosim/hellosim/reset/service/state"
)

// pinEnv holds the token's user PIN: never a flag, which any user of the
// machine could read in the process list.
const pinEnv = "PINRESET_PKCS11_PIN"

// backendConfig is how the service reaches the parts it shares with other
// instances: the Redis that holds their common state and the PKCS #11
// token that holds their keys. Each flag defaults to an environment
// variable, so a container or a unit file can set either.
type backendConfig struct {
	redisURL     string
	pkcs11Module string
	pkcs11Token  string
	pkcs11NewKey string
}

func registerBackendFlags(fs *flag.FlagSet) *backendConfig {
	c := new(backendConfig)
	fs.StringVar(&c.redisURL, "redis", os.Getenv("PINRESET_REDIS"),
		"Redis `URL` for the state instances share: redis://host:port/db, rediss:// (TLS), unix:///path?db=N, or a Redis Cluster as redis+cluster://host:port,host:port,…; /readyz waits for it (env PINRESET_REDIS)")
	fs.StringVar(&c.pkcs11Module, "pkcs11-module", os.Getenv("PINRESET_PKCS11_MODULE"),
		"PKCS #11 module `path`: keep the service keys in a token (env PINRESET_PKCS11_MODULE; PIN in "+pinEnv+")")
	fs.StringVar(&c.pkcs11Token, "pkcs11-token", os.Getenv("PINRESET_PKCS11_TOKEN"),
		"PKCS #11 token `label` (env PINRESET_PKCS11_TOKEN)")
	fs.StringVar(&c.pkcs11NewKey, "pkcs11-new-key", "",
		"make a new current key of this `scheme` (p256, rsa) in the token first: rotation; one is made anyway when the token has none")
	return c
}

// backends are the open backends, closed together.
type backends struct {
	store state.Store
	token *pkcs11.Token
}

func (b *backends) Close() error {
	var errs []error
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.token != nil {
		errs = append(errs, b.token.Close())
	}
	return errors.Join(errs...)
}

// open connects what c names, registers each with readiness and metrics,
// and returns the service keys: the token's, newest first, when a token is
// configured, else keys unchanged. The Redis store is opened, watched and
// closed here; the service keeps its replay records, limits and lockouts in
// it (b.store), or in process memory without -redis.
func (c *backendConfig) open(o *ops, keys []protector.Unwrapper, log io.Writer) ([]protector.Unwrapper, *backends, error) {
	b := new(backends)
	fail := func(err error) ([]protector.Unwrapper, *backends, error) {
		b.Close()
		return nil, nil, err
	}
	if c.redisURL != "" {
		s, err := state.NewRedis(c.redisURL, state.RedisOptions{Observe: o.observer("redis")})
		if err != nil {
			return fail(fmt.Errorf("-redis: %w", err))
		}
		b.store = s
		o.addCheck("redis", s.Ping)
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := s.Ping(ctx); err != nil {
			// Not fatal: the service starts unready and becomes ready when
			// Redis answers.
			fmt.Fprintln(log, "pinreset-service: redis does not answer yet; /readyz says 503 until it does")
		}
	}
	if (c.pkcs11Module == "") != (c.pkcs11Token == "") {
		return fail(errors.New("give both -pkcs11-module and -pkcs11-token, or neither"))
	}
	if c.pkcs11Module == "" {
		if c.pkcs11NewKey != "" {
			return fail(errors.New("-pkcs11-new-key needs a token"))
		}
		return keys, b, nil
	}
	tok, err := pkcs11.Open(pkcs11.Config{
		Module: c.pkcs11Module, TokenLabel: c.pkcs11Token, PIN: os.Getenv(pinEnv),
		Observe: o.observer("pkcs11"),
	})
	if err != nil {
		return fail(err)
	}
	b.token = tok
	o.addCheck("pkcs11", tok.Ping)
	have, err := tok.Keys()
	if err != nil {
		return fail(err)
	}
	if c.pkcs11NewKey != "" || len(have) == 0 {
		name := c.pkcs11NewKey
		if name == "" {
			name = "p256"
		}
		s, err := tokenScheme(name)
		if err != nil {
			return fail(err)
		}
		k, err := tok.Generate(s)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(log, "pinreset-service: made key %v in the token\n", k.Public())
	}
	tkeys, err := tok.Unwrappers()
	if err != nil {
		return fail(err)
	}
	return tkeys, b, nil
}

func tokenScheme(name string) (protector.Scheme, error) {
	switch strings.TrimSpace(name) {
	case "p256":
		return protector.HPKEP256, nil
	case "rsa":
		return protector.RSAOAEP3072, nil
	}
	return 0, fmt.Errorf("-pkcs11-new-key %q: a token key is p256 or rsa", name)
}
