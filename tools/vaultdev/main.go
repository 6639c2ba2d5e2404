// Command vaultdev runs a throw-away Vault server for integration tests.
//
// It builds a real Vault core from Vault's Go packages: in-memory storage,
// initialised with a single Shamir key share and unsealed at once, with the
// kv secrets engine and the approle and kubernetes auth methods available.
// It serves Vault's HTTP API over plain HTTP on a loopback address, mounts
// KV v2 at secret/ (as `vault server -dev` does) and creates a root token
// with a fixed ID. Everything is lost when it stops.
//
// Once the server is ready, vaultdev prints two lines on standard output:
//
//	VAULT_ADDR=http://127.0.0.1:NNNNN
//	VAULT_TOKEN=<root token>
//
// It runs until it receives SIGINT or SIGTERM. Errors go to standard error
// and end the program with exit status 1.
//
// Usage:
//
//	vaultdev [-listen 127.0.0.1:8200] [-root-token root] [-log-level warn]
//
// A -listen port of 0 picks a free port. The host must be a loopback
// address or "localhost": this server has a well-known root token and must
// never be reachable from another machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	kubeauth "github.com/hashicorp/vault-plugin-auth-kubernetes"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/helper/namespace"
	"github.com/hashicorp/vault/helper/testhelpers/corehelpers"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// config holds the command-line flags.
type config struct {
	listen    string
	rootToken string
	logLevel  hclog.Level
}

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the flag package has printed the usage
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vaultdev: %v\n", err)
		os.Exit(1)
	}
}

// run starts the server, announces it and serves until a signal arrives.
func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	// Catch the signals before announcing readiness, so that a caller that
	// stops the server right after reading the address gets a clean stop.
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := listenLoopback(cfg.listen)
	if err != nil {
		return err
	}
	defer ln.Close()

	ctx := namespace.RootContext(context.Background())
	logger := hclog.New(&hclog.LoggerOptions{Name: "vaultdev", Level: cfg.logLevel, Output: os.Stderr})

	core, err := newUnsealedCore(ctx, logger, cfg.rootToken)
	if err != nil {
		return err
	}
	defer func() {
		if err := core.Shutdown(); err != nil {
			logger.Warn("core shutdown", "error", err)
		}
	}()

	srv := &http.Server{
		Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{
			Core:           core,
			ListenerConfig: &configutil.Listener{Type: "tcp", Address: ln.Addr().String()},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	addr := "http://" + ln.Addr().String()
	if err := mountKVv2(addr, cfg.rootToken); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "VAULT_ADDR=%s\nVAULT_TOKEN=%s\n", addr, cfg.rootToken)

	select {
	case <-sigCtx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}

	// Shutdown waits for connections to go idle, and counts one that was
	// dialled but never sent a request as idle only after 5 s. A dev server
	// has nothing to drain, so what is still open after a short wait is
	// closed rather than reported as a failure.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); errors.Is(err, context.DeadlineExceeded) {
		logger.Debug("closing connections still open at shutdown")
		return srv.Close()
	} else if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// parseFlags reads the command line.
func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("vaultdev", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8200", "loopback `address` to serve HTTP on; port 0 picks a free port")
	rootToken := fs.String("root-token", "root", "`ID` of the root token to create")
	logLevel := fs.String("log-level", "warn", "Vault log `level` on stderr: trace, debug, info, warn, error or off")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *rootToken == "" {
		return config{}, errors.New("-root-token must not be empty")
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		return config{}, fmt.Errorf("unknown -log-level %q", *logLevel)
	}
	return config{listen: *listen, rootToken: *rootToken, logLevel: level}, nil
}

// listenLoopback opens a TCP listener on addr after checking that its host
// is a loopback address or "localhost".
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-listen %q: host must be a loopback address or localhost", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// newUnsealedCore creates an in-memory Vault core, initialises it with one
// Shamir key share, unseals it and replaces the generated root token with
// one whose ID is rootToken.
func newUnsealedCore(ctx context.Context, logger hclog.Logger, rootToken string) (*vault.Core, error) {
	storage, err := inmem.NewInmem(nil, logger.Named("storage"))
	if err != nil {
		return nil, fmt.Errorf("in-memory storage: %w", err)
	}
	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:        storage,
		Logger:          logger,
		DisableMlock:    true,
		BuiltinRegistry: corehelpers.NewMockBuiltinRegistry(),
		LogicalBackends: map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{
			"approle":    approle.Factory,
			"kubernetes": kubeauth.Factory,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("new core: %w", err)
	}

	res, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig:    &vault.SealConfig{Type: "shamir", SecretShares: 1, SecretThreshold: 1},
		LegacyShamirSeal: true,
	})
	if err != nil {
		return nil, shutdownAfter(core, fmt.Errorf("initialize: %w", err))
	}
	if unsealed, err := core.Unseal(res.SecretShares[0]); err != nil || !unsealed {
		return nil, shutdownAfter(core, fmt.Errorf("unseal: unsealed=%t, err=%w", unsealed, err))
	}
	if err := replaceRootToken(ctx, core, res.RootToken, rootToken); err != nil {
		return nil, shutdownAfter(core, err)
	}
	return core, nil
}

// replaceRootToken creates a root token with the given ID, then revokes the
// generated one, as `vault server -dev` does.
func replaceRootToken(ctx context.Context, core *vault.Core, initToken, id string) error {
	req := &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: initToken,
		Path:        "auth/token/create",
		Data: map[string]any{
			"id":                id,
			"policies":          []string{"root"},
			"no_parent":         true,
			"no_default_policy": true,
		},
	}
	resp, err := core.HandleRequest(ctx, req)
	if err == nil && (resp == nil || resp.Auth == nil) {
		err = errors.New("response holds no token")
	}
	if err != nil {
		return fmt.Errorf("create root token: %w", err)
	}

	revoke := &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: initToken,
		Path:        "auth/token/revoke-self",
	}
	if _, err := core.HandleRequest(ctx, revoke); err != nil {
		return fmt.Errorf("revoke initial root token: %w", err)
	}
	return nil
}

// shutdownAfter shuts the core down after a failed start and returns err.
func shutdownAfter(core *vault.Core, err error) error {
	if serr := core.Shutdown(); serr != nil {
		return errors.Join(err, fmt.Errorf("shutdown: %w", serr))
	}
	return err
}

// mountKVv2 mounts KV version 2 at secret/ through the HTTP API, which also
// proves that the server answers before vaultdev reports that it is ready.
func mountKVv2(addr, token string) error {
	client, err := api.NewClient(&api.Config{Address: addr, Timeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("api client: %w", err)
	}
	client.SetToken(token)
	client.ClearNamespace()
	err = client.Sys().Mount("secret", &api.MountInput{
		Type:        "kv",
		Description: "key/value secret storage",
		Options:     map[string]string{"version": "2"},
	})
	if err != nil {
		return fmt.Errorf("mount KV v2 at secret/: %w", err)
	}
	return nil
}
