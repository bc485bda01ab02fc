package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/runneltest"
)

// A body that holds an order and then more (a second order, junk) is
// not an order: placing the first and answering 201 would silently drop
// the rest.
func TestReview28TrailingDataRefused(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	for _, body := range []string{
		`{"customer":"c","items":["x"],"amount_cents":1}{"customer":"d","items":["y"],"amount_cents":2}`,
		`{"customer":"c","items":["x"],"amount_cents":1} junk`,
	} {
		resp, _ := post(t, srv.URL, body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, OrdersTopic), "nothing placed")
}

// A body over the limit is 413 Content Too Large, not 400.
func TestReview28BodyTooLarge(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	body := `{"customer":"c","items":["` + strings.Repeat("x", 64<<10) + `"],"amount_cents":1}`
	resp, _ := post(t, srv.URL, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}
