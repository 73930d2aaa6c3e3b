package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable now() for readiness delays.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// testServer returns a server with a fake clock and a burn that only records its duration.
func testServer(t *testing.T, cfg config) (*server, *fakeClock, *[]time.Duration) {
	t.Helper()
	if cfg.Version == "" {
		cfg.Version = "v1"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "demo-web-abc12"
	}
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newServer(cfg, clock.now)
	var burned []time.Duration
	s.burn = func(_ context.Context, d time.Duration) { burned = append(burned, d) }
	return s, clock, &burned
}

func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string // substring
		wantBurn   []time.Duration
	}{
		{"readiness", "GET", "/healthz", 200, "ok", nil},
		{"liveness", "GET", "/livez", 200, "ok", nil},
		{"index names the version", "GET", "/", 200, "demo-web v1 on demo-web-abc12", nil},
		{"unknown path", "GET", "/nope", 404, "", nil},
		{"version", "GET", "/version", 200, `"version":"v1"`, nil},
		{"burn default", "GET", "/burn", 200, "burned 100ms", []time.Duration{100 * time.Millisecond}},
		{"burn 250ms", "GET", "/burn?ms=250", 200, "burned 250ms", []time.Duration{250 * time.Millisecond}},
		{"burn zero", "GET", "/burn?ms=0", 200, "burned 0ms", []time.Duration{0}},
		{"burn capped at 5000", "GET", "/burn?ms=999999", 200, "burned 5000ms", []time.Duration{maxBurn}},
		{"burn exactly the cap", "GET", "/burn?ms=5000", 200, "burned 5000ms", []time.Duration{maxBurn}},
		{"burn negative", "GET", "/burn?ms=-1", 400, "non-negative", nil},
		{"burn not a number", "GET", "/burn?ms=lots", 400, "non-negative", nil},
		{"unready needs POST", "GET", "/admin/unready", 405, "", nil},
		{"healthz refuses POST", "POST", "/healthz", 405, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, burned := testServer(t, config{})
			rec := do(t, s.routes(), tc.method, tc.target)
			if rec.Code != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.target, rec.Code, tc.wantStatus)
			}
			if !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("%s %s: body %q, want it to contain %q", tc.method, tc.target, rec.Body, tc.wantBody)
			}
			if len(*burned) != len(tc.wantBurn) {
				t.Fatalf("burned %v, want %v", *burned, tc.wantBurn)
			}
			for i := range tc.wantBurn {
				if (*burned)[i] != tc.wantBurn[i] {
					t.Errorf("burned %v, want %v", *burned, tc.wantBurn)
				}
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	s, _, _ := testServer(t, config{Version: "v2", Hostname: "demo-web-v2-xyz"})
	rec := do(t, s.routes(), "GET", "/version")
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	want := map[string]string{"version": "v2", "hostname": "demo-web-v2-xyz"}
	if len(got) != len(want) || got["version"] != want["version"] || got["hostname"] != want["hostname"] {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAPIAnswersWithVersionAndPath(t *testing.T) {
	s, _, _ := testServer(t, config{Version: "v2", Hostname: "demo-web-v2-xyz"})
	for _, target := range []string{"/api", "/api/", "/api/orders/42"} {
		rec := do(t, s.routes(), "GET", target)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d, want 200", target, rec.Code)
		}
		var got map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("GET %s: body %q is not JSON: %v", target, rec.Body, err)
		}
		if got["version"] != "v2" || got["path"] != target || got["hostname"] != "demo-web-v2-xyz" {
			t.Errorf("GET %s: got %v", target, got)
		}
	}
	if rec := do(t, s.routes(), "POST", "/api/orders"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/orders: status %d, want 405", rec.Code)
	}
	if rec := do(t, s.routes(), "GET", "/apix"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /apix: status %d, want 404 (not under /api)", rec.Code)
	}
}

func TestEveryResponseNamesTheVersion(t *testing.T) {
	s, _, _ := testServer(t, config{Version: "v2"})
	for _, target := range []string{"/", "/healthz", "/version", "/api/x", "/nope"} {
		rec := do(t, s.routes(), "GET", target)
		if got := rec.Header().Get(VersionHeader); got != "v2" {
			t.Errorf("GET %s: %s %q, want v2", target, VersionHeader, got)
		}
	}
}

func TestUnreadySwitch(t *testing.T) {
	s, _, _ := testServer(t, config{})
	h := s.routes()
	steps := []struct {
		method, target string
		wantStatus     int
	}{
		{"GET", "/healthz", 200},
		{"POST", "/admin/unready", 200},
		{"GET", "/healthz", 503},
		{"GET", "/healthz", 503}, // stays unready
		{"GET", "/livez", 200},   // liveness is unaffected
	}
	for i, st := range steps {
		if rec := do(t, h, st.method, st.target); rec.Code != st.wantStatus {
			t.Fatalf("step %d %s %s: status %d, want %d", i, st.method, st.target, rec.Code, st.wantStatus)
		}
	}
}

func TestReadyAfter(t *testing.T) {
	s, clock, _ := testServer(t, config{ReadyAfter: 5 * time.Second})
	h := s.routes()
	steps := []struct {
		advance    time.Duration
		wantStatus int
	}{
		{0, 503},
		{4 * time.Second, 503},
		{time.Second, 200},
		{time.Hour, 200},
	}
	for i, st := range steps {
		clock.t = clock.t.Add(st.advance)
		if rec := do(t, h, "GET", "/healthz"); rec.Code != st.wantStatus {
			t.Fatalf("step %d: /healthz %d, want %d", i, rec.Code, st.wantStatus)
		}
		if rec := do(t, h, "GET", "/livez"); rec.Code != 200 {
			t.Fatalf("step %d: /livez %d while starting, want 200", i, rec.Code)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", map[string]string{"HOSTNAME": "h"}, config{Port: "8080", Version: version, Hostname: "h"}, ""},
		{"overrides", map[string]string{"PORT": "9090", "VERSION": "v2", "HOSTNAME": "h", "READY_AFTER_SECONDS": "1.5"},
			config{Port: "9090", Version: "v2", Hostname: "h", ReadyAfter: 1500 * time.Millisecond}, ""},
		{"bad port", map[string]string{"PORT": "http"}, config{}, "PORT"},
		{"port out of range", map[string]string{"PORT": "70000"}, config{}, "PORT"},
		{"bad delay", map[string]string{"READY_AFTER_SECONDS": "soon"}, config{}, "READY_AFTER_SECONDS"},
		{"negative delay", map[string]string{"READY_AFTER_SECONDS": "-1"}, config{}, "READY_AFTER_SECONDS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBurnCPUStopsAtDeadlineAndOnCancel(t *testing.T) {
	start := time.Now()
	burnCPU(context.Background(), 20*time.Millisecond)
	if el := time.Since(start); el < 20*time.Millisecond || el > 2*time.Second {
		t.Errorf("burnCPU(20ms) took %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	burnCPU(ctx, maxBurn)
	if el := time.Since(start); el > time.Second {
		t.Errorf("burnCPU with a cancelled context took %v", el)
	}
}

func TestRequestLogIsOneCompactLine(t *testing.T) {
	var buf bytes.Buffer
	s, _, _ := testServer(t, config{})
	h := logRequests(log.New(&buf, "", 0), s.routes())
	do(t, h, "GET", "/healthz")
	do(t, h, "GET", "/nope")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %q", buf.String())
	}
	for i, want := range []string{" GET /healthz 200 3B ", " GET /nope 404 "} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("log line %q, want it to contain %q", lines[i], want)
		}
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		text(w, http.StatusOK, "finished")
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, 5*time.Second) }()

	type result struct {
		body string
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{string(b), err}
	}()

	<-entered
	stop() // as on SIGTERM, with one request in flight
	select {
	case err := <-done:
		t.Fatalf("serve returned %v before the in-flight request finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still accepting connections after shutdown began")
	}
	close(release)
	if r := <-resc; r.err != nil || r.body != "finished\n" {
		t.Errorf("in-flight request got %q, %v; want it to finish", r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after the last request finished")
	}
}

func TestShutdownGivesUpAfterGrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, 100*time.Millisecond) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	stop()
	select {
	case err := <-done:
		if err == nil {
			t.Error("serve returned nil though a request outlived the grace period")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not give up after the grace period")
	}
}
