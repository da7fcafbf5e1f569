package cmd

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/store"
)

// testFactory is a Factory on io whose HTTP client, config loader and
// store opener fail the test if a command reaches them: a flags-to-options
// test runs no network, reads no config and opens no store it did not
// set up itself.
func testFactory(t *testing.T, io *IO) *Factory {
	t.Helper()
	return &Factory{
		IO: io,
		HTTPClient: func(string) (*http.Client, error) {
			t.Error("the command built an HTTP client")
			return nil, errors.New("no network in this test")
		},
		LoadConfig: func(path string) (*config.Config, error) {
			t.Errorf("the command loaded config %s", path)
			return nil, errors.New("no config in this test")
		},
		OpenStore: func(url string) (store.Store, error) {
			t.Errorf("the command opened store %s", url)
			return nil, errors.New("no store in this test")
		},
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
}
