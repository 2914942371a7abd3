// Package payload turns message bodies into rows and rows into message
// bodies, for the connectors of message brokers (natsjs, rabbitmq), and
// names each message stably for broker-side dedupe.
//
//	dec, _ := payload.NewDecoder(payload.FormatJSON, schema, "", time.UTC)
//	row := make(record.Row, schema.Len())
//	if field, reason := dec.Decode([]byte(`{"id": 1}`), row); reason != "" {
//		// a reject: field and reason name what is wrong
//	}
//
// Invariants:
//
//   - Decode never fails the run: a body that is not a JSON object, or a
//     value that does not convert to its field's type, is a reason for a
//     reject, and the row is left for the caller to drop. Numbers are read
//     exactly (json.Number), so a decimal keeps every digit.
//   - A raw decoder puts the whole body, unparsed, into one bytes field.
//   - Fill makes a batch of bodies the same way for every broker: each body
//     is a row or a reject, under the line its source gave it.
//   - Encode is the inverse for a JSON body: the row as a JSON object in
//     field order, decimals exact, timestamps in RFC 3339.
//   - MessageID depends only on the pipeline and the record's key values,
//     or, without a key, on where the record came from (the batch's origin,
//     position and line): a batch written again after a failure produces
//     the same ids, which a broker's dedupe window drops.
package payload
