package examplecmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// HTTPServer is a server for handler with the time and size limits every
// example server keeps, so that a slow or greedy client cannot hold it.
func HTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Stop is how a server stops.
type Stop struct {
	Name   string    // "NAME: shutting down" is written to Log
	Log    io.Writer // standard error
	Drain  func()    // when not nil, called before the shutdown (e.g. /readyz turns 503)
	Wake   <-chan os.Signal
	OnWake func() // called for each signal on Wake while serving
}

// ServeUntilSignal runs serve (srv's Serve or ServeTLS on its listener)
// until it fails or the process gets SIGINT or SIGTERM. Then it shuts srv
// down as s says, letting the requests in flight finish for up to ten
// seconds.
func ServeUntilSignal(srv *http.Server, serve func() error, s Stop) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-s.Wake:
			s.OnWake()
		case <-ctx.Done():
			done = true
		}
	}
	fmt.Fprintln(s.Log, s.Name+": shutting down")
	if s.Drain != nil {
		s.Drain()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
