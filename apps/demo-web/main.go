// Command demo-web is the course's small web app: probes, a version page for canaries, and a
// CPU burner for autoscaling, with readiness that labs can break on purpose.
//
// It uses only the standard library so the image builds offline and stays tiny.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=v1"; env VERSION overrides it.
var version = "dev"

const (
	defaultBurn  = 100 * time.Millisecond
	maxBurn      = 5000 * time.Millisecond
	shutdownWait = 10 * time.Second
)

// config is everything the environment decides.
type config struct {
	Port       string
	Version    string
	Hostname   string
	ReadyAfter time.Duration
}

// loadConfig reads the environment through getenv (os.Getenv, or a map in tests).
func loadConfig(getenv func(string) string) (config, error) {
	c := config{Port: "8080", Version: version}
	if p := getenv("PORT"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("PORT=%q is not a port number", p)
		}
		c.Port = p
	}
	if v := getenv("VERSION"); v != "" {
		c.Version = v
	}
	if s := getenv("READY_AFTER_SECONDS"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("READY_AFTER_SECONDS=%q is not a non-negative number", s)
		}
		c.ReadyAfter = time.Duration(n * float64(time.Second))
	}
	c.Hostname = getenv("HOSTNAME") // the pod name in Kubernetes
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	return c, nil
}

// server holds the state the handlers share.
type server struct {
	cfg     config
	readyAt time.Time
	unready atomic.Bool
	now     func() time.Time
	burn    func(ctx context.Context, d time.Duration)
}

func newServer(cfg config, now func() time.Time) *server {
	return &server{cfg: cfg, readyAt: now().Add(cfg.ReadyAfter), now: now, burn: burnCPU}
}

// routes returns the app's handler, without request logging.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /version", s.versionJSON)
	// Everything under /api answers with the version too: the Gateway canary lab routes /api
	// by weight and by header and counts which version answered.
	mux.HandleFunc("GET /api", s.versionJSON)
	mux.HandleFunc("GET /api/", s.versionJSON)
	mux.HandleFunc("GET /burn", s.burnHandler)
	mux.HandleFunc("POST /admin/unready", s.makeUnready)
	mux.HandleFunc("GET /{$}", s.index)
	return s.stampVersion(mux)
}

// VersionHeader names the version that answered, on every response (404s included), so a client
// behind a Gateway can count versions without parsing bodies.
const VersionHeader = "X-Demo-Version"

func (s *server) stampVersion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(VersionHeader, s.cfg.Version)
		next.ServeHTTP(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.unready.Load():
		text(w, http.StatusServiceUnavailable, "unready (POST /admin/unready)")
	case s.now().Before(s.readyAt):
		text(w, http.StatusServiceUnavailable, "starting (READY_AFTER_SECONDS)")
	default:
		text(w, http.StatusOK, "ok")
	}
}

// versionJSON answers {"version", "hostname"}; under /api it adds the path that was asked for.
func (s *server) versionJSON(w http.ResponseWriter, r *http.Request) {
	body := map[string]string{"version": s.cfg.Version, "hostname": s.cfg.Hostname}
	if r.URL.Path != "/version" {
		body["path"] = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *server) burnHandler(w http.ResponseWriter, r *http.Request) {
	d := defaultBurn
	if q := r.URL.Query().Get("ms"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 {
			text(w, http.StatusBadRequest, "ms must be a non-negative integer")
			return
		}
		d = min(time.Duration(n)*time.Millisecond, maxBurn)
	}
	s.burn(r.Context(), d)
	text(w, http.StatusOK, fmt.Sprintf("burned %dms of CPU on %s", d.Milliseconds(), s.cfg.Hostname))
}

func (s *server) makeUnready(w http.ResponseWriter, _ *http.Request) {
	s.unready.Store(true)
	text(w, http.StatusOK, "unready: /healthz now returns 503")
}

func (s *server) index(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, fmt.Sprintf("kubelab demo-web %s on %s", s.cfg.Version, s.cfg.Hostname))
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// burnCPU keeps one core busy for d, or until the client goes away.
func burnCPU(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for i := 0; i < 10000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink.Store(x)
}

var sink atomic.Uint64 // keeps the burn loop from being optimised away

// statusRecorder remembers the status code and size of a response for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// logRequests writes one compact line per request: time method path status bytes duration.
func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		logger.Printf("%s %s %s %d %dB %s",
			start.UTC().Format(time.RFC3339), r.Method, r.URL.RequestURI(), rec.status, rec.bytes,
			time.Since(start).Round(time.Microsecond))
	})
}

// serve handles requests on ln until ctx ends, then stops accepting and gives in-flight
// requests up to grace to finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func main() {
	logger := log.New(os.Stdout, "", 0)
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-web:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", ":"+cfg.Port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-web:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger.Printf("demo-web %s listening on :%s", cfg.Version, cfg.Port)
	s := newServer(cfg, time.Now)
	if err := serve(ctx, ln, logRequests(logger, s.routes()), shutdownWait); err != nil {
		fmt.Fprintln(os.Stderr, "demo-web:", err)
		os.Exit(1)
	}
	logger.Printf("demo-web stopped")
}
