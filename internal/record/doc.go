// Package record holds the data model every other package speaks: typed
// schemas, rows of positional values, batches with their source positions,
// and the conversion of text and driver values into the typed
// representation. It depends on the standard library only.
//
// Invariants:
//
//   - a Row has exactly Schema.Len() values, each nil or of the Go
//     representation of its field's Type;
//
//   - every record a source consumed is, in its batch, a row, a reject or
//     part of Filtered, so read = rows + rejects + filtered holds per batch;
//
//   - a Position is opaque outside the source that made it;
//
//   - a row's capacity beyond its length is written only when the batch
//     says the row owns it (Batch.OwnCap): steps then add fields in place,
//     up to the capacity the schema chain asked for (Schema.RowCap).
//
//     s := record.MustSchema(record.Field{Name: "id", Type: record.Int})
//     v, err := record.ParseText("42", record.Int, nil) // int64(42)
package record
