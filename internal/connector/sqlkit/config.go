package sqlkit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Source modes.
const (
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// CheckRead checks what a source's config says of its reading order: mode
// with its cursor and key, and batch_rows.
func CheckRead(p connector.Params, mode string, cursor, key []string, batchRows int) error {
	switch mode {
	case ModeFull:
		if len(cursor) > 0 {
			return connector.Errorf(p.FieldPos("cursor"), "cursor is only used in mode incremental")
		}
	case ModeIncremental:
		if len(cursor) == 0 {
			return connector.Errorf(p.FieldPos("mode"), "mode incremental needs a cursor: the column(s) whose values grow with every new or changed row")
		}
		if len(key) == 0 {
			return connector.Errorf(p.FieldPos("mode"), "mode incremental needs a key: unique column(s) that order rows sharing a cursor value")
		}
	default:
		return connector.Errorf(p.FieldPos("mode"), "mode %q: want full or incremental", mode)
	}
	if err := CheckNames(p, "cursor", cursor); err != nil {
		return err
	}
	if err := CheckNames(p, "key", key); err != nil {
		return err
	}
	if batchRows < 0 {
		return connector.Errorf(p.FieldPos("batch_rows"), "batch_rows must be positive, got %d", batchRows)
	}
	return nil
}

// CheckNames checks that the column names of a config field are neither
// empty nor repeated.
func CheckNames(p connector.Params, field string, names []string) error {
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			return connector.Errorf(p.FieldPos(field), "%s: name %d is empty", field, i+1)
		}
		if slices.Contains(names[:i], n) {
			return connector.Errorf(p.FieldPos(field), "%s: %q appears twice", field, n)
		}
	}
	return nil
}

// Order lists the columns a source reads in the order of: in mode
// incremental the cursor, then the key (a unique cursor is its own key);
// else the key, if any.
func Order(mode string, cursor, key []string) []string {
	if mode != ModeIncremental {
		return slices.Clone(key)
	}
	order := slices.Clone(cursor)
	for _, k := range key {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	return order
}

// Limits returns the batch limits of a read: the run's, with batchRows rows
// per batch when set.
func Limits(env *connector.Env, batchRows int) record.Limits {
	limits := env.Limits
	if limits.BatchRows <= 0 {
		limits.BatchRows = record.DefaultLimits.BatchRows
	}
	if batchRows > 0 {
		limits.BatchRows = batchRows
	}
	return limits
}

// Sink modes.
const (
	ModeAppend  = "append"
	ModeUpsert  = "upsert"
	ModeReplace = "replace"
)

// CheckWrite checks what a sink's config says of its table: its name, not
// one of the checkpoints' own, and mode with its key.
func CheckWrite(p connector.Params, table, mode string, key []string) error {
	if strings.TrimSpace(table) == "" {
		return connector.Errorf(p.FieldPos("table"), "table must name the table to write")
	}
	if strings.HasPrefix(strings.ToLower(table), "backbone_") {
		return connector.Errorf(p.FieldPos("table"), "table %q: names starting with backbone_ are reserved for checkpoints", table)
	}
	switch mode {
	case ModeAppend, ModeReplace:
		if len(key) > 0 {
			return connector.Errorf(p.FieldPos("key"), "key is only used in mode upsert")
		}
	case ModeUpsert:
		if len(key) == 0 {
			return connector.Errorf(p.FieldPos("mode"), "mode upsert needs a key: the field(s) that identify a row")
		}
	default:
		return connector.Errorf(p.FieldPos("mode"), "mode %q: want append, upsert or replace", mode)
	}
	return CheckNames(p, "key", key)
}

// CheckFields checks that the records a sink opens for have fields, the
// key among them.
func CheckFields(schema *record.Schema, key []string) error {
	if schema == nil || schema.Len() == 0 {
		return errors.New("the records have no fields to write")
	}
	for _, k := range key {
		if _, ok := schema.Index(k); !ok {
			return fmt.Errorf("key field %q is not among the record's fields (%s)", k, strings.Join(schema.Names(), ", "))
		}
	}
	return nil
}

// SelectLoaded is the select list of a preload into ix: each column as
// prefix + quote(name) when ix keeps its field, NULL when it does not
// (connector.FieldLoader). names are the columns of ix's fields, in order.
func SelectLoaded(ix *connector.Index, quote func(string) string, prefix string, names []string) string {
	list := make([]string, len(names))
	for i, name := range names {
		list[i] = "NULL"
		if ix.Loaded(i) {
			list[i] = prefix + quote(name)
		}
	}
	return strings.Join(list, ", ")
}
