package httpc

import (
	"testing"

	"github.com/backbone-etl/backbone/internal/record"
)

// ItemsAPI exports the test API of items to package httpc_test.
type ItemsAPI struct{ a *itemsAPI }

// NewItemsAPI serves rows of connectortest.Schema at URL, paged as paging
// says (cursor, page, link or none).
func NewItemsAPI(t testing.TB, paging string, rows []record.Row) ItemsAPI {
	return ItemsAPI{newItemsAPI(t, paging, rows)}
}

// URL is the endpoint of the items.
func (a ItemsAPI) URL() string { return a.a.url() }

// Add adds rows after the others.
func (a ItemsAPI) Add(rows []record.Row) { a.a.add(rows) }

// Requests lists the request URIs received.
func (a ItemsAPI) Requests() []string { return a.a.log() }
